// Which pending request an answer belongs to: by request id in v1, by `<VERB> <device>` (and the
// answering agent) in the legacy protocol, which has no ids. Finished requests are remembered for
// a minute so a late duplicate answer (caused by a resend) is told from a stray one.
import type { AgentMode } from "./types.js";
import type { Pending } from "./pending.js";

const RECENT_KEEP_MS = 60_000;

export class AnswerCorrelation {
  private readonly byId = new Map<string, Pending>();
  private readonly byLegacyKey = new Map<string, Pending[]>();
  /** Finished requests (v1 id, or `<agent> <legacy key>`) → finish time. */
  private readonly recent = new Map<string, number>();

  constructor(private readonly mode: AgentMode) {}

  /** A request whose datagram is about to leave: answers may match it from now on. */
  add(p: Pending): void {
    if (this.mode === "v1") this.byId.set(p.id, p);
    else {
      const list = this.byLegacyKey.get(p.legacyKey);
      if (list) list.push(p);
      else this.byLegacyKey.set(p.legacyKey, [p]);
    }
  }

  /** A request ended; `wasActive` when its datagram had left (only then can answers still come). */
  finished(p: Pending, wasActive: boolean, now: number): void {
    if (wasActive) {
      if (this.mode === "v1") {
        this.byId.delete(p.id);
        this.recent.set(p.id, now);
      } else {
        const list = this.byLegacyKey.get(p.legacyKey);
        const i = list?.indexOf(p) ?? -1;
        if (list && i >= 0) list.splice(i, 1);
        if (list?.length === 0) this.byLegacyKey.delete(p.legacyKey);
        this.recent.set(`${p.agent} ${p.legacyKey}`, now);
      }
    }
    // Map iteration is insertion order, so the oldest entries come first.
    for (const [k, at] of this.recent) {
      if (now - at < RECENT_KEEP_MS) break;
      this.recent.delete(k);
    }
  }

  byRequestId(id: string): Pending | undefined {
    return this.byId.get(id);
  }

  /**
   * The legacy request `key` answered from `from`: preferably the one sent to that address; a
   * multi-homed agent bound to a wildcard may answer from another, fine when only one can be meant.
   */
  byLegacyAnswer(key: string, from: string): Pending | undefined {
    const list = this.byLegacyKey.get(key) ?? [];
    return list.find((q) => q.agent === from) ?? (list.length === 1 ? list[0] : undefined);
  }

  /** A v1 id, or `<agent> <legacy key>`, of a request that finished within the last minute. */
  finishedRecently(key: string): boolean {
    return this.recent.has(key);
  }
}
