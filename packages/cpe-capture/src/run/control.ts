// The running orchestrator's control socket: a Unix socket in the run folder (mode 0600, so only
// the run's user and root reach it) through which `cpe-capture filter <run folder>` asks for a live
// filter change. One JSON line in, one JSON line out ({status, body}), then the socket closes.
import { createHash } from "node:crypto";
import { chmodSync, lstatSync, realpathSync, rmSync } from "node:fs";
import { createConnection, createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Logger } from "@capsync/common";

const MAX_REQUEST = 1 << 20;
/** sun_path holds 108 bytes on Linux; a deep run folder gets its socket in the temp dir instead. */
const MAX_PATH = 100;

export interface ControlAnswer {
  status: number;
  body: unknown;
}

/** Where a run folder's control socket is: `<folder>/control.sock`, or a temp-dir name derived from the folder. */
export function controlSocketPath(dir: string): string {
  let real = dir;
  try {
    real = realpathSync(dir);
  } catch {
    /* not there: the caller's connect says so */
  }
  const inFolder = join(real, "control.sock");
  if (Buffer.byteLength(inFolder) <= MAX_PATH) return inFolder;
  return join(tmpdir(), `capsync-${createHash("sha256").update(real).digest("hex").slice(0, 16)}.sock`);
}

export class ControlServer {
  private constructor(
    private readonly server: Server,
    private readonly path: string,
    private readonly open: Set<Socket>,
  ) {}

  static async open(dir: string, handle: (body: unknown) => Promise<ControlAnswer>, log: Logger): Promise<ControlServer> {
    const path = controlSocketPath(dir);
    // A socket left by a killed orchestrator of this folder; never anything else.
    try {
      if (lstatSync(path).isSocket()) rmSync(path);
    } catch {
      /* none */
    }
    const open = new Set<Socket>();
    const server = createServer((sock) => {
      open.add(sock);
      sock.on("close", () => open.delete(sock));
      let buf = "";
      sock.setEncoding("utf8");
      sock.on("error", () => undefined);
      sock.on("data", (chunk: string) => {
        buf += chunk;
        if (buf.length > MAX_REQUEST) return void sock.end(JSON.stringify({ status: 413, body: { error: `request over ${MAX_REQUEST} bytes` } }) + "\n");
        const nl = buf.indexOf("\n");
        if (nl < 0) return;
        sock.pause();
        let req: { verb?: unknown; body?: unknown };
        try {
          req = JSON.parse(buf.slice(0, nl)) as typeof req;
        } catch (e) {
          return void sock.end(JSON.stringify({ status: 400, body: { error: "invalid JSON", issues: [`request: ${(e as Error).message}`] } }) + "\n");
        }
        if (req.verb !== "filter") return void sock.end(JSON.stringify({ status: 400, body: { error: `unknown verb ${JSON.stringify(req.verb)}; expected "filter"` } }) + "\n");
        handle(req.body).then(
          (a) => sock.end(JSON.stringify(a) + "\n"),
          (e: Error) => {
            log.error(`control: filter change crashed: ${e.stack ?? e.message}`);
            sock.end(JSON.stringify({ status: 500, body: { error: `internal error: ${e.message}` } }) + "\n");
          },
        );
      });
    });
    await new Promise<void>((res, rej) => {
      server.once("error", rej);
      server.listen(path, () => res());
    });
    chmodSync(path, 0o600);
    return new ControlServer(server, path, open);
  }

  async close(): Promise<void> {
    // A client that never finished its request must not hold the run's end.
    for (const s of this.open) s.destroy();
    await new Promise<void>((r) => this.server.close(() => r()));
    rmSync(this.path, { force: true });
  }
}

/** Send one request to the run's orchestrator; rejects with code "not-running" when nothing listens. */
export function controlRequest(dir: string, verb: "filter", body: unknown): Promise<ControlAnswer> {
  return new Promise((res, rej) => {
    const sock = createConnection(controlSocketPath(dir));
    let buf = "";
    sock.setEncoding("utf8");
    sock.on("connect", () => sock.write(JSON.stringify({ verb, body }) + "\n"));
    sock.on("data", (d: string) => (buf += d));
    sock.on("error", (e: NodeJS.ErrnoException) => {
      const gone = e.code === "ENOENT" || e.code === "ECONNREFUSED";
      rej(Object.assign(new Error(gone ? "no running orchestrator for this run folder (the run is over, or was interrupted: see cpe-capture resume)" : e.message), { code: gone ? "not-running" : e.code }));
    });
    sock.on("end", () => {
      try {
        res(JSON.parse(buf) as ControlAnswer);
      } catch {
        rej(new Error(`the orchestrator closed the control socket without an answer`));
      }
    });
  });
}
