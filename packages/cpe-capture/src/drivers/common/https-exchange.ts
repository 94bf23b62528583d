// One HTTPS request on a keep-alive agent with bare node:https, and its answer read as text: what a
// device REST client needs and nothing more (no proxy, no redirects, no retries). The answer body is
// decompressed (gzip, deflate, br: the encodings the request advertises), capped at 4 MiB after
// decompression, decoded as UTF-8 without a leading BOM. Failures reject with the socket's, parser's
// or zlib's own error, or an HttpError whose code says which limit ended the exchange.
import { request, type Agent } from "node:https";
import type { IncomingMessage } from "node:http";
import type { Socket } from "node:net";
import { Transform, pipeline, type Readable, type TransformCallback } from "node:stream";
import { constants as zc, createBrotliDecompress, createUnzip } from "node:zlib";

/** The largest answer body read, after decompression; a bigger one ends the exchange. */
export const MAX_ANSWER_BYTES = 4 * 1024 * 1024;
export const ACCEPT_ENCODING = "gzip, compress, deflate, br";

/** A limit that ended an exchange: ERR_CANCELED (the caller's signal), ERR_BAD_RESPONSE (an answer too big or cut short). */
export class HttpError extends Error {
  override readonly name = "HttpError";
  constructor(
    message: string,
    readonly code: "ERR_CANCELED" | "ERR_BAD_RESPONSE",
  ) {
    super(message);
  }
}

export interface HttpsTarget {
  agent: Agent;
  /** A name or an IP literal, IPv6 without brackets. */
  host: string;
  port: number;
}

export interface RawAnswer {
  status: number;
  text: string;
}

// Truncated compressed bodies still yield what arrived, as the client this replaces did.
const zlibOptions = { flush: zc.Z_SYNC_FLUSH, finishFlush: zc.Z_SYNC_FLUSH };
const brotliOptions = { flush: zc.BROTLI_OPERATION_FLUSH, finishFlush: zc.BROTLI_OPERATION_FLUSH };

/** "deflate" is zlib-wrapped by the RFC but raw on some servers: give a raw stream the zlib header. */
class ZlibHeader extends Transform {
  private first = true;
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    if (this.first && chunk.length > 0) {
      this.first = false;
      if (chunk[0] !== 0x78) this.push(Buffer.from([0x78, 0x9c]));
    }
    cb(null, chunk);
  }
}

function decoders(res: IncomingMessage, method: string): Transform[] {
  if (method === "HEAD" || res.statusCode === 204) return [];
  switch ((res.headers["content-encoding"] ?? "").toLowerCase()) {
    case "gzip":
    case "x-gzip":
    case "compress":
    case "x-compress":
      return [createUnzip(zlibOptions)];
    case "deflate":
      return [new ZlibHeader(), createUnzip(zlibOptions)];
    case "br":
      return [createBrotliDecompress(brotliOptions)];
    default:
      return [];
  }
}

// Probes to notice a dead peer on an idle keep-alive connection; once per socket.
const probed = new WeakSet<Socket>();
function keepProbing(socket: Socket): void {
  if (probed.has(socket)) return;
  probed.add(socket);
  socket.setKeepAlive(true, 60_000);
}

/**
 * Sends `headers` (in this order; Host and Connection follow) and `body`, resolves with the status and
 * the body text of any HTTP answer. `signal` aborts the exchange (the socket is dropped, not reused).
 */
export function httpsExchange(
  target: HttpsTarget,
  method: string,
  path: string,
  headers: Record<string, string>,
  body: Buffer | undefined,
  signal: AbortSignal,
): Promise<RawAnswer> {
  return new Promise<RawAnswer>((resolve, reject) => {
    let settled = false;
    const done = (err: Error | undefined, answer?: RawAnswer) => {
      if (settled) return;
      settled = true;
      signal.removeEventListener("abort", onAbort);
      if (err) {
        req.destroy();
        reject(err);
      } else resolve(answer!);
    };
    const onAbort = () => done(new HttpError("canceled", "ERR_CANCELED"));
    const req = request({ agent: target.agent, host: target.host, port: target.port, method, path, headers }, (res) => {
      const steps = decoders(res, method);
      const stream: Readable = steps.length === 0 ? res : (pipeline([res, ...steps], () => {}) as unknown as Readable);
      if (steps.length === 0) res.on("aborted", () => done(new HttpError("stream has been aborted", "ERR_BAD_RESPONSE")));
      const chunks: Buffer[] = [];
      let bytes = 0;
      stream.on("data", (chunk: Buffer) => {
        bytes += chunk.length;
        if (bytes > MAX_ANSWER_BYTES) {
          // Settled first: destroying the answer emits its own "aborted" at once.
          done(new HttpError(`maxContentLength size of ${MAX_ANSWER_BYTES} exceeded`, "ERR_BAD_RESPONSE"));
          return stream.destroy();
        }
        chunks.push(chunk);
      });
      stream.on("error", (err) => done(err));
      stream.on("end", () => {
        const all = chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks);
        const text = all.toString("utf8");
        done(undefined, { status: res.statusCode ?? 0, text: text.charCodeAt(0) === 0xfeff ? text.slice(1) : text });
      });
    });
    req.on("socket", keepProbing);
    req.on("error", (err) => done(err));
    if (signal.aborted) return onAbort();
    signal.addEventListener("abort", onAbort, { once: true });
    req.end(body);
  });
}
