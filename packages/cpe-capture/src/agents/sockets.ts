// The agent client's UDP sockets: one per address family, bound on first need (or at open() for
// a shared syslog port), with a large receive buffer for bursts of answers.
import dgram from "node:dgram";
import dns from "node:dns";
import { type AddressInfo, isIP } from "node:net";
import { AgentError, formatEndpoint } from "@capsync/protocol";
import type { AgentClientOptions, AgentLogger } from "./types.js";

export type Family = 4 | 6;

// A fleet's answers (100 Trying and final per request, hundreds in flight per agent) must fit
// while a busy process is not reading; the kernel caps it at net.core.rmem_max.
const RECV_BUFFER = 4 << 20;

export class AgentSockets {
  private readonly sockets: Partial<Record<Family, Promise<dgram.Socket>>> = {};
  private readonly bound: Partial<Record<Family, dgram.Socket>> = {};
  private closed = false;

  constructor(
    private readonly bind: AgentClientOptions["bind"],
    private readonly log: AgentLogger | undefined,
    private readonly onMessage: (buf: Buffer, rinfo: dgram.RemoteInfo) => void,
  ) {}

  /** The family's socket if it is bound already: then a request is sent within its caller's turn. */
  ready(family: Family): dgram.Socket | undefined {
    return this.bound[family];
  }

  /** The local address of the family's socket, once it exists. */
  localAddress(family: Family): AddressInfo | undefined {
    return this.bound[family]?.address();
  }

  socketFor(family: Family): Promise<dgram.Socket> {
    const have = this.sockets[family];
    if (have) return have;
    const created = this.createSocket(family);
    this.sockets[family] = created;
    // A failed bind (e.g. no IPv6 on this host) is retried by the next request that needs it.
    created.catch(() => {
      if (this.sockets[family] === created) delete this.sockets[family];
    });
    return created;
  }

  close(): void {
    this.closed = true;
    for (const s of Object.values(this.sockets)) {
      s.then((sock) => sock.close()).catch(() => {});
    }
  }

  private async createSocket(family: Family): Promise<dgram.Socket> {
    const type = family === 4 ? "udp4" : "udp6";
    const b = this.bind;
    const address = b?.address !== undefined && isIP(b.address) === family ? b.address : family === 4 ? "0.0.0.0" : "::";
    const port = b?.port ?? 0;
    // ipv6Only: the udp4 and udp6 sockets may share one port number, and IPv4 peers never show up
    // as ::ffff:a.b.c.d on the IPv6 socket.
    // Agents are addressed by IP literal (request() checks): resolved at once, so send() puts the
    // datagram on the wire within the call instead of after dns.lookup's next tick.
    const lookup = ((host: string, o: number, cb: (e: Error | null, a: string, f: number) => void) =>
      isIP(host) ? cb(null, host, family) : dns.lookup(host, o, cb)) as dgram.SocketOptions["lookup"];
    const sock = dgram.createSocket({ type, ipv6Only: family === 6, lookup });
    await new Promise<void>((resolve, reject) => {
      const onError = (e: Error) => {
        sock.close();
        reject(new AgentError("agent-socket", `cannot bind ${type} socket to ${formatEndpoint(address, port)}: ${e.message}`, { cause: e }));
      };
      sock.once("error", onError);
      sock.bind({ address, port, exclusive: true }, () => {
        sock.off("error", onError);
        resolve();
      });
    });
    if (this.closed) {
      sock.close();
      throw new AgentError("agent-aborted", "agent client is closed");
    }
    try {
      // Bursts of answers to many concurrent requests; the kernel caps this at net.core.rmem_max.
      sock.setRecvBufferSize(RECV_BUFFER);
    } catch {
      // Not fatal: retries cover the odd drop.
    }
    sock.on("error", (e) => this.log?.warn("agent socket error", { socket: type, error: e.message }));
    sock.on("message", this.onMessage);
    this.bound[family] = sock;
    const local = sock.address();
    this.log?.debug("agent socket bound", { socket: type, local: formatEndpoint(local.address, local.port) });
    return sock;
  }
}
