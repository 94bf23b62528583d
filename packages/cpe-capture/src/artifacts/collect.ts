// Downloads an agent's renamed capture files from its built-in read-only SFTP server (public-key
// auth) into the run folder, verifying each size. A partial file is removed on failure; the agent
// keeps its copy, so a retry is always possible.
import SftpClient from "ssh2-sftp-client";
import { createHash } from "node:crypto";
import { createReadStream, rmSync, statSync } from "node:fs";
import { CapsyncError, isSafeFilename } from "@capsync/protocol";
import type { RunFolder } from "./run-folder.js";
import type { FileRecord } from "../run/model.js";

export interface AgentSftp {
  host: string;
  port: number;
  privateKey: Buffer;
  username?: string;
  timeoutMs: number;
}

export async function sha256File(path: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(path)) h.update(chunk as Buffer);
  return h.digest("hex");
}

/** `localNames` (index-aligned with `names`) renames the files in the run folder, e.g. a flow's hop<N>_… names. */
export async function downloadAgentFiles(sftp: AgentSftp, names: string[], folder: RunFolder, localNames?: string[]): Promise<FileRecord[]> {
  const bad = names.find((n) => !isSafeFilename(n));
  if (bad !== undefined) throw new CapsyncError("agent-file-name", `agent ${sftp.host} named an unsafe file '${bad.slice(0, 80)}'`);
  const client = new SftpClient();
  try {
    await client.connect({
      host: sftp.host,
      port: sftp.port,
      username: sftp.username ?? "capsync",
      privateKey: sftp.privateKey,
      readyTimeout: sftp.timeoutMs,
      retries: 0,
    });
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
    await client.end().catch(() => undefined);
  }
  return out;
}
