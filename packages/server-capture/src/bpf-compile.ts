// Filter expressions to classic BPF, compiled by tcpdump itself (`tcpdump -ddd`) for the shared
// capture's interface and link type, so a device's program is the one its own tcpdump would run.
// A fleet's plain CAPTUREs differ only in the address (`host <device>`): that program is compiled
// once per address family with two placeholder addresses and the address words substituted, so
// 5,000 devices cost four tcpdump runs, not 5,000 (test/agent/shared-bpf.test.ts checks the
// substituted programs against tcpdump's own for edge addresses).
import { execFile } from "node:child_process";
import { isIPv6 } from "node:net";
import { type BpfCode, parseBpf } from "./bpf.js";

/** pcap file link types whose DLT name `tcpdump -y` takes (the others: the interface's default, as the spool). */
const DLT_NAMES: Record<number, string> = { 1: "EN10MB", 101: "RAW", 113: "LINUX_SLL", 276: "LINUX_SLL2" };
/** At most this many `tcpdump -ddd` at once: a burst of distinct spec CAPTUREs must not fork a process per datagram. */
const MAX_COMPILERS = 4;

const PLACEHOLDERS = {
  4: ["198.51.100.77", "203.0.113.91"],
  6: ["2001:db8:1111:2222:3333:4444:5555:6666", "3fff:c00:aaaa:bbbb:cccc:dddd:eeee:ffff"],
} as const;
// Every word differs between the two (a word they shared would look like a constant, not the address).

interface Template {
  prog: BpfCode;
  /** [instruction index, address word index] of every k that is an address word. */
  slots: [number, number][];
  /**
   * The other constants the program compares with (jump instructions): an address word equal to one
   * of them could have let the optimiser fold a test differently. Load offsets and return values
   * are not compared with anything.
   */
  otherK: Set<number>;
}

export class FilterCompiler {
  private readonly cache = new Map<string, Promise<BpfCode>>();
  private readonly templates = new Map<4 | 6, Promise<Template | undefined>>();
  private running = 0;
  private readonly queue: (() => void)[] = [];
  /** tcpdump runs, for the benchmark and the tests. */
  compiles = 0;

  constructor(
    private readonly iface: string,
    private readonly linktype: number,
    private readonly binary = "tcpdump",
  ) {}

  /** The program for a session's expression; `device` lets `host <device>` use the template. */
  async program(expression: readonly string[], device?: string): Promise<BpfCode> {
    if (device && expression.length === 2 && expression[0] === "host" && expression[1] === device) {
      const fam = isIPv6(device) ? 6 : 4;
      let t = this.templates.get(fam);
      if (!t) this.templates.set(fam, (t = this.buildTemplate(fam)));
      const tpl = await t;
      const p = tpl && instantiate(tpl, addressWords(device));
      if (p) return p;
    }
    return this.compile(expression);
  }

  /** tcpdump's own program for `expression`, cached per expression. */
  compile(expression: readonly string[]): Promise<BpfCode> {
    const key = expression.join(" ");
    let p = this.cache.get(key);
    if (!p) {
      p = this.run(expression);
      this.cache.set(key, p);
      // A failure is not cached: the next CAPTURE tries again (and gets the error again, or not).
      p.catch(() => this.cache.delete(key));
    }
    return p;
  }

  private async buildTemplate(fam: 4 | 6): Promise<Template | undefined> {
    const [a, b] = PLACEHOLDERS[fam];
    const [pa, pb] = await Promise.all([this.compile(["host", a]), this.compile(["host", b])]);
    const wa = addressWords(a), wb = addressWords(b);
    if (pa.length !== pb.length) return undefined;
    const slots: [number, number][] = [];
    const otherK = new Set<number>();
    for (let i = 0; i < pa.length; i += 4) {
      if (pa[i] !== pb[i] || pa[i + 1] !== pb[i + 1] || pa[i + 2] !== pb[i + 2]) return undefined;
      const ka = pa[i + 3]!, kb = pb[i + 3]!;
      if (ka === kb) {
        if ((pa[i]! & 0x07) === 0x05) otherK.add(ka);
        continue;
      }
      const j = wa.indexOf(ka);
      if (j < 0 || wb[j] !== kb) return undefined;
      slots.push([i / 4, j]);
    }
    return { prog: pa, slots, otherK };
  }

  private async run(expression: readonly string[]): Promise<BpfCode> {
    if (this.running >= MAX_COMPILERS) await new Promise<void>((r) => this.queue.push(r));
    this.running++;
    this.compiles++;
    try {
      const y = DLT_NAMES[this.linktype];
      const args = ["-ddd", ...(y ? ["-y", y] : []), "-i", this.iface, ...expression];
      const out = await new Promise<string>((resolve, reject) => {
        execFile(this.binary, args, { env: { PATH: process.env.PATH ?? "/usr/sbin:/usr/bin:/sbin:/bin" }, timeout: 10_000, maxBuffer: 1 << 20 }, (e, stdout, stderr) => {
          if (e) reject(new Error(`tcpdump could not compile '${expression.join(" ")}': ${String(stderr).trim().split("\n").at(-1) ?? e.message}`));
          else resolve(stdout);
        });
      });
      return parseBpf(out);
    } finally {
      this.running--;
      this.queue.shift()?.();
    }
  }
}

function instantiate(t: Template, words: number[]): BpfCode | undefined {
  // An address word equal to a constant the program compares with (an ethertype) might have let
  // the optimiser fold a test differently: tcpdump compiles that one itself.
  if (words.some((w) => t.otherK.has(w))) return undefined;
  const p = t.prog.slice();
  for (const [ins, j] of t.slots) p[ins * 4 + 3] = words[j]!;
  return p;
}

/** An IPv4 address as one big-endian word, an IPv6 address as four. */
export function addressWords(addr: string): number[] {
  if (!isIPv6(addr)) return [addr.split(".").reduce((n, o) => n * 256 + Number(o), 0)];
  let s = addr;
  const tail: number[] = [];
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  if (v4) {
    const w = addressWords(v4[1]!)[0]!;
    tail.push(w >>> 16, w & 0xffff);
    s = s.slice(0, -v4[1]!.length);
    if (s.endsWith(":") && !s.endsWith("::")) s = s.slice(0, -1);
  }
  const [head, rest] = s.split("::") as [string, string | undefined];
  const hs = head ? head.split(":").map((h) => parseInt(h, 16)) : [];
  const rs = rest ? rest.split(":").filter(Boolean).map((h) => parseInt(h, 16)) : [];
  const fill = rest === undefined ? 0 : 8 - hs.length - rs.length - tail.length;
  const groups = [...hs, ...new Array<number>(fill).fill(0), ...rs, ...tail];
  const out: number[] = [];
  for (let i = 0; i < 8; i += 2) out.push(((groups[i]! << 16) | groups[i + 1]!) >>> 0);
  return out;
}
