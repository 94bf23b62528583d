// The agent's ages: how long a capture has run, on the monotonic clock (a wall-clock step neither
// ends nor extends a capture), read from the state file's monotonic start when it is from this boot.
import { bootId } from "@capsync/common";
import type { SessionRecord } from "./state.js";

/** The monotonic start to record for a session starting now. */
export function monotonicStart(mono: number): Pick<SessionRecord, "startedMono" | "bootId"> {
  const boot = bootId();
  return boot ? { startedMono: mono, bootId: boot } : { startedMono: mono };
}

/**
 * Milliseconds `s` has been running at monotonic time `monoNow`. A record from an older agent (no
 * monotonic start) or from another boot can only be aged by the wall clock.
 */
export function sessionAgeMs(s: SessionRecord, monoNow: number): number {
  if (s.startedMono !== undefined && s.bootId === bootId()) return monoNow - s.startedMono;
  return Date.now() - Date.parse(s.startedAt);
}
