// Real packets for an emulated IOS-XE switch's Embedded Packet Capture: tcpdump on the veth behind
// one of its interfaces (what leaves it: -Q out), read as a pcap stream and kept in a bounded ring
// with the kernel's timestamps, served to the emulator's EPC as a packet source (its `epcSources`
// option). So `cpe-capture trace --capture` in the trace lab captures what the namespaces forward:
// a packet dropped before the veth is in no capture of this hop and the ones after it.
import { spawn, type ChildProcess } from "node:child_process";
import type { IosXeDeviceOptions } from "@capsync/emulators";

type EpcSource = NonNullable<IosXeDeviceOptions["epcSources"]>[string];

/** Packets kept per interface (the oldest go first); the lab's flow sends a few dozen a second. */
const RING = 20_000;

export class LivePacketSource implements EpcSource {
  private readonly ts: bigint[] = [];
  private readonly frames: Buffer[] = [];
  /** Sequence number of ts[0] (grows as the ring drops old packets). */
  private base = 0;
  private buf: Buffer = Buffer.alloc(0);
  private header = false;
  private nanos = false;
  private little = true;
  private readonly child: ChildProcess;

  constructor(veth: string) {
    // IPv4 only (the lab has no IPv6); -U: each packet as it comes, not buffered.
    this.child = spawn("tcpdump", ["-i", veth, "-Q", "out", "-U", "-n", "-w", "-", "ip"], { stdio: ["ignore", "pipe", "ignore"] });
    this.child.stdout!.on("data", (d: Buffer) => this.feed(d));
    this.child.on("error", () => {});
  }

  private feed(d: Buffer): void {
    this.buf = this.buf.length ? Buffer.concat([this.buf, d]) : d;
    if (!this.header) {
      if (this.buf.length < 24) return;
      const magic = this.buf.readUInt32LE(0);
      this.little = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
      const m = this.little ? magic : this.buf.readUInt32BE(0);
      this.nanos = m === 0xa1b23c4d;
      this.header = true;
      this.buf = this.buf.subarray(24);
    }
    const u32 = (o: number) => (this.little ? this.buf.readUInt32LE(o) : this.buf.readUInt32BE(o));
    while (this.buf.length >= 16) {
      const len = u32(8);
      if (this.buf.length < 16 + len) break;
      const sec = BigInt(u32(0));
      const frac = BigInt(u32(4));
      this.ts.push(sec * 1_000_000n + (this.nanos ? frac / 1000n : frac));
      this.frames.push(Buffer.from(this.buf.subarray(16, 16 + len)));
      this.buf = this.buf.subarray(16 + len);
    }
    const over = this.ts.length - RING;
    if (over > 0) {
      this.ts.splice(0, over);
      this.frames.splice(0, over);
      this.base += over;
    }
  }

  /** First index whose timestamp is at or after `t` (binary search; the ring is in time order). */
  private at(t: bigint): number {
    let lo = 0;
    let hi = this.ts.length;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (this.ts[mid]! < t) lo = mid + 1;
      else hi = mid;
    }
    return this.base + lo;
  }

  firstSeq(startMicros: bigint): number {
    return this.at(startMicros);
  }

  endSeq(endMicros: bigint): number {
    return this.at(endMicros);
  }

  packetsDue(): number {
    return this.ts.length;
  }

  timestamp(_start: bigint, seq: number): bigint {
    return this.ts[seq - this.base] ?? 0n;
  }

  frame(seq: number): Buffer {
    return this.frames[seq - this.base] ?? Buffer.alloc(0);
  }

  /** Everything tcpdump saw left by this interface. */
  outbound(): boolean {
    return true;
  }

  present(seq: number): boolean {
    return seq >= this.base && seq - this.base < this.ts.length;
  }

  close(): void {
    this.child.kill("SIGTERM");
  }
}
