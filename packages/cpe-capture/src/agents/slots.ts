// Requests in flight per agent: at most `max` not yet acknowledged (no 100 Trying or final answer)
// to one agent, the rest wait in a FIFO queue, so a fleet's requests do not flood one agent's intake.
import type { Pending } from "./pending.js";

interface Slot {
  active: number;
  queue: Pending[];
}

export class AgentSlots {
  private readonly slots = new Map<string, Slot>();
  private closed = false;

  constructor(
    readonly max: number,
    /** A queued request got its slot: send it. */
    private readonly activate: (p: Pending) => void,
  ) {}

  /** True when `p` has a slot and may be sent now (`always`: takes one even over the limit); else it is queued. */
  take(p: Pending, always: boolean): boolean {
    let slot = this.slots.get(p.agent);
    if (!slot) this.slots.set(p.agent, (slot = { active: 0, queue: [] }));
    if (slot.active < this.max || always) {
      slot.active++;
      return true;
    }
    slot.queue.push(p);
    return false;
  }

  /** An active request gives its slot back (once) to the next queued one. */
  free(p: Pending): void {
    if (p.slotFreed) return;
    p.slotFreed = true;
    const slot = this.slots.get(p.agent);
    if (!slot) return;
    slot.active--;
    this.pump(p.agent, slot);
  }

  /** A queued request ended before it got a slot. */
  unqueue(p: Pending): void {
    const slot = this.slots.get(p.agent);
    const i = slot?.queue.indexOf(p) ?? -1;
    if (slot && i >= 0) slot.queue.splice(i, 1);
    if (slot) this.pump(p.agent, slot);
  }

  /** Requests holding a slot of this agent now. */
  inFlight(agent: string): number {
    return this.slots.get(agent)?.active ?? 0;
  }

  /** Nothing queued is activated any more. */
  close(): void {
    this.closed = true;
  }

  private pump(agent: string, slot: Slot): void {
    if (!this.closed) {
      while (slot.active < this.max && slot.queue.length > 0) {
        slot.active++;
        this.activate(slot.queue.shift()!);
      }
    }
    if (slot.active === 0 && slot.queue.length === 0) this.slots.delete(agent);
  }
}
