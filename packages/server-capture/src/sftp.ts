// The agent's read-only SFTP service: finished captures at the top of the capture dir, downloaded
// by the orchestrator (or OpenSSH `sftp`) with a key from an OpenSSH authorized_keys file.
// The SFTP server is the one every capsync SSH endpoint uses (sftp-ssh.ts, sftp-protocol.ts); this
// is its view of the capture dir, and its login policy: public keys only, logged by fingerprint.
//
// Why a flat allowlist, not a tree under a root (sftp-jail.ts): the agent's dir also holds its
// state file, log, host key and the files tcpdump is still writing, so only names that are
// finished captures are served: nothing else is listed, opened or stat'ed, and there is no path
// that can lead anywhere else. Not served: subdirectories, symlinks, any write.
import { constants as fsc, promises as fsp, realpathSync, type Stats } from "node:fs";
import path from "node:path";
import type { ParsedKey } from "ssh2";
import type { Logger } from "@capsync/common";
import { SftpSetupError, type AuthorizedKey } from "./sftp-keys.js";
import { noSuchFile, type SftpView } from "./sftp-protocol.js";
import { listenSftp, type SftpServerHandle } from "./sftp-ssh.js";

export const DEFAULT_SFTP_PORT = 20022;

/**
 * Finished captures only: `*.pcap`, `*.pcapng` and tcpdump ring parts (`x.pcap0`, `x.pcap01`).
 * Dot-files (.incoming, the host key), the state file and the log never match.
 */
export function isServedName(name: string): boolean {
  return /^[^./\0][^/\0]*\.(?:pcap|pcapng)\d*$/i.test(name);
}

/** The served files of `root` (a real path): "/" lists them, "/<name>" is one of them. */
export function capturesView(root: string): SftpView {
  /** The served name a client path means, or NO_SUCH_FILE. "/", "..", "../x" all resolve from "/". */
  const servedName = (p: string): string => {
    if (p.includes("\0")) throw noSuchFile();
    const m = /^\/([^/]+)$/.exec(path.posix.resolve("/", p));
    if (!m || !isServedName(m[1]!)) throw noSuchFile();
    return m[1]!;
  };
  const isRoot = (p: string) => !p.includes("\0") && path.posix.resolve("/", p) === "/";
  /** lstat of a served name: regular files only (a symlink named x.pcap is not served). */
  const fileStat = async (name: string): Promise<Stats> => {
    const st = await fsp.lstat(path.join(root, name)).catch(() => undefined);
    if (!st?.isFile()) throw noSuchFile();
    return st;
  };
  return {
    realpath(p) {
      if (p.includes("\0")) throw noSuchFile();
      return path.posix.resolve("/", p);
    },
    async open(p) {
      const name = servedName(p);
      // O_NOFOLLOW: a symlink swapped in after the check is not followed; O_NONBLOCK: a FIFO
      // named like a capture cannot hang the open.
      const fh = await fsp.open(path.join(root, name), fsc.O_RDONLY | fsc.O_NOFOLLOW | fsc.O_NONBLOCK).catch(() => {
        throw noSuchFile();
      });
      const st = await fh.stat().catch(() => undefined);
      if (!st?.isFile()) {
        await fh.close();
        throw noSuchFile();
      }
      return { name, fh, size: st.size };
    },
    stat: async (p) => (isRoot(p) ? fsp.stat(root) : fileStat(servedName(p))),
    async openDir(p) {
      if (!isRoot(p)) throw noSuchFile();
      const names = (await fsp.readdir(root, { withFileTypes: true })).filter((d) => d.isFile() && isServedName(d.name)).map((d) => d.name);
      return {
        names: names.sort(),
        stat: () => fsp.stat(root),
        entry: (name) => fileStat(name).catch(() => undefined), // renamed or gone since OPENDIR
      };
    },
  };
}

export interface AgentSftpOptions {
  /** The capture dir; only its top-level finished captures are served. */
  dir: string;
  listen: { address: string; port: number };
  authorizedKeys: readonly AuthorizedKey[];
  hostKey: ParsedKey;
  log: Logger;
}

export type AgentSftp = SftpServerHandle;

export async function startAgentSftp(opts: AgentSftpOptions): Promise<AgentSftp> {
  if (opts.authorizedKeys.length === 0) throw new SftpSetupError("no authorized keys: nobody could log in");
  return listenSftp({
    listen: opts.listen,
    hostKey: opts.hostKey,
    ident: "capsync-server-capture",
    auth: { keys: opts.authorizedKeys },
    view: capturesView(realpathSync(opts.dir)),
    log: opts.log,
  });
}
