// The emulated switch's SSH CLI, on the agent's SSH server (no SFTP): an interactive shell with
// echo and the `<hostname>#` prompt, one command per exec channel, the answers of ./cli.ts. What
// flowtracker's netmiko session and capsync's SSH fallback see when NX-API is off.
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ServerChannel, Session } from "ssh2";
import { startDeviceSftp } from "../device-sftp.js";
import type { NxosCli } from "./cli.js";
import { NXOS_MESSAGES, type NxosDeviceOptions } from "./types.js";

export interface SshControl {
  record(command: string): void;
  /** A "timeout" fault on this command: the CLI never answers it. */
  hangs(command: string): boolean;
  closed(): boolean;
}

export async function startNxosSsh(o: NxosDeviceOptions, cli: NxosCli, hostname: string, address: string, ctl: SshControl): Promise<{ port: number; sessions(): number; close(): Promise<void> }> {
  let sessions = 0;
  const prompt = `${hostname}# `;
  const invalid = (line: string) => `${" ".repeat(prompt.length + Math.max(0, line.trim().indexOf(" ")))}^\n${NXOS_MESSAGES.invalidCommand}\n`;

  function serveShell(stream: ServerChannel): void {
    let buf = "";
    let busy = Promise.resolve();
    let hung = false;
    const write = (s: string) => stream.write(s.replace(/\r?\n/g, "\r\n"));
    const runLine = async (line: string) => {
      const t = line.trim();
      if (t === "") return void stream.write(prompt);
      if (/^(exit|logout)$/.test(t)) {
        stream.exit(0);
        return void stream.end();
      }
      if (ctl.hangs(t)) {
        hung = true;
        return;
      }
      ctl.record(t);
      const a = await cli.run(t);
      write("invalid" in a ? invalid(t) : a.output.endsWith("\n") || a.output === "" ? a.output : `${a.output}\n`);
      stream.write(prompt);
    };
    stream.on("data", (d: Buffer) => {
      if (hung) return;
      for (const ch of d.toString("utf8")) {
        if (ch === "\r" || ch === "\n") {
          if (ch === "\n" && buf === "") continue;
          stream.write("\r\n");
          const line = buf;
          buf = "";
          busy = busy.then(() => (hung ? undefined : runLine(line)));
        } else {
          buf += ch;
          stream.write(ch);
        }
      }
    });
    stream.write(`\r\nCisco Nexus Operating System (NX-OS) Software\r\n${prompt}`);
  }

  function serveSession(session: Session): void {
    sessions++;
    session.on("pty", (accept) => accept?.());
    session.on("window-change", (accept) => accept?.());
    session.on("env", (accept) => accept?.());
    session.on("shell", (accept) => serveShell(accept()));
    session.on("exec", (accept, _reject, info) => {
      const stream = accept();
      ctl.record(info.command.trim());
      void cli.run(info.command).then((a) => {
        stream.write(("invalid" in a ? invalid(info.command) : a.output).replace(/\r?\n/g, "\r\n"));
        stream.exit("invalid" in a ? 1 : 0);
        stream.end();
      });
    });
    session.on("subsystem", (_accept, reject) => reject());
  }

  // The SSH server serves a directory for SFTP; an NX-OS emulator offers none, so it stays empty.
  const root = await fsp.mkdtemp(path.join(tmpdir(), "capsync-nxos-"));
  try {
    const server = await startDeviceSftp(o, address, {
      root,
      ident: "OpenSSH_8.3 PKIX[12.5.1]",
      maxAuthFailures: 3,
      sftp: false,
      hooks: { onConnection: () => !ctl.closed(), onSession: serveSession },
    });
    return {
      port: server.port,
      sessions: () => sessions,
      async close() {
        await server.close();
        await fsp.rm(root, { recursive: true, force: true });
      },
    };
  } catch (err) {
    await fsp.rm(root, { recursive: true, force: true });
    throw err;
  }
}
