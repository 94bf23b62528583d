// RFC 6587 stream framing for syslog over TCP: octet counting or LF framing, decided per connection.

export type Framing = "octet-counting" | "newline";
export type StreamResult = { ok: true } | { ok: false; code: "framing"; offset: number; message: string };

const MAX_LEN_DIGITS = 9;
/**
 * Splits a TCP byte stream into syslog frames. Framing is decided by the connection's first
 * significant byte: a digit means octet counting (§3.4.1), anything else LF-terminated
 * non-transparent framing (§3.4.2, NUL accepted as trailer too). Frames longer than
 * `maxFrameBytes` are skipped whole and counted; a broken MSG-LEN is an error (no way to resync).
 */
export class SyslogStreamDecoder {
  framing: Framing | null = null;
  oversize = 0;
  private readonly max: number;
  private readonly onFrame: (frame: Buffer) => void;
  private parts: Buffer[] = [];
  private partsLen = 0;
  // octet counting: digits of MSG-LEN so far (-1: between frames), bytes still wanted, skipping?
  private lenDigits = -1;
  private len = 0;
  private want = 0;
  private skipping = false;
  private failed = false;
  private consumed = 0;

  constructor(opts: { maxFrameBytes: number; onFrame: (frame: Buffer) => void }) {
    this.max = opts.maxFrameBytes;
    this.onFrame = opts.onFrame;
  }

  push(chunk: Buffer): StreamResult {
    if (this.failed) return { ok: false, code: "framing", offset: this.consumed, message: "stream already failed" };
    const r = this.framing === "newline" ? this.pushNewline(chunk, 0) : this.pushOctets(chunk);
    if (r.ok) this.consumed += chunk.length;
    else this.failed = true;
    return r;
  }

  /** The peer closed: a last LF-framed message without its trailer still counts. */
  end(): void {
    if (this.framing === "newline" && !this.skipping && this.partsLen > 0) this.emit();
    this.parts = [];
    this.partsLen = 0;
  }

  private emit(): void {
    const frame = Buffer.concat(this.parts, this.partsLen); // always a copy: frames may outlive the chunk
    this.parts = [];
    this.partsLen = 0;
    if (frame.length > 0) this.onFrame(frame);
  }

  private pushNewline(chunk: Buffer, from: number): StreamResult {
    let i = from;
    while (i < chunk.length) {
      let j = i;
      while (j < chunk.length && chunk[j] !== 0x0a && chunk[j] !== 0) j++;
      const piece = chunk.subarray(i, j);
      if (!this.skipping) {
        if (this.partsLen + piece.length > this.max) {
          this.skipping = true;
          this.oversize++;
          this.parts = [];
          this.partsLen = 0;
        } else if (piece.length > 0) {
          this.parts.push(piece);
          this.partsLen += piece.length;
        }
      }
      if (j >= chunk.length) break;
      if (this.skipping) this.skipping = false;
      else this.emit();
      i = j + 1;
    }
    return { ok: true };
  }

  private pushOctets(chunk: Buffer): StreamResult {
    let i = 0;
    while (i < chunk.length) {
      if (this.want > 0) {
        const take = Math.min(this.want, chunk.length - i);
        if (!this.skipping) {
          this.parts.push(chunk.subarray(i, i + take));
          this.partsLen += take;
        }
        this.want -= take;
        i += take;
        if (this.want === 0) {
          if (this.skipping) this.skipping = false;
          else this.emit();
        }
        continue;
      }
      const c = chunk[i]!;
      if (this.lenDigits < 0) {
        // Between frames: tolerate stray LF/CR/NUL/SP some senders add after each frame.
        if (c === 0x0a || c === 0x0d || c === 0 || c === 0x20) {
          i++;
          continue;
        }
        if (this.framing === null) {
          if (c >= 0x31 && c <= 0x39) this.framing = "octet-counting";
          else {
            this.framing = "newline";
            return this.pushNewline(chunk, i);
          }
        }
        if (c < 0x31 || c > 0x39) return this.bad(i, "MSG-LEN must start with a digit 1-9");
        this.lenDigits = 1;
        this.len = c - 0x30;
        i++;
        continue;
      }
      if (c >= 0x30 && c <= 0x39) {
        if (++this.lenDigits > MAX_LEN_DIGITS) return this.bad(i, "MSG-LEN has too many digits");
        this.len = this.len * 10 + (c - 0x30);
        i++;
        continue;
      }
      if (c !== 0x20) return this.bad(i, "MSG-LEN must be followed by SP");
      i++;
      this.lenDigits = -1;
      this.want = this.len;
      if (this.len > this.max) {
        this.skipping = true;
        this.oversize++;
      }
    }
    return { ok: true };
  }

  private bad(i: number, message: string): StreamResult {
    return { ok: false, code: "framing", offset: this.consumed + i, message };
  }
}
