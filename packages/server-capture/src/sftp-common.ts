// What the two SFTP servers (sftp-server.ts: a tree under a root; sftp.ts: the agent's flat allowlist)
// share: SFTP v3 attributes and `ls -l` names from a stat (draft-ietf-secsh-filexfer-02 sections 5
// and 7), and the handle of a listening server. Not here: paths, handles, authentication.
import { constants as fsc, type Stats } from "node:fs";
import type { AddressInfo, Server as NetServer, Socket } from "node:net";
import type { Attributes } from "ssh2";

export function statsToAttrs(st: Stats): Attributes {
  return {
    mode: st.mode,
    uid: st.uid,
    gid: st.gid,
    size: st.size,
    atime: Math.floor(st.atimeMs / 1000),
    mtime: Math.floor(st.mtimeMs / 1000),
  };
}

function modeString(mode: number): string {
  const type = (mode & fsc.S_IFMT) === fsc.S_IFDIR ? "d" : (mode & fsc.S_IFMT) === fsc.S_IFLNK ? "l" : "-";
  const bits = "rwxrwxrwx";
  let s = type;
  for (let i = 0; i < 9; i++) s += mode & (1 << (8 - i)) ? bits[i] : "-";
  return s;
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
/** `ls -l` style line; OpenSSH `sftp` prints it for `ls -l`. */
export function longname(name: string, st: Stats): string {
  const d = st.mtime;
  const date = `${MONTHS[d.getUTCMonth()]} ${String(d.getUTCDate()).padStart(2)} ${String(d.getUTCHours()).padStart(2, "0")}:${String(d.getUTCMinutes()).padStart(2, "0")}`;
  return `${modeString(st.mode)} ${String(st.nlink).padStart(4)} ${String(st.uid).padEnd(8)} ${String(st.gid).padEnd(8)} ${String(st.size).padStart(12)} ${date} ${name}`;
}

export interface ListeningServer {
  readonly address: string;
  readonly port: number;
  /** Number of open TCP connections. */
  connections(): number;
  /** Stop listening and drop every connection (then `afterDrop`). Safe to call twice. */
  close(): Promise<void>;
}

/** The handle of `net`, already listening, whose accepted sockets are tracked in `sockets`. */
export function listeningServer(net: NetServer, sockets: Set<Socket>, afterDrop: () => void = () => {}): ListeningServer {
  const addr = net.address() as AddressInfo;
  let closing: Promise<void> | undefined;
  return {
    address: addr.address,
    port: addr.port,
    connections: () => sockets.size,
    close() {
      closing ??= new Promise<void>((resolve) => {
        net.close(() => resolve());
        for (const s of sockets) s.destroy();
        afterDrop();
      });
      return closing;
    },
  };
}
