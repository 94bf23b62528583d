// The agent's intake queue: datagrams read from the socket, waiting to be handled, bounded in count
// and bytes (agent.ts answers what does not fit with 503 overload).
import type { RemoteInfo } from "node:dgram";

/**
 * The intake: up to INTAKE_LIMIT datagrams or INTAKE_MAX_BYTES waiting (a CSYNC/1 request is a few
 * hundred bytes: 16,384 of them ~6 MiB; the byte bound caps a flood of large ones). Sized for a
 * fleet-wide STOP of 10,000 devices at one agent, each answered; beyond it, 503 overload.
 */
export const INTAKE_LIMIT = 16_384;
export const INTAKE_MAX_BYTES = 32 * 1024 * 1024;
/** The longest stretch of queued datagrams handled in one event-loop turn. */
export const DRAIN_STRETCH_MS = 20;

/** A FIFO with O(1) push and shift (an array's shift moves every entry: a 10,000-deep backlog is quadratic). */
export class IntakeQueue {
  private items: ({ buf: Buffer; peer: RemoteInfo } | undefined)[] = [];
  private head = 0;
  bytes = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(buf: Buffer, peer: RemoteInfo): void {
    this.items.push({ buf, peer });
    this.bytes += buf.length;
  }
  shift(): { buf: Buffer; peer: RemoteInfo } | undefined {
    if (this.head >= this.items.length) return undefined;
    const e = this.items[this.head];
    this.items[this.head++] = undefined;
    if (e) this.bytes -= e.buf.length;
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return e;
  }
}
