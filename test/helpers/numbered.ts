// Numbered test traffic: datagrams "seq=<n>;" padded to a size, and the numbers read back from a
// capture's payloads, so a test can say which packets a file (or a ring of files) kept.
import { createSocket } from "node:dgram";

export const NUMBERED_PAYLOAD = 1000;

/**
 * Datagrams seq=from..from+count-1 from 127.0.0.1 to target:port, paced so the kernel drops none:
 * tcpdump's immediate mode keeps 2 MB / 256 KB = 8 frames by default, and loopback queues each
 * datagram twice.
 */
export async function numberedTraffic(target: string, port: number, from: number, count: number, size = NUMBERED_PAYLOAD): Promise<void> {
  const s = createSocket("udp4");
  await new Promise<void>((r) => s.bind(0, "127.0.0.1", () => r()));
  for (let i = from; i < from + count; i++) {
    const buf = Buffer.alloc(size, 0x2e);
    buf.write(`seq=${i};`);
    await new Promise<void>((r) => s.send(buf, port, target, () => r()));
    if (i % 3 === 2) await new Promise((r) => setTimeout(r, 1));
  }
  s.close();
}

/** The sequence number a payload carries, or undefined. */
export function seqOf(payload: Buffer | undefined): number | undefined {
  const m = /^seq=(\d+);/.exec(payload?.subarray(0, 16).toString("latin1") ?? "");
  return m ? Number(m[1]) : undefined;
}
