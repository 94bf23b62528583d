// Where an emulated AudioCodes device's debug capture comes from: the synthetic flow written to the
// capture file as time passes (bounded by the device's buffer), or a real tcpdump on an interface.
import { spawn, type ChildProcess } from "node:child_process";
import { promises as fsp } from "node:fs";
import { performance } from "node:perf_hooks";
import { encodePcapHeader, LINKTYPE_ETHERNET } from "@capsync/pcap";
import type { SyntheticPacketSource } from "../synthetic-traffic.js";
import type { AudioCodesCapture } from "./types.js";

const nowMicros = (): bigint => BigInt(Math.round((performance.timeOrigin + performance.now()) * 1000));

export interface CaptureSource {
  start(file: string): Promise<void>;
  /** Bring the file up to date (synthetic) — no-op for tcpdump, which writes packet by packet. */
  flush(): Promise<void>;
  stop(): Promise<void>;
  packets(): number;
}

export class SyntheticCapture implements CaptureSource {
  private file = "";
  private startMicros = 0n;
  private written = 0;
  private bytes = 0;
  private active = false;
  private io: Promise<void> = Promise.resolve();
  constructor(
    private readonly src: SyntheticPacketSource,
    private readonly maxBytes: number,
  ) {}

  async start(file: string): Promise<void> {
    await this.io;
    this.file = file;
    this.written = 0;
    const header = encodePcapHeader({ linktype: LINKTYPE_ETHERNET });
    this.bytes = header.length;
    await fsp.writeFile(file, header);
    this.startMicros = nowMicros();
    this.active = true;
  }

  flush(): Promise<void> {
    if (!this.active) return this.io;
    const until = nowMicros();
    // Serialised: concurrent SFTP opens and a stop must append each packet exactly once.
    this.io = this.io.then(async () => {
      const due = this.src.packetsDue(until - this.startMicros);
      while (this.written < due && this.bytes < this.maxBytes) {
        const parts: Buffer[] = [];
        let chunk = 0;
        while (this.written < due && chunk < 1 << 20) {
          const rec = this.src.records(this.startMicros, this.written, this.written + 1);
          if (this.bytes + chunk + rec.length > this.maxBytes) {
            this.bytes = this.maxBytes; // buffer full: the device drops the rest
            break;
          }
          parts.push(rec);
          chunk += rec.length;
          this.written++;
        }
        if (parts.length > 0) await fsp.appendFile(this.file, Buffer.concat(parts));
        if (this.bytes < this.maxBytes) this.bytes += chunk;
      }
    });
    return this.io;
  }

  async stop(): Promise<void> {
    await this.flush();
    this.active = false;
  }

  packets(): number {
    return this.written;
  }
}

export class TcpdumpCapture implements CaptureSource {
  private child: ChildProcess | undefined;
  private exited: Promise<void> = Promise.resolve();
  constructor(private readonly cfg: Extract<AudioCodesCapture, { kind: "tcpdump" }>) {}

  async start(file: string): Promise<void> {
    const tcpdump = this.cfg.tcpdumpPath ?? "tcpdump";
    // --immediate-mode -U: packets reach the file as they arrive (see DESIGN.md "Agent rules").
    // -Z root: Debian's tcpdump would otherwise drop to user tcpdump and be unable to write here.
    const args = ["-i", this.cfg.iface, "--immediate-mode", "-U", "-n", "-Z", "root", "-w", file];
    if (this.cfg.filter) args.push(this.cfg.filter);
    const [cmd, argv] = this.cfg.netns ? ["ip", ["netns", "exec", this.cfg.netns, tcpdump, ...args]] : [tcpdump, args];
    const child = spawn(cmd, argv, { stdio: ["ignore", "ignore", "pipe"] });
    this.child = child;
    this.exited = new Promise((resolve) => child.once("close", () => resolve()));
    let stderr = "";
    await new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        child.kill("SIGKILL");
        reject(new Error(`tcpdump did not start listening within ${this.cfg.startTimeoutMs ?? 5000} ms`));
      }, this.cfg.startTimeoutMs ?? 5000);
      child.stderr!.setEncoding("utf8");
      child.stderr!.on("data", (d: string) => {
        stderr += d;
        if (/listening on /.test(stderr)) {
          clearTimeout(timer);
          resolve();
        }
      });
      child.once("error", (err) => {
        clearTimeout(timer);
        reject(err);
      });
      child.once("close", (code) => {
        clearTimeout(timer);
        reject(new Error(`tcpdump exited (${code}): ${stderr.trim().split("\n").pop() ?? ""}`));
      });
    });
  }

  flush(): Promise<void> {
    return Promise.resolve();
  }

  async stop(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (!child || child.exitCode !== null || child.signalCode !== null) return;
    child.kill("SIGINT");
    const killer = setTimeout(() => child.kill("SIGKILL"), 5000);
    await this.exited;
    clearTimeout(killer);
  }

  packets(): number {
    return 0;
  }
}
