// Server-side helpers the HTTPS emulators share (AudioCodes REST, IOS-XE RESTCONF, OVOC): Basic
// credentials (RFC 7617) checked in constant time, JSON answers with a length, bounded request bodies,
// a device's own listener feeding a shared TLS server, closing with every connection dropped. Not here:
// routes, faults, or any vendor's error bodies.
import { timingSafeEqual } from "node:crypto";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Server as HttpsServer } from "node:https";
import { createServer as createNetServer, type AddressInfo, type Server as NetServer, type Socket } from "node:net";

/** Compares secrets without leaking, through timing, how much of them matched. */
function safeEqual(a: string, b: string): boolean {
  const x = Buffer.from(a);
  const y = Buffer.from(b);
  return x.length === y.length && timingSafeEqual(x, y);
}

/**
 * The user-id and password of an `Authorization: Basic` header; undefined without one. `password` is
 * undefined when the decoded text has no colon (each emulator decides what such a header is worth).
 * @example basicCredentials(req) // "Basic YWRtaW46czNjcjM6dA==" → { user: "admin", password: "s3cr3:t" }
 */
export function basicCredentials(req: IncomingMessage): { user: string; password: string | undefined } | undefined {
  const auth = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? "")?.[1];
  if (!auth) return undefined;
  const decoded = Buffer.from(auth, "base64").toString("utf8");
  const colon = decoded.indexOf(":");
  return colon < 0 ? { user: decoded, password: undefined } : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) };
}

/** Whether the header's credentials are these (a header without a colon has the empty password). */
export function sameCredentials(c: { user: string; password: string | undefined } | undefined, username: string, password: string): boolean {
  return c !== undefined && safeEqual(c.user, username) && safeEqual(c.password ?? "", password);
}

/** `body` as JSON with content-type and content-length; `indent` pretty-prints (RESTCONF devices do). */
export function sendJson(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
  contentType = "application/json",
  indent?: number,
): void {
  const text = JSON.stringify(body, null, indent);
  res.writeHead(status, { "content-type": contentType, "content-length": Buffer.byteLength(text), ...headers });
  res.end(text);
}

/** The whole request body, or undefined (and the request dropped) when it passes `maxBytes`. */
export function readBody(req: IncomingMessage, maxBytes: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const parts: Buffer[] = [];
    let size = 0;
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (size > maxBytes) {
        resolve(undefined);
        req.destroy();
        return;
      }
      parts.push(c);
    });
    req.on("end", () => resolve(Buffer.concat(parts)));
    req.on("error", reject);
  });
}

/** Listens on host:port (0: any free port) and resolves to the port, or rejects with the listen error. */
export function listen(server: NetServer, host: string, port: number): Promise<number> {
  return new Promise((resolve, reject) => {
    server.once("error", reject);
    server.listen({ host, port }, () => {
      server.off("error", reject);
      resolve((server.address() as AddressInfo).port);
    });
  });
}

/** Stops `server` listening and destroys every socket in `sockets`; resolves when the server has closed. */
function closeListener(server: NetServer, ...sockets: ReadonlySet<Socket>[]): Promise<void> {
  return new Promise<void>((resolve) => {
    server.close(() => resolve());
    for (const set of sockets) for (const s of set) s.destroy();
  });
}

/**
 * A device's TCP listener on host:port whose connections `https` (which never listens itself) takes
 * over; connections arriving once `refuse()` is true are dropped. `close` also drops the live ones.
 */
export async function listenForTls(https: HttpsServer, host: string, port: number, refuse: () => boolean): Promise<{ port: number; close(...more: ReadonlySet<Socket>[]): Promise<void> }> {
  const sockets = new Set<Socket>();
  const server = createNetServer((socket) => {
    if (refuse()) return void socket.destroy();
    sockets.add(socket);
    socket.once("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    https.emit("connection", socket);
  });
  const bound = await listen(server, host, port);
  return { port: bound, close: (...more) => closeListener(server, sockets, ...more) };
}

/** Leaves a request unanswered (a "timeout" fault) until the client gives up or the device closes. */
export function holdRequest(req: IncomingMessage, held: Set<Socket>): void {
  held.add(req.socket);
  req.socket.once("close", () => held.delete(req.socket));
}
