// Demultiplexing the shared capture: each spool record goes to the devices whose filter accepts it.
// Every session's program starts `host <device> and ...` (captureProgram), so a packet it accepts
// carries the device's address where `host` looks (IPv4/IPv6 source or destination, ARP/RARP
// sender or target): sessions are indexed by that address's last 32-bit word and a packet is offered
// only to the sessions its address words name — a superset, the device's own BPF program decides.
// A session whose expression is not scoped that way is offered every packet.
import { type BpfCode, runBpf } from "./bpf.js";
import type { DeviceRing } from "./pcap-writer.js";
import type { SpoolRecord } from "./spool.js";

export interface Subscriber {
  device: string;
  prog: BpfCode;
  /** Packets stamped before this (µs since the epoch) were captured before the session began. */
  fromUs: number;
  ring: DeviceRing;
  /** tcpdump -c: the session ends after this many packets. */
  limit?: number;
  onLimit?: () => void;
  /** The address word the session is indexed under; undefined: offered every packet. */
  word?: number;
  /** Dedupe within one record (a packet between two addresses of one device). */
  mark?: number;
  /**
   * Adopted after a restart: the last record the dead agent wrote for this device (µs, bytes). The
   * spool is read again from before it; what the device's program accepts up to and including that
   * record is in its files already.
   */
  skip?: { tsUs: number; raw: Buffer };
}

/** Where a link type puts the network protocol (ethertype) and the network header; undefined: unknown. */
function layout(linktype: number): { typeAt: number; net: number } | "raw" | undefined {
  switch (linktype) {
    case 1: // EN10MB (untagged: `host` does not look inside 802.1Q either)
      return { typeAt: 12, net: 14 };
    case 113: // LINUX_SLL
      return { typeAt: 14, net: 16 };
    case 276: // LINUX_SLL2
      return { typeAt: 0, net: 20 };
    case 101: // RAW
    case 228: // IPV4
    case 229: // IPV6
      return "raw";
  }
  return undefined;
}

export class Demux {
  private readonly byWord = new Map<number, Subscriber[]>();
  private everyPacket: Subscriber[] = [];
  private readonly dirty = new Set<Subscriber>();
  private readonly layout: ReturnType<typeof layout>;
  private pass = 0;
  size = 0;

  constructor(linktype: number) {
    this.layout = layout(linktype);
  }

  add(sub: Subscriber): void {
    this.size++;
    // An unknown link type: no address positions to index by.
    if (sub.word === undefined || this.layout === undefined) {
      this.everyPacket = [...this.everyPacket, sub];
      return;
    }
    this.byWord.set(sub.word, [...(this.byWord.get(sub.word) ?? []), sub]);
  }

  /** Stop offering records to `sub` (copy on write: a dispatch in progress keeps its list). */
  remove(sub: Subscriber): void {
    const l = sub.word === undefined || this.layout === undefined ? this.everyPacket : this.byWord.get(sub.word);
    if (!l?.includes(sub)) return;
    this.size--;
    const rest = l.filter((s) => s !== sub);
    if (l === this.everyPacket) this.everyPacket = rest;
    else if (rest.length) this.byWord.set(sub.word!, rest);
    else this.byWord.delete(sub.word!);
    this.dirty.delete(sub);
  }

  dispatch(rec: SpoolRecord): void {
    const pass = ++this.pass;
    for (const s of this.everyPacket) this.offer(s, rec, pass);
    if (!this.byWord.size || this.layout === undefined) return;
    const d = rec.data;
    let type: number;
    let net: number;
    if (this.layout === "raw") {
      if (d.length < 1) return;
      type = d[0]! >> 4 === 4 ? 0x0800 : d[0]! >> 4 === 6 ? 0x86dd : 0;
      net = 0;
    } else {
      if (d.length < this.layout.typeAt + 2) return;
      type = d.readUInt16BE(this.layout.typeAt);
      net = this.layout.net;
    }
    switch (type) {
      case 0x0800:
        this.lookup(d, net + 12, rec, pass);
        this.lookup(d, net + 16, rec, pass);
        break;
      case 0x86dd:
        this.lookup(d, net + 20, rec, pass);
        this.lookup(d, net + 36, rec, pass);
        break;
      case 0x0806:
      case 0x8035:
        this.lookup(d, net + 14, rec, pass);
        this.lookup(d, net + 24, rec, pass);
        break;
    }
  }

  /** Write every device's queued records (once per pass over the spool). */
  flush(): void {
    for (const s of this.dirty) s.ring.flush();
    this.dirty.clear();
  }

  private lookup(d: Buffer, at: number, rec: SpoolRecord, pass: number): void {
    if (at + 4 > d.length) return;
    const l = this.byWord.get(d.readUInt32BE(at));
    if (l) for (const s of l) this.offer(s, rec, pass);
  }

  private offer(s: Subscriber, rec: SpoolRecord, pass: number): void {
    if (s.mark === pass) return;
    s.mark = pass;
    if (rec.tsUs < s.fromUs || runBpf(s.prog, rec.data, rec.wirelen) === 0) return;
    if (s.skip) {
      if (rec.tsUs < s.skip.tsUs) return;
      if (rec.tsUs === s.skip.tsUs) {
        if (rec.raw.equals(s.skip.raw)) delete s.skip;
        return;
      }
      delete s.skip;
    }
    s.ring.add(rec.raw);
    this.dirty.add(s);
    if (s.limit !== undefined && s.ring.packets >= s.limit) {
      this.remove(s);
      s.ring.flush();
      s.onLimit?.();
    }
  }
}
