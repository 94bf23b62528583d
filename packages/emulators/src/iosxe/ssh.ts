// The IOS-XE SSH server: the exec shell (prompt, echo, `--More--` paging by `terminal length`), one
// exec command per channel, SCP source mode (`scp -f`, the RCP protocol `ip scp server enable`
// serves) and SFTP of bootflash:, which is the agent's SFTP server over a mirror of bootflash:.
// Not handled: SCP sink (uploads), configuration mode, port forwarding.
import { promises as fsp } from "node:fs";
import { tmpdir } from "node:os";
import path from "node:path";
import type { ServerChannel, Session } from "ssh2";
import type { SftpServerHandle } from "@capsync/server-capture/sftp-ssh";
import { corruptRead, startDeviceSftp } from "../device-sftp.js";
import type { DeviceContext } from "./context.js";
import type { CliResult, ExecCli } from "./exec-cli.js";
import { bootflashName } from "./monitor-command.js";

/** `bootflash:x.pcap` and its spellings → `/x.pcap` under the mirror; the bootflash: root → `/`. */
function bootflashPath(p: string): string | undefined {
  if (p === "." || p === "" || /^\/?(bootflash|flash):\/?$/.test(p)) return "/";
  const name = bootflashName(p);
  return name === undefined ? undefined : `/${name}`;
}

/** Starts the device's SSH listener on `address`; resolves to its port and how to close it. */
export async function startSsh(ctx: DeviceContext, cli: ExecCli, address: string): Promise<{ port: number; close(): Promise<void> }> {
  const { opts, hostname, epc, st, record, takeFault } = ctx;
  const { execCli, cliClass } = cli;

  /** File content as SCP serves it, with file faults applied once per transfer. */
  function fileForTransfer(name: string): Buffer | undefined {
    const f = epc.bootflash.get(name);
    if (!f) return undefined;
    const fault = takeFault("file", (x) => x.kind === "truncate" || x.kind === "bad-magic");
    if (fault?.kind === "bad-magic") {
      const copy = Buffer.from(f.data);
      copy.write("XXXX", 0, Math.min(4, copy.length), "latin1");
      return copy;
    }
    if (fault?.kind === "truncate") return Object.assign(f.data.subarray(0, Math.floor(f.data.length / 2)), { announced: f.data.length });
    return f.data;
  }

  /** SCP source mode (`scp -f <file>`), RCP protocol: wait for \0, send C line, wait, send data + \0. */
  function serveScp(stream: ServerChannel, args: string[]): void {
    const fail = (msg: string) => {
      stream.write(Buffer.concat([Buffer.from([1]), Buffer.from(`scp: ${msg}\n`)]));
      stream.exit(1);
      stream.end();
    };
    const path = args.filter((a) => !a.startsWith("-")).pop();
    if (opts.scp === false) {
      stream.stderr.write("% SCP server is not enabled (ip scp server enable)\n");
      stream.exit(1);
      return void stream.end();
    }
    if (!args.includes("-f")) return fail("only downloads (-f) are supported");
    const name = path ? bootflashName(path) : undefined;
    const file = name ? fileForTransfer(name) : undefined;
    let step = 0;
    stream.on("data", (d: Buffer) => {
      if (d[0] !== 0) {
        stream.exit(1);
        return void stream.end();
      }
      if (step === 0) {
        step = 1;
        if (!name || !file) return fail(`${path ?? "(none)"}: No such file or directory`);
        const size = (file as Buffer & { announced?: number }).announced ?? file.length;
        stream.write(`C0644 ${size} ${name}\n`);
      } else if (step === 1) {
        step = 2;
        stream.write(file!);
        if ((file as Buffer & { announced?: number }).announced !== undefined) {
          // Truncated: the connection drops mid-file.
          stream.exit(1);
          return void stream.end();
        }
        stream.write(Buffer.from([0]));
      } else {
        stream.exit(0);
        stream.end();
      }
    });
  }

  /** The interactive exec shell: echo, prompt, paging by `terminal length`. */
  function serveShell(stream: ServerChannel, pty: { rows: number } | undefined): void {
    let length = pty?.rows && pty.rows > 0 ? pty.rows : 24;
    let buf = "";
    let hung = false;
    let more: string[] | undefined;
    let lastWasCr = false;
    const userExec = opts.privilege === 1;
    const prompt = `${hostname}${userExec ? ">" : "#"}`;
    const write = (s: string) => stream.write(s.replace(/\r?\n/g, "\r\n"));
    const page = () => {
      if (!more) return;
      const take = more.splice(0, Math.max(1, length - 1));
      write(take.join("\n") + "\n");
      if (more.length > 0) stream.write(" --More-- ");
      else {
        more = undefined;
        stream.write(prompt);
      }
    };
    const runLine = (line: string) => {
      const trimmed = line.trim();
      if (trimmed === "") return void stream.write(prompt);
      if (/^(exit|logout|quit)$/.test(trimmed)) {
        stream.exit(0);
        return void stream.end();
      }
      const cls = cliClass(trimmed);
      if (takeFault("cli", (f) => (f.on ?? "any") === "any" || f.on === cls)) {
        hung = true; // the command never returns
        return;
      }
      record(trimmed);
      const t = /^terminal\s+length\s+(\d+)$/.exec(trimmed);
      if (t) length = Number(t[1]);
      // User EXEC knows `show version` and `terminal`, not the privileged commands.
      const r: CliResult = userExec && !/^(show\s+version|terminal\s)/.test(trimmed) ? { invalidAt: 0, message: "privileged command" } : execCli(trimmed);
      let out: string;
      if ("invalidAt" in r) {
        const words = trimmed.split(/\s+/);
        const col = prompt.length + words.slice(0, r.invalidAt).reduce((n, w) => n + w.length + 1, 0);
        out = `${" ".repeat(col)}^\n% Invalid input detected at '^' marker.\n\n`;
      } else out = r.output;
      const lines = out.endsWith("\n") ? out.slice(0, -1).split("\n") : out === "" ? [] : out.split("\n");
      if (length > 0 && lines.length >= length) {
        more = lines;
        return page();
      }
      write(lines.length ? lines.join("\n") + "\n" : "");
      stream.write(prompt);
    };
    stream.on("data", (d: Buffer) => {
      if (hung) return;
      for (const ch of d.toString("utf8")) {
        if (more) {
          // --More--: space pages, return shows a line, anything else ends the listing.
          stream.write("\r          \r");
          if (ch === " ") page();
          else if (ch === "\r" || ch === "\n") {
            const saved = length;
            length = 2;
            page();
            length = saved;
          } else {
            more = undefined;
            stream.write(prompt);
          }
          continue;
        }
        if (ch === "\r" || ch === "\n") {
          if (ch === "\n" && buf === "" && lastWasCr) {
            lastWasCr = false;
            continue;
          }
          lastWasCr = ch === "\r";
          stream.write("\r\n");
          const line = buf;
          buf = "";
          runLine(line);
          if (hung) return;
        } else {
          lastWasCr = false;
          buf += ch;
          stream.write(ch); // echo, as a pty does
        }
      }
    });
    stream.write(`\r\n${prompt}`);
  }

  function serveSession(session: Session): void {
    let pty: { rows: number } | undefined;
    session.on("pty", (acceptPty, _reject, info) => {
      pty = { rows: info.rows };
      acceptPty?.();
    });
    session.on("window-change", (acceptWc) => acceptWc?.());
    session.on("env", (acceptEnv) => acceptEnv?.());
    session.on("shell", (acceptShell) => serveShell(acceptShell(), pty));
    session.on("exec", (acceptExec, _reject, info) => {
      const stream = acceptExec();
      const words = info.command.trim().split(/\s+/);
      if (words[0] === "scp") return serveScp(stream, words.slice(1));
      // IOS-XE runs one exec command per channel and closes it.
      record(info.command.trim());
      const r = execCli(info.command);
      stream.write(("output" in r ? r.output : "% Invalid input detected at '^' marker.\n").replace(/\r?\n/g, "\r\n"));
      stream.exit("output" in r ? 0 : 1);
      stream.end();
    });
    // ssh2 raises "sftp" for the sftp subsystem and "subsystem" for any other: none exists here.
    session.on("subsystem", (_accept, rejectSub) => rejectSub());
  }

  // SFTP serves a directory: bootflash: is mirrored into one before each access.
  const mirror = await fsp.mkdtemp(path.join(tmpdir(), "capsync-iosxe-bootflash-"));
  const mirrored = new Map<string, Buffer>();
  let syncing: Promise<void> = Promise.resolve();
  const syncMirror = (): Promise<void> =>
    (syncing = syncing.then(async () => {
      for (const [name, f] of epc.bootflash) {
        if (mirrored.get(name) === f.data) continue;
        await fsp.writeFile(path.join(mirror, name), f.data);
        mirrored.set(name, f.data);
      }
      for (const name of [...mirrored.keys()]) {
        if (epc.bootflash.has(name)) continue;
        await fsp.rm(path.join(mirror, name), { force: true });
        mirrored.delete(name);
      }
    }));
  // File faults are taken once per SFTP open, like the device's own file system would fail one transfer.
  const corruption = new Map<string, { kind: "truncate" | "bad-magic"; at: number }>();

  let sftp: SftpServerHandle;
  try {
    sftp = await startDeviceSftp(opts, address, {
      root: mirror,
      ident: "Cisco-1.25",
      maxAuthFailures: 3,
      sftp: opts.sftp !== false,
      hooks: {
        onConnection: () => {
          if (st.closed) return false;
          if (takeFault("file", (f) => f.kind === "refuse")) {
            st.fileRefusals++;
            return false;
          }
          st.sshConnections++;
          return true;
        },
        mapPath: bootflashPath,
        beforeAccess: async (vpath, op) => {
          await syncMirror();
          const f = op === "open" ? epc.bootflash.get(vpath.slice(1)) : undefined;
          if (!f) return;
          const fault = takeFault("file", (x) => x.kind === "truncate" || x.kind === "bad-magic");
          if (fault) corruption.set(vpath, { kind: fault.kind as "truncate" | "bad-magic", at: Math.floor(f.data.length / 2) });
          else corruption.delete(vpath);
        },
        mapRead: (vpath, position, data) => {
          const c = corruption.get(vpath);
          return c ? corruptRead(c, position, data) : data;
        },
        onSession: serveSession,
      },
    });
  } catch (err) {
    await fsp.rm(mirror, { recursive: true, force: true });
    throw err;
  }
  return {
    port: sftp.port,
    async close() {
      await sftp.close();
      await syncing;
      await fsp.rm(mirror, { recursive: true, force: true });
    },
  };
}
