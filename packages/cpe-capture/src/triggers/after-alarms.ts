// A FIFO of work that follows alarms' STOP datagrams (the device's state, journal, events, its
// REST stop): run in the order it was queued, only once no alarm is waiting or arriving — so a
// burst of alarms is read, and every STOP sent, first — and then in short slices between
// event-loop turns, so the socket is read between them. A steady stream of alarms cannot starve it.

export interface AfterAlarmsOptions {
  /** True while alarms wait to be handled or arrived within `quietMs` (SyslogListener.alarmsPending). */
  alarmsPending: (quietMs: number) => boolean;
  /** Runs when no alarm arrived for this long... */
  quietMs?: number;
  /** ...or when it has waited this long, whatever arrives. */
  maxWaitMs?: number;
  /** Longest stretch of work per event-loop turn (at least one item). */
  sliceMs?: number;
  /** A queued function threw (the rest still run). */
  onError: (err: unknown) => void;
}

export class AfterAlarms {
  private readonly q: Array<(() => void) | undefined> = [];
  private head = 0;
  private immediate: NodeJS.Immediate | null = null;
  /** performance.now() when work last ran, or was first queued after the queue emptied. */
  private since = 0;
  private readonly quietMs: number;
  private readonly maxWaitMs: number;
  private readonly sliceMs: number;

  constructor(private readonly opts: AfterAlarmsOptions) {
    // Gaps within a burst are microseconds; a millisecond without an alarm means it is over. Each slice
    // also starts work whose callbacks (TLS handshakes of REST stops) run outside it, so it must
    // not start while alarms still arrive.
    this.quietMs = opts.quietMs ?? 1;
    // Long enough for a backlog of alarms on a loaded machine (work started meanwhile would slow the
    // reads it waits for); short enough that device stops are never held back for long.
    this.maxWaitMs = opts.maxWaitMs ?? 1000;
    this.sliceMs = opts.sliceMs ?? 2;
  }

  get pending(): number {
    return this.q.length - this.head;
  }

  push(fn: () => void): void {
    if (this.pending === 0) this.since = performance.now();
    this.q.push(fn);
    if (this.immediate === null) this.immediate = setImmediate(this.turn);
  }

  /**
   * Run `fn` now when nothing is queued and no alarm is pending, else queue it behind what is:
   * bookkeeping that may follow an alarm (an agent's answer to its STOP) keeps its order with the
   * alarms' own work and stays out of a burst, and costs nothing extra outside one.
   */
  runOrQueue(fn: () => void): void {
    if (this.pending === 0 && !this.opts.alarmsPending(this.quietMs)) fn();
    else this.push(fn);
  }

  /** Like runOrQueue, for an async caller: undefined when it may go on now, else a promise for its turn. */
  turnFor(): Promise<void> | undefined {
    if (this.pending === 0 && !this.opts.alarmsPending(this.quietMs)) return undefined;
    return new Promise((r) => this.push(r));
  }

  /** Run everything queued now (end of the run: queued work is never dropped). */
  flush(): void {
    if (this.immediate !== null) clearImmediate(this.immediate);
    this.immediate = null;
    while (this.pending > 0) this.runOne();
    this.reset();
  }

  private readonly turn = (): void => {
    this.immediate = null;
    const now = performance.now();
    if (now - this.since < this.maxWaitMs && this.opts.alarmsPending(this.quietMs)) {
      this.immediate = setImmediate(this.turn);
      return;
    }
    this.since = now;
    const deadline = now + this.sliceMs;
    do this.runOne();
    while (this.pending > 0 && performance.now() < deadline);
    if (this.pending > 0) this.immediate = setImmediate(this.turn);
    else this.reset();
  };

  private runOne(): void {
    const fn = this.q[this.head]!;
    this.q[this.head++] = undefined;
    try {
      fn();
    } catch (err) {
      this.opts.onError(err);
    }
  }

  private reset(): void {
    this.q.length = 0;
    this.head = 0;
  }
}
