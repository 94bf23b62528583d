// One timer for every pending request: each request's next event (resend or deadline) sits in a
// min-heap and one setTimeout is armed for the earliest. Unlike a fixed scan this keeps the
// backoff steps exact and costs nothing when idle; 1000 pending requests are 1000 heap entries,
// not 1000 timers.
import { performance } from "node:perf_hooks";
import { BinaryHeap } from "@capsync/pcap";
import type { Pending } from "./pending.js";

// Timer firings are batched: anything due within this many ms of a firing is handled in it
// (also absorbs timers that fire a fraction of a millisecond early).
export const COALESCE_MS = 2;

export class RequestTimer {
  private readonly heap = new BinaryHeap<{ at: number; p: Pending; gen: number }>((a, b) => a.at < b.at);
  private timer: NodeJS.Timeout | undefined;
  private timerAt = Infinity;
  private tickQueued: NodeJS.Immediate | undefined;
  private ticking = false;
  private closed = false;

  constructor(
    /** When `p` fails if no answer comes. */
    private readonly deadlineAt: (p: Pending) => number,
    /** `p`'s resend or deadline is due (`now` is the firing's time). */
    private readonly due: (p: Pending, now: number) => void,
    /** Requests not done, to tell when cancelled heap entries dominate. */
    private readonly liveCount: () => number,
  ) {}

  /** (Re)schedule `p` at its next resend or its deadline, whichever comes first. */
  schedule(p: Pending): void {
    p.gen++;
    this.heap.push({ at: Math.min(p.nextSendAt, this.deadlineAt(p)), p, gen: p.gen });
    // Cancelled entries stay in the heap until due; shed them when they dominate.
    if (this.heap.size > 64 && this.heap.size > 4 * this.liveCount()) {
      this.heap.retain((e) => e.gen === e.p.gen && e.p.state !== "done");
    }
    this.arm();
  }

  close(): void {
    this.closed = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.tickQueued) clearImmediate(this.tickQueued);
    this.timer = undefined;
    this.tickQueued = undefined;
    this.heap.clear();
  }

  private arm(): void {
    // A queued tick re-arms when it is done.
    if (this.ticking || this.closed || this.tickQueued) return;
    const at = this.heap.peek()?.at;
    if (at === undefined) {
      if (this.timer) clearTimeout(this.timer);
      this.timer = undefined;
      this.timerAt = Infinity;
      return;
    }
    if (this.timer && this.timerAt <= at) return;
    if (this.timer) clearTimeout(this.timer);
    this.timerAt = at;
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.timerAt = Infinity;
      // Work in the check phase, after the poll phase has read answers already queued on the
      // socket: under load this avoids resending requests whose answers are waiting to be read.
      this.tickQueued = setImmediate(() => {
        this.tickQueued = undefined;
        this.tick();
      });
    }, Math.max(0, Math.ceil(at - performance.now())));
  }

  private tick(): void {
    this.ticking = true;
    try {
      const now = performance.now();
      for (;;) {
        const at = this.heap.peek()?.at;
        if (at === undefined || at > now + COALESCE_MS) break;
        const { p, gen } = this.heap.pop()!;
        if (gen !== p.gen || p.state === "done") continue;
        this.due(p, now);
      }
    } finally {
      this.ticking = false;
    }
    this.arm();
  }
}
