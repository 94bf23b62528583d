// Downloads an agent's renamed capture files from its built-in read-only SFTP server (public-key
// auth) into the run folder, verifying each size. A partial file is removed on failure; the agent
// keeps its copy, so a retry is always possible.
import SftpClient from "ssh2-sftp-client";
import ssh2 from "ssh2";
import type { SFTPWrapper } from "ssh2";
import { rmSync, statSync } from "node:fs";
import { sha256File } from "@capsync/common";
import { CapsyncError, formatEndpoint, isSafeFilename } from "@capsync/protocol";
import type { RunFolder } from "./run-folder.js";
import type { FileRecord } from "../run/model.js";

export interface AgentSftp {
  host: string;
  port: number;
  privateKey: Buffer;
  username?: string;
  timeoutMs: number;
  /** Share one SSH connection per agent with the run's other downloads (see AgentSftpPool). */
  pool?: AgentSftpPool;
}

/** What a download needs from an SFTP session, pooled or not. */
interface Session {
  stat(path: string): Promise<{ size: number }>;
  fastGet(remote: string, local: string): Promise<void>;
  release(): Promise<void>;
}

/** Pooled connections with no download for this long are closed (a firewall may drop them silently). */
const POOL_IDLE_MS = 2000;

interface Pooled {
  client: InstanceType<typeof ssh2.Client>;
  sftp: Promise<SFTPWrapper>;
  users: number;
  dead: boolean;
  idle?: NodeJS.Timeout;
}

/**
 * One SSH connection per agent, shared by every download while some are under way. A fleet stop
 * collects one agent's files for hundreds of devices at once: a handshake per device cost more CPU
 * than the transfers (ed25519 + curve25519 on both ends), and the agent refuses more than 32
 * connections, so a burst lost files to refusals. Many downloads run side by side on the one
 * connection (one SFTP request id space); it closes when idle and at the end of the run.
 */
export class AgentSftpPool {
  private readonly conns = new Map<string, Pooled>();

  async session(o: AgentSftp): Promise<Session> {
    const key = `${o.username ?? "capsync"}@${formatEndpoint(o.host, o.port)}`;
    let c = this.conns.get(key);
    if (!c || c.dead) {
      c = this.connect(o, key);
      this.conns.set(key, c);
    }
    const conn = c;
    conn.users++;
    clearTimeout(conn.idle);
    let sftp: SFTPWrapper;
    try {
      sftp = await conn.sftp;
    } catch (e) {
      conn.users--;
      throw e;
    }
    let released = false;
    return {
      stat: (path) => new Promise((res, rej) => sftp.stat(path, (err, st) => (err ? rej(err) : res({ size: st.size })))),
      fastGet: (remote, local) => new Promise((res, rej) => sftp.fastGet(remote, local, (err) => (err ? rej(err) : res()))),
      release: async () => {
        if (released) return;
        released = true;
        if (--conn.users === 0 && !conn.dead) {
          conn.idle = setTimeout(() => this.drop(key, conn), POOL_IDLE_MS);
          conn.idle.unref();
        }
      },
    };
  }

  private connect(o: AgentSftp, key: string): Pooled {
    const client = new ssh2.Client();
    const c: Pooled = { client, users: 0, dead: false, sftp: Promise.resolve(undefined as unknown as SFTPWrapper) };
    c.sftp = new Promise<SFTPWrapper>((resolve, reject) => {
      client.once("ready", () => client.sftp((err, sftp) => (err ? reject(err) : resolve(sftp))));
      client.once("error", reject);
      client.once("close", () => reject(new Error("connection closed before the SFTP session opened")));
    });
    // Later errors end the connection; the downloads on it fail through their own callbacks.
    client.on("error", () => (c.dead = true));
    client.on("close", () => {
      c.dead = true;
      if (this.conns.get(key) === c) this.conns.delete(key);
    });
    c.sftp.catch(() => this.drop(key, c));
    client.connect({ host: o.host, port: o.port, username: o.username ?? "capsync", privateKey: o.privateKey, readyTimeout: o.timeoutMs });
    return c;
  }

  private drop(key: string, c: Pooled): void {
    clearTimeout(c.idle);
    c.dead = true;
    if (this.conns.get(key) === c) this.conns.delete(key);
    c.client.end();
  }

  /** Close every connection (end of the run). */
  close(): void {
    for (const [key, c] of this.conns) this.drop(key, c);
  }
}

/** A connection of its own, closed after the download (no pool). */
async function ownSession(o: AgentSftp): Promise<Session> {
  const client = new SftpClient();
  await client.connect({ host: o.host, port: o.port, username: o.username ?? "capsync", privateKey: o.privateKey, readyTimeout: o.timeoutMs, retries: 0 });
  return {
    stat: (path) => client.stat(path),
    fastGet: async (remote, local) => void (await client.fastGet(remote, local)),
    release: async () => void (await client.end().catch(() => undefined)),
  };
}

export { sha256File };

/** `localNames` (index-aligned with `names`) renames the files in the run folder, e.g. a flow's hop<N>_… names. */
export async function downloadAgentFiles(sftp: AgentSftp, names: string[], folder: RunFolder, localNames?: string[]): Promise<FileRecord[]> {
  const bad = names.find((n) => !isSafeFilename(n));
  if (bad !== undefined) throw new CapsyncError("agent-file-name", `agent ${sftp.host} named an unsafe file '${bad.slice(0, 80)}'`);
  let client: Session;
  try {
    client = sftp.pool ? await sftp.pool.session(sftp) : await ownSession(sftp);
  } catch (e) {
    throw new CapsyncError("agent-sftp", `cannot connect to agent SFTP ${sftp.host}:${sftp.port}: ${(e as Error).message}`, { cause: e });
  }
  const out: FileRecord[] = [];
  try {
    for (const [i, name] of names.entries()) {
      const remote = await client.stat(`/${name}`);
      const local = folder.reserve(localNames?.[i] ?? name);
      const path = folder.path(local);
      try {
        await client.fastGet(`/${name}`, path);
        const got = statSync(path).size;
        if (got !== remote.size) throw new CapsyncError("agent-sftp-size", `${name}: downloaded ${got} bytes, agent has ${remote.size}`);
      } catch (e) {
        rmSync(path, { force: true });
        throw e instanceof CapsyncError ? e : new CapsyncError("agent-sftp", `downloading ${name} from ${sftp.host}: ${(e as Error).message}`, { cause: e });
      }
      out.push({ name: local, bytes: remote.size, sha256: await sha256File(path) });
    }
  } finally {
    await client.release();
  }
  return out;
}
