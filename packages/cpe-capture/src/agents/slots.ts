// Requests in flight per agent: at most `max` not yet acknowledged (no 100 Trying or final answer)
// to one agent, the rest wait in a FIFO queue, so a fleet's requests do not flood one agent's intake.
// STOPs have their own, wider cap (`maxStops`, counted against every request in flight to the
// agent) and their own FIFO queue served first: an alarm's STOP leaves at once unless the agent
// already holds that many unacknowledged requests, and a fleet-wide stop reaches the agent at the
// pace it acknowledges them instead of all at once.
import type { Pending } from "./pending.js";

interface Slot {
  active: number;
  queue: Pending[];
  stops: Pending[];
}

export class AgentSlots {
  private readonly slots = new Map<string, Slot>();
  private closed = false;
  readonly maxStops: number;

  constructor(
    readonly max: number,
    maxStops: number,
    /** A queued request got its slot: send it. */
    private readonly activate: (p: Pending) => void,
  ) {
    this.maxStops = Math.max(max, maxStops);
  }

  /** True when `p` has a slot and may be sent now; else it is queued (STOPs in their own queue). */
  take(p: Pending, stop: boolean): boolean {
    let slot = this.slots.get(p.agent);
    if (!slot) this.slots.set(p.agent, (slot = { active: 0, queue: [], stops: [] }));
    // Nothing overtakes a queued request of its own kind (arrival order).
    const free = stop ? slot.stops.length === 0 && slot.active < this.maxStops : slot.stops.length === 0 && slot.queue.length === 0 && slot.active < this.max;
    if (free) {
      slot.active++;
      return true;
    }
    (stop ? slot.stops : slot.queue).push(p);
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
    if (!slot) return;
    for (const q of [slot.stops, slot.queue]) {
      const i = q.indexOf(p);
      if (i >= 0) q.splice(i, 1);
    }
    this.pump(p.agent, slot);
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
      while (slot.active < this.maxStops && slot.stops.length > 0) {
        slot.active++;
        this.activate(slot.stops.shift()!);
      }
      while (slot.stops.length === 0 && slot.active < this.max && slot.queue.length > 0) {
        slot.active++;
        this.activate(slot.queue.shift()!);
      }
    }
    if (slot.active === 0 && slot.queue.length === 0 && slot.stops.length === 0) this.slots.delete(agent);
  }
}
