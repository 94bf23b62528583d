// Pass 2's window of sent packets waiting for their outcome, as columns of typed arrays, and the
// report row of one packet copied out of it.
import type { Decoded } from "./decode.js";
import { tcpFlagString } from "./tcp.js";

/** What a sent packet is, for its report row. */
export const K_OTHER = 0;
export const K_TCP = 1;
export const K_UDP = 2;
export const K_ICMP = 3;

/** What a report row needs about one packet, copied out of the window. */
export interface Row {
  t: number;
  delay: number;
  flowName: string;
  kind: number;
  flags: number;
  seq: number;
  ack: number;
  ipId: number;
  plen: number;
  type: number;
  code: number;
  echoId: number;
  echoSeq: number;
}

export function rowSummary(r: Row): string {
  const id = r.ipId >= 0 ? ` id ${r.ipId}` : "";
  if (r.kind === K_TCP) return `${r.flowName} ${tcpFlagString(r.flags)} seq ${r.seq} ack ${r.ack} len ${r.plen}${id}`;
  if (r.kind === K_ICMP) return `${r.flowName} type ${r.type} code ${r.code}${r.echoId >= 0 ? ` echo id ${r.echoId} seq ${r.echoSeq}` : ""}${id}`;
  return `${r.flowName} len ${r.plen}${id}`;
}

/** A sent packet's state in the window. */
export const PENDING = 0;
export const MATCHED = 1;

const COLS = ["t", "delay", "recvIdx", "key", "state", "kind", "flags", "type", "code", "flow", "seq", "ack", "plen", "ipId", "echoId", "echoSeq"] as const;
type Columns = Pick<SendRing, (typeof COLS)[number]>;
const INITIAL = 1024;
/** Columns of finished rings at the initial capacity (a pair's two directions run at once). */
const spares: Columns[] = [];

/**
 * Sent packets waiting for their outcome, in send order, as columns of typed arrays: no object and
 * no key string per packet (≈ 90 bytes each), so the window's memory is fixed by its capacity.
 * Entries are addressed by absolute sequence number; slot = seq & mask.
 */
export class SendRing {
  cap = 0;
  private mask = 0;
  first = 0;
  end = 0;
  t = new Float64Array(0);
  delay = new Float64Array(0);
  recvIdx = new Float64Array(0);
  key = new Float64Array(0);
  state = new Uint8Array(0);
  kind = new Uint8Array(0);
  flags = new Uint8Array(0);
  type = new Uint8Array(0);
  code = new Uint8Array(0);
  flow = new Int32Array(0);
  seq = new Uint32Array(0);
  ack = new Uint32Array(0);
  plen = new Uint32Array(0);
  ipId = new Int32Array(0);
  echoId = new Int32Array(0);
  echoSeq = new Int32Array(0);
  names: string[] = [];
  decoded: (Decoded | undefined)[] | undefined;

  constructor(keepDecoded: boolean) {
    if (keepDecoded) this.decoded = [];
    const s = spares.pop();
    if (s === undefined) this.resize(INITIAL);
    else {
      for (const c of COLS) (s[c] as { fill(v: number): unknown }).fill(0); // as new ones
      Object.assign(this, s);
      this.names = new Array<string>(INITIAL);
      if (this.decoded) this.decoded = new Array<Decoded | undefined>(INITIAL);
      this.cap = INITIAL;
      this.mask = INITIAL - 1;
    }
  }
  /** Hand the columns to the next ring (a report matches ~1,000 pairs in turn); this one is done. */
  recycle(): void {
    if (this.cap !== INITIAL || spares.length >= 2) return;
    const s = {} as Columns;
    for (const c of COLS) (s as Record<string, unknown>)[c] = this[c];
    spares.push(s);
    this.cap = 0;
  }
  get size(): number {
    return this.end - this.first;
  }
  slot(n: number): number {
    return n & this.mask;
  }
  private resize(cap: number): void {
    const old = this.cap;
    const self = this as unknown as Record<string, Float64Array | Uint8Array | Int32Array | Uint32Array>;
    for (const c of COLS) {
      const src = self[c]!;
      const dst = new (src.constructor as new (n: number) => typeof src)(cap);
      for (let n = this.first; n < this.end; n++) dst[n & (cap - 1)] = src[n & (old - 1)]!;
      self[c] = dst;
    }
    const names = new Array<string>(cap);
    const dec = this.decoded ? new Array<Decoded | undefined>(cap) : undefined;
    for (let n = this.first; n < this.end; n++) {
      names[n & (cap - 1)] = this.names[n & (old - 1)]!;
      if (dec) dec[n & (cap - 1)] = this.decoded![n & (old - 1)];
    }
    this.names = names;
    if (dec) this.decoded = dec;
    this.cap = cap;
    this.mask = cap - 1;
  }
  push(): number {
    if (this.size === this.cap) this.resize(this.cap * 2);
    return this.end++;
  }
  row(n: number): Row {
    const s = n & this.mask;
    return {
      t: this.t[s]!, delay: this.delay[s]!, flowName: this.names[s]!, kind: this.kind[s]!,
      flags: this.flags[s]!, seq: this.seq[s]!, ack: this.ack[s]!, ipId: this.ipId[s]!, plen: this.plen[s]!,
      type: this.type[s]!, code: this.code[s]!, echoId: this.echoId[s]!, echoSeq: this.echoSeq[s]!,
    };
  }
}
