// The STOP datagrams of alarms and the journal lines they wait for. The journal must hold a stop
// and its capture name before the STOP names the file (resume trusts it), but one write(2) per
// line per alarm is most of an alarm's cost in a burst: the lines of the alarms handled in one
// stretch of the listener are written with one write(2), then their STOPs leave in arrival order.
// A stretch ends with the listener's callback (a microtask), after MAX_BATCH alarms or after
// MAX_AGE_MS, whichever comes first, so the first STOP of a stretch never waits long for the rest.
import { performance } from "node:perf_hooks";
import type { Journal } from "../artifacts/journal.js";

const MAX_BATCH = 16;
const MAX_AGE_MS = 0.5;

export class AlarmStops {
  private lines = "";
  // Parallel arrays of what each held STOP sends and for whom, reused from stretch to stretch:
  // no closure or array per alarm for the collector to find in a burst.
  private args: unknown[] = [];
  private sends: Array<(arg: never) => void> = [];
  // The pair of the previous stretch, emptied; undefined while a flush runs its sends (a send may
  // flush again: that one then takes new arrays).
  private spare: { args: unknown[]; sends: Array<(arg: never) => void> } | undefined;
  private openedAt = 0;

  constructor(
    private readonly journal: Journal,
    /** The journal could not be written (not ENOSPC: the journal keeps those lines itself). */
    private readonly onError: (e: Error) => void,
  ) {}

  /** `lines` (Journal.line) are written, then `send(arg)` runs, within this turn of the event loop. */
  add<T>(lines: string, arg: T, send: (arg: T) => void): void {
    const now = performance.now();
    if (this.sends.length === 0) {
      this.openedAt = now;
      queueMicrotask(this.flush);
    }
    this.lines += lines;
    this.args.push(arg);
    this.sends.push(send as (arg: never) => void);
    if (this.sends.length >= MAX_BATCH || now - this.openedAt >= MAX_AGE_MS) this.flush();
  }

  /** Write the lines held, then send their STOPs (idempotent: nothing held, nothing done). */
  readonly flush = (): void => {
    if (this.sends.length === 0) return;
    const { lines, args, sends, spare } = this;
    this.lines = "";
    // A send may add (another alarm's stop): it lands in the other pair of arrays.
    this.args = spare ? spare.args : [];
    this.sends = spare ? spare.sends : [];
    this.spare = undefined;
    try {
      this.journal.appendLines(lines);
    } catch (e) {
      // The captures must stop all the same: an unusable journal only costs resume its lines.
      this.onError(e as Error);
    }
    for (let i = 0; i < sends.length; i++) {
      try {
        (sends[i] as (arg: unknown) => void)(args[i]);
      } catch (e) {
        this.onError(e as Error);
      }
    }
    args.length = 0;
    sends.length = 0;
    this.spare = { args, sends };
  };
}
