// The run's syslog intake: the listener (its own sockets, or datagrams handed over from the agent
// socket), log-only messages written one by one up to a bound per window, and the listener's drop
// counters, logged when they grew and at the end of the run.
import type { RemoteInfo } from "node:dgram";
import type { Logger } from "@capsync/common";
import type { RunConfig } from "../config/schema.js";
import { AfterAlarms } from "../triggers/after-alarms.js";
import { SyslogListener, looksLikeSyslog, type ListeningAddresses } from "../triggers/listener.js";
import { compileMatchers, type LogEvent, type MatcherSpec, type SyslogEvent } from "../triggers/matchers.js";
import type { RunRecorder } from "./recorder.js";
import type { DeviceRecord } from "./model.js";

/** How often the syslog drop counters are checked (a line is logged only when they grew). */
const DROP_WATCH_MS = 10_000;
/** Log-only syslog messages written one by one per window; the rest are counted (see logOnlyAllowed). */
const LOG_ONLY_PER_WINDOW = 100;
const LOG_ONLY_WINDOW_MS = 10_000;

export class SyslogIntake {
  private listener?: SyslogListener;
  /** Periodic check of the syslog drop counters, and the total last logged. */
  private dropWatch?: NodeJS.Timeout;
  private dropsLogged = 0;
  /** Log-only syslog lines written in the current window, and how many were not (monotonic: a wall-clock step cannot hold it open). */
  private readonly logOnly = { since: 0, shown: 0, suppressed: 0 };
  private readonly after = new AfterAlarms({
    alarmsPending: (quietMs) => this.listener?.alarmsPending(quietMs) ?? false,
    onError: (e) => this.log.error(`syslog: work after an alarm's STOP failed: ${(e as Error).message}`),
  });

  constructor(
    private readonly config: RunConfig,
    private readonly log: Logger,
    private readonly recorder: RunRecorder,
    private readonly onEvent: (e: SyslogEvent) => void,
  ) {}

  /** Bind the listener (no UDP socket of its own when the port is shared with the agents). */
  async listen(): Promise<ListeningAddresses> {
    const c = this.config;
    this.listener = new SyslogListener({
      onEvent: this.onEvent,
      onError: (e) => this.log.warn(`syslog: ${e.message}`),
      matchers: compileMatchers(c.stop.alarms.map((a): MatcherSpec => (a.kind === "builtin" ? a.name : { pattern: a.pattern, flags: a.flags }))),
      devices: c.devices.map((d) => d.address),
      maxEventsPerDevice: c.stop.maxEventsPerDevice,
      udp: c.syslog.sharePortWithAgents ? false : { address: c.syslog.listen.host, port: c.syslog.listen.port },
      tcp: c.syslog.tcp ? { address: c.syslog.listen.host, port: c.syslog.listen.port } : false,
    });
    const listening = await this.listener.listen();
    this.dropWatch = setInterval(() => void this.logListenerStats(false), DROP_WATCH_MS);
    this.dropWatch.unref();
    return listening;
  }

  /**
   * A datagram on the agent socket that is no protocol answer. REGISTER makes the agent point the
   * management server's alarm forwarding at the address the REGISTER came from (as the original
   * did), i.e. that socket: syslog arriving there is the listener's too, shared port or not.
   */
  agentSocketDatagram(buf: Buffer, rinfo: RemoteInfo): void {
    if (this.config.syslog.sharePortWithAgents || looksLikeSyslog(buf)) this.listener!.handleDatagram(buf, rinfo);
  }

  /**
   * Run `fn` later, in the order of the calls: what follows an alarm's STOP datagrams (the device's
   * state, journal, events, its REST stop), once the alarms read so far have sent theirs and no
   * more are arriving (triggers/after-alarms.ts).
   */
  afterAlarms(fn: () => void): void {
    this.after.push(fn);
  }

  /** Alarms wait to be handled, one arrived within the last millisecond, or their queued work is not done: work that can wait should. */
  alarmsArriving(): boolean {
    return this.after.pending > 0 || (this.listener?.alarmsPending(1) ?? false);
  }

  /** Run `fn` now, or behind the queued work while alarms arrive or wait (AfterAlarms.runOrQueue). */
  whenQuiet(fn: () => void): void {
    this.after.runOrQueue(fn);
  }

  /** For an async caller: undefined to go on now, else a promise for its turn behind the alarms' work. */
  quietTurn(): Promise<void> | undefined {
    return this.after.turnFor();
  }

  /** A message that stops nothing: written one by one while the window allows. */
  logged(e: LogEvent, device: DeviceRecord | null): void {
    if (!this.logOnlyAllowed()) return;
    this.log.info(`syslog (logged only, ${e.note}) from ${e.from.address}: ${e.message.slice(0, 300)}`);
    this.recorder.event(device, "trigger", `syslog ${e.matcher}`, e.note, e.message.slice(0, 300));
  }

  /** End of the run: the last counters, then the sockets. */
  async close(): Promise<void> {
    clearInterval(this.dropWatch);
    this.after.flush();
    await this.logListenerStats(true);
    await this.listener?.close();
  }

  /**
   * Log-only syslog (other alarms, other devices) is written one by one only up to
   * LOG_ONLY_PER_WINDOW per window; the rest is counted and summed up in one line. A line, an
   * events.csv row and a JSON line each for a storm of other alarms would eat the CPU the socket
   * needs, and the kernel would drop datagrams — the real alarm among them.
   */
  private logOnlyAllowed(now = performance.now()): boolean {
    const w = this.logOnly;
    if (now - w.since >= LOG_ONLY_WINDOW_MS) {
      this.flushLogOnly(now);
      w.since = now;
      w.shown = 0;
    }
    if (w.shown < LOG_ONLY_PER_WINDOW) {
      w.shown++;
      return true;
    }
    w.suppressed++;
    return false;
  }

  private flushLogOnly(now = performance.now()): void {
    const w = this.logOnly;
    if (!w.suppressed) return;
    const detail = `${w.suppressed} more log-only syslog message(s) in ${((now - w.since) / 1000).toFixed(1)} s not written one by one`;
    this.log.warn(`syslog: ${detail}`);
    this.recorder.event(null, "trigger", "syslog log-only", "suppressed", detail);
    w.suppressed = 0;
  }

  /**
   * The syslog intake's counters: a storm may cost dropped datagrams (queue lanes full, or the
   * kernel's receive buffer), never silently. While running, a line only when drops grew; at the
   * end of the run, always.
   */
  private async logListenerStats(final: boolean): Promise<void> {
    if (!this.listener) return;
    if (final || performance.now() - this.logOnly.since >= LOG_ONLY_WINDOW_MS) this.flushLogOnly();
    const s = this.listener.stats();
    const kernel = await this.listener.kernelDrops().catch(() => null);
    const drops = s.dropped + (kernel ?? 0);
    if (!final && drops === this.dropsLogged) return;
    this.dropsLogged = drops;
    const line =
      `syslog listener${final ? " (end of run)" : ""}: received ${s.received}, ignored ${s.ignored} (unrelated), processed ${s.processed}, ` +
      `dropped ${s.dropped} (queue full; ${s.droppedPriority} from the priority lane), kernel drops ${kernel ?? "unknown"}, ` +
      `peak queue ${s.peakQueued}, stop events ${s.stopEvents}, log events ${s.logEvents}`;
    if (drops > 0) this.log.warn(line);
    else this.log.info(line);
  }
}
