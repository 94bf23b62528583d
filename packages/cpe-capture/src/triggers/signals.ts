// Ctrl-C / SIGTERM as a stop trigger: the first signal asks for a clean stop of every capture with
// collection; a repeat tells the orchestrator the operator wants out now (skip what can be skipped).
// Deliberately no process.exit here: index.ts is the only place that exits, with a documented code.
import { type ReceivedAt, receivedNow } from "./matchers.js";

export interface SignalEvent {
  kind: "signal";
  signal: NodeJS.Signals;
  /** 1 for the first stop signal of the run, 2 for the next (any of the watched signals), ... */
  count: number;
  receivedAt: ReceivedAt;
}

/** What the trigger listens on; `process` by default, an EventEmitter in tests. */
export interface SignalSource {
  on(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
  off(event: NodeJS.Signals, listener: (signal: NodeJS.Signals) => void): unknown;
}

export interface StopSignalOptions {
  /** Default SIGINT (Ctrl-C), SIGTERM (systemd, docker stop) and SIGHUP (terminal closed). */
  signals?: readonly NodeJS.Signals[];
  source?: SignalSource;
}

export interface StopSignals {
  /** Aborted at the first signal, with the SignalEvent as reason: hand it to anything cancellable. */
  readonly signal: AbortSignal;
  readonly count: number;
  /** Remove the handlers (the default signal behaviour, exiting, comes back). Safe to call twice. */
  dispose(): void;
}

const DEFAULT_STOP_SIGNALS: readonly NodeJS.Signals[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * Install the stop-signal handlers. While installed, the watched signals no longer kill the
 * process: `onSignal` decides (first: stop all cleanly and collect; second: hurry).
 */
export function installStopSignals(onSignal: (event: SignalEvent) => void, opts: StopSignalOptions = {}): StopSignals {
  const source: SignalSource = opts.source ?? process;
  const signals = [...new Set(opts.signals ?? DEFAULT_STOP_SIGNALS)];
  const controller = new AbortController();
  let count = 0;
  let disposed = false;
  const handler = (signal: NodeJS.Signals): void => {
    count++;
    const event: SignalEvent = { kind: "signal", signal, count, receivedAt: receivedNow() };
    if (count === 1) controller.abort(event);
    onSignal(event);
  };
  for (const s of signals) source.on(s, handler);
  return {
    signal: controller.signal,
    get count() {
      return count;
    },
    dispose() {
      if (disposed) return;
      disposed = true;
      for (const s of signals) source.off(s, handler);
    },
  };
}
