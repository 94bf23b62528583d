// Clock skew between two hosts, as CSYNC/1 lets each side see it: the peer's wire timestamp against
// our own wall clock. Pure arithmetic and wording; the sides measure, this says what it means.

/** A measured skew: the peer's clock minus ours, and how far off that figure may be. */
export interface ClockSkew {
  /** Positive: the peer's clock is ahead of ours. */
  skewMs: number;
  /** Half the time between our send and our receipt: the true skew is within ± this. */
  uncertaintyMs: number;
}

/**
 * The peer stamped `peerTs` some time between our send (`sentWallMs`) and our receipt
 * (`receivedWallMs`), both read on our wall clock: its skew is taken at the midpoint.
 */
export function measureSkew(peerTs: number, sentWallMs: number, receivedWallMs: number): ClockSkew {
  const mid = (sentWallMs + receivedWallMs) / 2;
  return { skewMs: peerTs - mid, uncertaintyMs: Math.max(0, (receivedWallMs - sentWallMs) / 2) };
}

/** "+95.2 s", "-0.3 s": a skew for a table cell. */
export function formatSkew(skewMs: number): string {
  const s = Math.round(skewMs / 100) / 10;
  return `${s >= 0 ? "+" : "-"}${Math.abs(s).toFixed(1)} s`;
}

/**
 * Which clock is off and by how much, in words: `describeSkew(95_200, "its", "this host's")` →
 * "its clock is 95.2 s ahead of this host's". `skewMs` is the subject's clock minus the reference.
 */
export function describeSkew(skewMs: number, subject: string, reference: string): string {
  const s = Math.abs(Math.round(skewMs / 100) / 10).toFixed(1);
  if (Math.abs(skewMs) < 50) return `${subject} clock agrees with ${reference}`;
  return `${subject} clock is ${s} s ${skewMs > 0 ? "ahead of" : "behind"} ${reference}`;
}
