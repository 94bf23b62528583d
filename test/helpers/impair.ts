// A userspace stand-in for `tc qdisc ... netem`: this test kernel has no sch_netem and no tc
// actions ("Specified qdisc kind is unknown"), so loss, delay, duplication and reordering of the
// orchestrator <-> agent UDP traffic are applied by this relay instead. Clients send to the
// relay's address; each client gets its own upstream socket to the target (like a NAT mapping), so
// the target's answers, sent back to the source address:port as the protocol says, find their way
// back. Every datagram, both directions, independently: dropped with probability `loss`; delayed
// by a uniform 0..`jitterMs` (which alone reorders); with probability `reorder` held back a further
// `reorderMs`, so later datagrams overtake it; with probability `duplicate` sent twice, each copy
// with its own delay. Decisions come from a seeded PRNG (mulberry32) in arrival order: the same
// seed and the same arrival order give the same impairment. Bounded: at most `queueLimit` copies
// held at once (more are dropped and counted), at most `maxClients` mappings. UDP only; the agents'
// SFTP (TCP) is not impaired.
import { createSocket, type RemoteInfo, type Socket } from "node:dgram";
import { prng } from "@capsync/pcap";

export interface ImpairOptions {
  /** Where clients send (default 127.0.0.1, any free port). */
  listen?: { address?: string; port?: number };
  target: { address: string; port: number };
  seed: number;
  /** Probability a datagram is dropped (0..1). */
  loss: number;
  /** Each copy is delayed uniformly in 0..jitterMs. */
  jitterMs: number;
  /** Probability a datagram is sent twice. */
  duplicate: number;
  /** Probability a copy is held back a further reorderMs (so later datagrams overtake it). */
  reorder: number;
  reorderMs?: number;
  queueLimit?: number;
  maxClients?: number;
  /** Every copy handed to its destination socket. */
  onDeliver?: (direction: Direction, datagram: Buffer) => void;
  /** A datagram for which this returns true is dropped on arrival (counted as lost), whatever the odds. */
  blackhole?: (direction: Direction, datagram: Buffer) => boolean;
}

export type Direction = "toTarget" | "toClient";

export interface DirectionStats {
  received: number;
  lost: number;
  duplicated: number;
  reordered: number;
  delivered: number;
  queueDrops: number;
}

export interface Impairment {
  readonly address: string;
  readonly port: number;
  readonly stats: Record<Direction, DirectionStats>;
  clients(): number;
  close(): Promise<void>;
}

const emptyStats = (): DirectionStats => ({ received: 0, lost: 0, duplicated: 0, reordered: 0, delivered: 0, queueDrops: 0 });

export async function startImpairment(o: ImpairOptions): Promise<Impairment> {
  const rand = prng(o.seed);
  const queueLimit = o.queueLimit ?? 10_000;
  const maxClients = o.maxClients ?? 64;
  const reorderMs = o.reorderMs ?? o.jitterMs;
  const stats: Record<Direction, DirectionStats> = { toTarget: emptyStats(), toClient: emptyStats() };
  const timers = new Set<NodeJS.Timeout>();
  const upstream = new Map<string, Socket>();
  let closed = false;

  const front = createSocket("udp4");
  await new Promise<void>((r) => front.bind(o.listen?.port ?? 0, o.listen?.address ?? "127.0.0.1", () => r()));

  /** Apply the impairment to one datagram and schedule its copies on `out` to port/address. */
  const impair = (dir: Direction, buf: Buffer, out: Socket, port: number, address: string) => {
    const s = stats[dir];
    s.received++;
    // Always draw the same number of values per datagram, so one decision never shifts the others.
    const [lost, dup, d1, r1, d2, r2] = [rand(), rand(), rand(), rand(), rand(), rand()];
    if (lost < o.loss || o.blackhole?.(dir, buf)) {
      s.lost++;
      return;
    }
    const copies = [{ delay: d1 * o.jitterMs, held: r1 < o.reorder }];
    if (dup < o.duplicate) {
      s.duplicated++;
      copies.push({ delay: d2 * o.jitterMs, held: r2 < o.reorder });
    }
    for (const c of copies) {
      if (timers.size >= queueLimit) {
        s.queueDrops++;
        continue;
      }
      if (c.held) s.reordered++;
      const t = setTimeout(() => {
        timers.delete(t);
        if (closed) return;
        s.delivered++;
        o.onDeliver?.(dir, buf);
        out.send(buf, port, address, () => undefined);
      }, c.delay + (c.held ? reorderMs : 0));
      timers.add(t);
    }
  };

  front.on("message", (buf: Buffer, peer: RemoteInfo) => {
    const key = `${peer.address}:${peer.port}`;
    let up = upstream.get(key);
    if (!up) {
      if (upstream.size >= maxClients) return;
      const sock = createSocket("udp4");
      // Answers from the target go back to this client, impaired the same way.
      sock.on("message", (ans: Buffer) => impair("toClient", ans, front, peer.port, peer.address));
      sock.on("error", () => undefined);
      sock.bind(0, "127.0.0.1");
      upstream.set(key, sock);
      up = sock;
    }
    impair("toTarget", buf, up, o.target.port, o.target.address);
  });
  front.on("error", () => undefined);

  const a = front.address();
  return {
    address: a.address,
    port: a.port,
    stats,
    clients: () => upstream.size,
    async close() {
      closed = true;
      for (const t of timers) clearTimeout(t);
      timers.clear();
      await Promise.all([front, ...upstream.values()].map((s) => new Promise<void>((r) => s.close(() => r()))));
      upstream.clear();
    },
  };
}
