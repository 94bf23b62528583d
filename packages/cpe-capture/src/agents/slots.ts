// Requests in flight per agent: at most `max` not yet acknowledged (no 100 Trying or final answer)
// to one agent, the rest wait in a FIFO queue, so a fleet's requests do not flood one agent's intake.
// STOPs have their own, wider cap (`maxStops`, counted against every request in flight to the
// agent) and their own FIFO queue served first: an alarm's STOP leaves at once unless the agent
// already holds that many unacknowledged requests, and a fleet-wide stop reaches the agent at the
// pace it acknowledges them instead of all at once.
// Both caps shrink when the agent shows it cannot keep up (a window, as TCP's congestion window):
// on `503 overload`, a `stale` refusal (it read our request 30 s late) or a deadline passing while
// it answers others, the window halves (at most once per CUT_SPACING_MS), and it grows back by one
// per window's worth of answers. An overloaded agent then holds what it can answer, and the rest
// wait here, where waiting costs no deadline. A normal burst is never held back by it.
import type { Pending } from "./pending.js";

const CUT_SPACING_MS = 1_000;
const MIN_WINDOW = 8;

interface Slot {
  active: number;
  queue: Pending[];
  stops: Pending[];
  /** Requests the agent may hold unacknowledged now (≤ maxStops). */
  window: number;
  lastCut: number;
}

export class AgentSlots {
  private readonly slots = new Map<string, Slot>();
  /** Windows of idle agents that were cut (bounded by the number of agents a run talks to). */
  private readonly windows = new Map<string, Slot>();
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
    if (!slot) this.slots.set(p.agent, (slot = this.newSlot(p.agent)));
    // Nothing overtakes a queued request of its own kind (arrival order).
    const free = stop ? slot.stops.length === 0 && slot.active < this.stopCap(slot) : slot.stops.length === 0 && slot.queue.length === 0 && slot.active < this.cap(slot);
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

  /** The agent answered a request (first answer): the window grows back by one per window of answers. */
  answered(agent: string): void {
    const slot = this.slots.get(agent) ?? this.windows.get(agent);
    if (slot && slot.window < this.maxStops) slot.window = Math.min(this.maxStops, slot.window + 1 / slot.window);
  }

  /** The agent cannot keep up (overload, stale, a deadline passed while it answers others): halve its window. */
  congested(agent: string, now: number): void {
    let slot = this.slots.get(agent) ?? this.windows.get(agent);
    if (!slot) this.windows.set(agent, (slot = this.newSlot(agent)));
    if (now - slot.lastCut < CUT_SPACING_MS) return;
    slot.window = Math.max(MIN_WINDOW, slot.window / 2);
    slot.lastCut = now;
  }

  /** Requests holding a slot of this agent now. */
  inFlight(agent: string): number {
    return this.slots.get(agent)?.active ?? 0;
  }

  /** Nothing queued is activated any more. */
  close(): void {
    this.closed = true;
  }

  /** The agent's current window (for messages and tests). */
  windowOf(agent: string): number {
    return (this.slots.get(agent) ?? this.windows.get(agent))?.window ?? this.maxStops;
  }

  private cap(slot: Slot): number {
    return Math.min(this.max, Math.floor(slot.window));
  }

  private stopCap(slot: Slot): number {
    return Math.floor(slot.window);
  }

  private newSlot(agent: string): Slot {
    // An idle agent's window is kept (a fleet's next burst meets what the agent could take).
    const kept = this.windows.get(agent);
    this.windows.delete(agent);
    return { active: 0, queue: [], stops: [], window: kept?.window ?? this.maxStops, lastCut: kept?.lastCut ?? -Infinity };
  }

  private pump(agent: string, slot: Slot): void {
    if (!this.closed) {
      while (slot.active < this.stopCap(slot) && slot.stops.length > 0) {
        slot.active++;
        this.activate(slot.stops.shift()!);
      }
      while (slot.stops.length === 0 && slot.active < this.cap(slot) && slot.queue.length > 0) {
        slot.active++;
        this.activate(slot.queue.shift()!);
      }
    }
    if (slot.active === 0 && slot.queue.length === 0 && slot.stops.length === 0) {
      this.slots.delete(agent);
      if (slot.window < this.maxStops) this.windows.set(agent, slot);
    }
  }
}
