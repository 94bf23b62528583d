// A classic-BPF interpreter: runs the program `tcpdump -ddd` prints for a filter expression over a
// captured packet, with libpcap's userland semantics (bpf_filter.c): a load past the captured bytes
// or a division by zero rejects the packet. The shared capture uses it to give each device exactly
// the packets its own tcpdump would have kept. Linux ancillary loads (SKF_AD_*, negative offsets)
// are not interpreted: a program using them is refused at parse time, so its session falls back
// to its own tcpdump instead of getting a different answer.

/** A parsed program: 4 words per instruction (code, jt, jf, k), all unsigned. */
export type BpfCode = Uint32Array;

export class BpfParseError extends Error {
  readonly code = "bpf-parse";
}

// Instruction classes and fields (bpf.h).
const LD = 0x00, LDX = 0x01, ST = 0x02, STX = 0x03, ALU = 0x04, JMP = 0x05, RET = 0x06, MISC = 0x07;
const W = 0x00, H = 0x08, B = 0x10;
const IMM = 0x00, ABS = 0x20, IND = 0x40, MEM = 0x60, LEN = 0x80, MSH = 0xa0;
const SRC_X = 0x08;
/** Offsets at and above this are Linux ancillary data, not packet bytes. */
const SKF_AD_OFF = 0xfffff000;
const MEMWORDS = 16;

/** Parse `tcpdump -ddd` output: the instruction count, then one `code jt jf k` line each (decimal). */
export function parseBpf(text: string): BpfCode {
  const lines = text.split("\n").map((l) => l.trim()).filter(Boolean);
  const n = Number(lines[0]);
  if (!Number.isInteger(n) || n < 1 || n > 4096 || lines.length !== n + 1) throw new BpfParseError(`not tcpdump -ddd output: ${JSON.stringify(text.slice(0, 80))}`);
  const prog = new Uint32Array(n * 4);
  for (let i = 0; i < n; i++) {
    const f = lines[i + 1]!.split(/\s+/);
    if (f.length !== 4 || f.some((x) => !/^\d+$/.test(x))) throw new BpfParseError(`instruction ${i}: '${lines[i + 1]}'`);
    for (let j = 0; j < 4; j++) prog[i * 4 + j] = Number(f[j]);
  }
  validate(prog);
  return prog;
}

/** Refuse what the interpreter would not run exactly as libpcap does (bpf_validate plus no ancillary loads). */
function validate(p: BpfCode): void {
  const n = p.length / 4;
  for (let pc = 0; pc < n; pc++) {
    const code = p[pc * 4]!, jt = p[pc * 4 + 1]!, jf = p[pc * 4 + 2]!, k = p[pc * 4 + 3]!;
    const bad = (why: string) => new BpfParseError(`instruction ${pc} (code ${code}): ${why}`);
    switch (code & 0x07) {
      case LD:
      case LDX: {
        const mode = code & 0xe0;
        if (![IMM, ABS, IND, MEM, LEN, MSH].includes(mode)) throw bad("unknown load mode");
        if ((mode === ABS || mode === IND) && k >= SKF_AD_OFF) throw bad("Linux ancillary load");
        if (mode === MEM && k >= MEMWORDS) throw bad("scratch index out of range");
        if ((code & 0x07) === LDX && mode !== IMM && mode !== MEM && mode !== LEN && mode !== MSH) throw bad("unknown ldx mode");
        if ((code & 0x07) === LD && mode === MSH) throw bad("msh is ldx only");
        break;
      }
      case ST:
      case STX:
        if (k >= MEMWORDS) throw bad("scratch index out of range");
        break;
      case ALU: {
        const op = code & 0xf0;
        if (op > 0xa0) throw bad("unknown alu op");
        if ((op === 0x30 || op === 0x90) && !(code & SRC_X) && k === 0) throw bad("division by constant zero");
        break;
      }
      case JMP: {
        const op = code & 0xf0;
        if (op > 0x40) throw bad("unknown jump");
        const targets = op === 0x00 ? [pc + 1 + k] : [pc + 1 + jt, pc + 1 + jf];
        if (targets.some((t) => t >= n)) throw bad("jump out of the program");
        break;
      }
      case RET:
        if (![0x00, 0x08, 0x10].includes(code & 0x18)) throw bad("unknown return source");
        break;
      case MISC:
        if ((code & 0xf8) !== 0x00 && (code & 0xf8) !== 0x80) throw bad("unknown misc op");
        break;
    }
  }
  if ((p[(n - 1) * 4]! & 0x07) !== RET) throw new BpfParseError("the last instruction is not a return");
}

/**
 * Run `prog` over `pkt` (the captured bytes; `wirelen` the packet's length on the wire): the number
 * of bytes to keep, 0 to reject. Unsigned 32-bit arithmetic throughout, like the kernel and libpcap.
 */
export function runBpf(prog: BpfCode, pkt: Uint8Array, wirelen: number): number {
  const buflen = pkt.length;
  let A = 0, X = 0;
  let mem: Uint32Array | undefined;
  let pc = 0;
  for (;;) {
    const i = pc * 4;
    const code = prog[i]!;
    const k = prog[i + 3]!;
    pc++;
    switch (code) {
      case RET | 0x00: return k;
      case RET | 0x10: return A >>> 0;
      case RET | 0x08: return X >>> 0;
      case LD | W | ABS: if (k + 4 > buflen) return 0; A = ((pkt[k]! << 24) | (pkt[k + 1]! << 16) | (pkt[k + 2]! << 8) | pkt[k + 3]!) >>> 0; break;
      case LD | H | ABS: if (k + 2 > buflen) return 0; A = (pkt[k]! << 8) | pkt[k + 1]!; break;
      case LD | B | ABS: if (k >= buflen) return 0; A = pkt[k]!; break;
      case LD | W | LEN: A = wirelen; break;
      case LDX | W | LEN: X = wirelen; break;
      case LD | W | IND: { const o = X + k; if (o > 0xffffffff || o + 4 > buflen) return 0; A = ((pkt[o]! << 24) | (pkt[o + 1]! << 16) | (pkt[o + 2]! << 8) | pkt[o + 3]!) >>> 0; break; }
      case LD | H | IND: { const o = X + k; if (o > 0xffffffff || o + 2 > buflen) return 0; A = (pkt[o]! << 8) | pkt[o + 1]!; break; }
      case LD | B | IND: { const o = X + k; if (o > 0xffffffff || o >= buflen) return 0; A = pkt[o]!; break; }
      case LDX | B | MSH: if (k >= buflen) return 0; X = (pkt[k]! & 0x0f) << 2; break;
      case LD | IMM: A = k; break;
      case LDX | IMM: X = k; break;
      case LD | MEM: A = mem ? mem[k]! : 0; break;
      case LDX | MEM: X = mem ? mem[k]! : 0; break;
      case ST: (mem ??= new Uint32Array(MEMWORDS))[k] = A; break;
      case STX: (mem ??= new Uint32Array(MEMWORDS))[k] = X; break;
      case JMP | 0x00: pc += k; break;
      case JMP | 0x10: pc += A === k ? prog[i + 1]! : prog[i + 2]!; break;
      case JMP | 0x20: pc += A > k ? prog[i + 1]! : prog[i + 2]!; break;
      case JMP | 0x30: pc += A >= k ? prog[i + 1]! : prog[i + 2]!; break;
      case JMP | 0x40: pc += (A & k) !== 0 ? prog[i + 1]! : prog[i + 2]!; break;
      case JMP | 0x10 | SRC_X: pc += A === X ? prog[i + 1]! : prog[i + 2]!; break;
      case JMP | 0x20 | SRC_X: pc += A > X ? prog[i + 1]! : prog[i + 2]!; break;
      case JMP | 0x30 | SRC_X: pc += A >= X ? prog[i + 1]! : prog[i + 2]!; break;
      case JMP | 0x40 | SRC_X: pc += (A & X) !== 0 ? prog[i + 1]! : prog[i + 2]!; break;
      case MISC | 0x00: X = A; break;
      case MISC | 0x80: A = X; break;
      default:
        if ((code & 0x07) === ALU) {
          const v = code & SRC_X ? X : k;
          const r = alu(code & 0xf0, A, v);
          if (r === undefined) return 0;
          A = r;
          break;
        }
        // validate() refused everything else; a program built by hand that skipped it is rejected here.
        return 0;
    }
  }
}

function alu(op: number, a: number, v: number): number | undefined {
  switch (op) {
    case 0x00: return (a + v) >>> 0;
    case 0x10: return (a - v) >>> 0;
    case 0x20: return Math.imul(a, v) >>> 0;
    case 0x30: return v === 0 ? undefined : Math.floor(a / v) >>> 0;
    case 0x40: return (a | v) >>> 0;
    case 0x50: return (a & v) >>> 0;
    // A shift by 32 or more is undefined in C and never emitted by the pcap compiler: 0 here.
    case 0x60: return v >= 32 ? 0 : (a << v) >>> 0;
    case 0x70: return v >= 32 ? 0 : a >>> v;
    case 0x80: return -a >>> 0;
    case 0x90: return v === 0 ? undefined : (a % v) >>> 0;
    case 0xa0: return (a ^ v) >>> 0;
  }
  return undefined;
}
