// Who a capture belongs to. CSYNC/1 carries no run id (a new request argument would be dropped by
// every agent already deployed), so an orchestrator is what the wire does say: the key its MAC
// proves and the address it sends from. Only the owner shares a running capture (CAPTURE again) or
// ends it (STOP); anyone else gets 409 owned-by naming the owner. Legacy mode has no owners.
import type { SessionRecord } from "./state.js";

export type Owner = NonNullable<SessionRecord["owner"]>;

export function sameOwner(a: Owner, b: Owner): boolean {
  return a.key === b.key && a.address === b.address;
}

/** 409 details for a request from another orchestrator than the session's owner. */
export function ownedBy(s: SessionRecord, device: string): Record<string, string> {
  const owner = s.owner!;
  return {
    reason: "owned-by",
    key: owner.key,
    owner: owner.address,
    since: s.startedAt,
    msg: `the capture for ${device} belongs to another orchestrator (key ${owner.key} from ${owner.address}, since ${s.startedAt}); it alone may stop it`,
  };
}
