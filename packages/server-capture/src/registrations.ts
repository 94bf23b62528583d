// REGISTER's side effect on the management server (the device's alarm-forwarding rule, made by the
// Registrar) and its undoing: after the device's capture is collected, after a day without
// REGISTER/CAPTURE/STOP, and at shutdown. A failed undo keeps the registration for a later try.
import { type Logger, monotonicMs } from "@capsync/common";
import { formatEndpoint } from "@capsync/protocol";
import type { Registrar } from "./registrar.js";
import { isActive, type Outcome } from "./sessions.js";
import type { StateStore } from "./state.js";

const DEFAULT_IDLE_MS = 86_400_000;
/** Shutdown waits this long at most for the management server. */
const SHUTDOWN_BOUND_MS = 15_000;

export class Registrations {
  /** Per device: last REGISTER/CAPTURE/STOP (ms), for the registration idle timeout. */
  private readonly activity = new Map<string, number>();
  private readonly unregistering = new Map<string, Promise<void>>();
  /** REGISTERs in flight: shutdown waits for them, so a rule made during shutdown is deleted too. */
  private readonly registering = new Set<Promise<unknown>>();

  constructor(
    private readonly store: StateStore,
    private readonly registrar: Registrar,
    private readonly log: Logger,
    private readonly idleMs = DEFAULT_IDLE_MS,
    /** Monotonic ms, the clock `expire(now)` is given. */
    private readonly now: () => number = monotonicMs,
  ) {}

  /** A REGISTER, CAPTURE or STOP for the device: its registration is in use. */
  touch(device: string): void {
    this.activity.set(device, this.now());
  }

  register(device: string, peer: { address: string; port: number }): Promise<Outcome> {
    return this.tracked(this.doRegister(device, peer));
  }

  private async doRegister(device: string, peer: { address: string; port: number }): Promise<Outcome> {
    // A STOP's unregister still under way (a filter change re-registers right after its STOP) goes first.
    await this.unregistering.get(device);
    const r = await this.registrar.register(device, { address: peer.address, port: peer.port });
    const d = this.store.upsert(device);
    if (!r.ok) {
      this.store.task(device, "register", "failed", r.message);
      return [503, { reason: r.reason, msg: r.message }];
    }
    d.registration = "active";
    d.orchestrator = formatEndpoint(peer.address, peer.port);
    this.store.task(device, "register", "ok", d.orchestrator);
    return [200, {}];
  }

  /** Undo REGISTER's side effect (the forwarding rule). A failure keeps the registration for a later try. */
  unregister(device: string, why: string): Promise<void> {
    const busy = this.unregistering.get(device);
    if (busy) return busy;
    const d = this.store.get(device);
    if (!d || d.registration !== "active") return Promise.resolve();
    const p = this.registrar
      .unregister(device)
      .then(
        () => {
          d.registration = "not active";
          this.store.task(device, "unregister", "ok", why);
          this.log.info(`unregistered ${device} (${why})`);
        },
        (e: Error) => {
          // Retried after another idle period, or at shutdown.
          this.activity.set(device, this.now());
          this.store.task(device, "unregister", "failed", e.message);
          this.log.warn(`unregister ${device} (${why}) failed: ${e.message}`);
        },
      )
      .finally(() => {
        this.unregistering.delete(device);
        this.store.save(device);
      });
    this.unregistering.set(device, p);
    return p;
  }

  /** Registrations idle (no REGISTER/CAPTURE/STOP, no capture running) for idleMs are undone. */
  expire(now: number): void {
    for (const d of this.store.all()) {
      if (d.registration !== "active" || isActive(d)) continue;
      // A registration read back from the state file counts from this start.
      const last = this.activity.get(d.device) ?? (this.activity.set(d.device, now), now);
      if (now - last >= this.idleMs) void this.unregister(d.device, `idle for ${Math.round(this.idleMs / 1000)} s`);
    }
  }

  /** At shutdown: every registration goes, bounded so an unreachable management server cannot hold the exit. */
  async unregisterAll(): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    const bound = new Promise<void>((r) => (timer = setTimeout(r, SHUTDOWN_BOUND_MS)));
    const all = (async () => {
      await Promise.allSettled([...this.registering]);
      const active = this.store.all().filter((d) => d.registration === "active" || this.unregistering.has(d.device));
      await Promise.all(active.map((d) => this.unregister(d.device, "agent shutdown")));
    })();
    await Promise.race([all, bound]);
    clearTimeout(timer);
  }

  private tracked<T>(p: Promise<T>): Promise<T> {
    this.registering.add(p);
    const done = () => void this.registering.delete(p);
    p.then(done, done);
    return p;
  }
}
