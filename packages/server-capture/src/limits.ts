// The agent's limits and guards: which peers may talk to it (--allow), what a flood of refused,
// stale or replayed datagrams costs (bounded answers, bounded log lines), and what stops or refuses
// captures (--max-sessions, --max-duration, a spec's own duration/size limits, --min-free-mb).
import type { RemoteInfo } from "node:dgram";
import { BlockList, isIPv6 } from "node:net";
import { describeSkew, formatDuration, formatEndpoint } from "@capsync/protocol";
import type { Logger } from "@capsync/common";
import type { StateStore } from "./state.js";
import type { Outcome, Sessions } from "./sessions.js";
import { freeMegabytes } from "./system.js";
import { DISK_TICK_MS, DiskRate, ringBoundMb } from "./disk-guard.js";
import { sessionAgeMs } from "./clock.js";

/**
 * The ring every capture writes by default (tcpdump -C 100 -W 10): at most 1 GB per device, and the
 * newest 900 MB to 1 GB before the STOP always on disk. A device's management traffic (SNMP, syslog,
 * REST, a few kbit/s) fills 100 MB in days, so the ring rarely turns; a chatty one turns it instead
 * of filling the disk.
 */
export const DEFAULT_RING_SIZE_MB = 100;
export const DEFAULT_RING_FILES = 10;
/**
 * --max-duration: runs wait for their alarm without a run-wide limit, and the protocol has no
 * keep-alive, so the agent cannot tell a long run from a forgotten one. A week covers any alarm a
 * run was started for; the ring bounds the disk meanwhile.
 */
export const DEFAULT_MAX_DURATION_MS = 7 * 86_400_000;
/**
 * --max-sessions by capture mode. Shared: a device costs the agent a few kB and one open file, so the
 * limit is there for a runaway orchestrator, not for a fleet (BENCHMARKS.md: 5,000 devices measured).
 * Per-device: each capture is a tcpdump process with its own kernel ring (~2-10 MB each).
 */
export const DEFAULT_MAX_SESSIONS = { shared: 10_000, "per-device": 1_000 } as const;
/** The most --max-sessions accepts: open files and the state file grow with it. */
export const MAX_SESSIONS_LIMIT = 100_000;

/** The startup line saying what bounds the disk: the ring per capture times --max-sessions, against the free space now. */
export function ringBudgetLine(o: { ringSizeMb?: number; ringFiles?: number; maxSessions: number; maxDurationMs: number; dir: string }): { level: "info" | "warn"; text: string } {
  const limit = Number.isFinite(o.maxDurationMs) ? `stopped after ${formatDuration(o.maxDurationMs)}` : "never stopped by age (--max-duration none)";
  if (!o.ringSizeMb || !o.ringFiles) {
    return { level: "warn", text: `no ring (--no-ring): a capture grows until STOP, --min-free-disk or --max-duration; captures are ${limit}` };
  }
  const perCapture = o.ringSizeMb * o.ringFiles;
  const worst = perCapture * o.maxSessions;
  let free = Infinity;
  try {
    free = freeMegabytes(o.dir);
  } catch {
    /* reported when the first capture writes */
  }
  const text = `ring: ${o.ringFiles} files x ${o.ringSizeMb} MB per capture (at most ${perCapture} MB each, ${worst} MB with --max-sessions ${o.maxSessions}); captures are ${limit}`;
  return free < worst ? { level: "warn", text: `${text}; only ${Math.floor(free)} MB free now` } : { level: "info", text };
}

/** Lines of drop counts logged per tick; the rest are summed into one line (a flood from many ports is not many lines). */
const MAX_DROP_LINES = 10;
/** Distinct senders tracked per tick for those lines, so spoofed sources cannot grow the table. */
const MAX_DROP_KEYS = 1024;
/** 400 stale answers per sender address and tick: enough to show the clock skew, too few to reflect a replay flood. */
const STALE_ANSWERS_PER_TICK = 5;
/** Clients resend every 250 ms or slower (PROTOCOL.md); a request id repeated faster is a replay flood, re-answered at most this often. */
const RESEND_MIN_MS = 100;

/** The intake's counters (the agent's `counters`). */
export interface IntakeCounters {
  received: number;
  queueDrops: number;
  rejected: number;
  peerDenied: number;
  stale: number;
  replays: number;
  commands: number;
  /** Valid requests answered 503 overload because the intake was full. */
  overloadAnswers: number;
}

/** The --allow list as a BlockList, or undefined when every peer may send. */
export function allowList(cidrs: readonly string[]): BlockList | undefined {
  if (!cidrs.length) return undefined;
  const list = new BlockList();
  for (const cidr of cidrs) addCidr(list, cidr);
  return list;
}

function addCidr(list: BlockList, cidr: string): void {
  const [net, bits] = cidr.split("/");
  const type = isIPv6(net ?? "") ? "ipv6" : "ipv4";
  if (bits === undefined) list.addAddress(net!, type);
  else list.addSubnet(net!, Number(bits), type);
}

export function isValidCidr(cidr: string): boolean {
  const m = /^([^/]+)(?:\/(\d{1,3}))?$/.exec(cidr);
  if (!m) return false;
  const v6 = isIPv6(m[1]!);
  const v4 = /^(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)(\.(25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)){3}$/.test(m[1]!);
  if (!v4 && !v6) return false;
  return m[2] === undefined || Number(m[2]) <= (v6 ? 128 : 32);
}

/**
 * What the intake refuses, answered sparingly and logged in aggregate: dropped datagrams are never
 * answered (no oracle, no amplifier) and cost one log line per sender and tick at most.
 */
export class IntakeLimits {
  private rejectLog = new Map<string, number>();
  private rejectOverflow = { datagrams: 0, senders: new Set<string>(), codes: new Map<string, number>() };
  private staleLog = new Map<string, { requests: number; answered: number; skewMs: number }>();
  private repeatsLimited = new Map<string, number>();
  private queueDropsLogged = 0;

  constructor(
    private readonly counters: IntakeCounters,
    private readonly windowMs: number,
    private readonly log: Logger,
  ) {}

  /** A datagram dropped silently; logged in aggregate by the tick. */
  reject(peer: RemoteInfo, code: string): void {
    this.counters.rejected++;
    const k = `${code} from ${formatEndpoint(peer.address, peer.port)}`;
    const n = this.rejectLog.get(k);
    if (n !== undefined || this.rejectLog.size < MAX_DROP_KEYS) this.rejectLog.set(k, (n ?? 0) + 1);
    else this.overflow(code, formatEndpoint(peer.address, peer.port), 1);
  }

  /**
   * A request outside the time window: answered so an operator sees the clock skew, but a replayed
   * old datagram is stale too, so answers per sender and tick are capped. True when this one may be answered.
   */
  staleMayAnswer(peer: RemoteInfo, requestTs: number): boolean {
    this.counters.stale++;
    let st = this.staleLog.get(peer.address);
    if (!st && this.staleLog.size < MAX_DROP_KEYS) this.staleLog.set(peer.address, (st = { requests: 0, answered: 0, skewMs: 0 }));
    if (st) {
      st.requests++;
      st.skewMs = Date.now() - requestTs;
    }
    if (!st || st.answered >= STALE_ANSWERS_PER_TICK) return false;
    st.answered++;
    return true;
  }

  /** A request id answered before: re-answered at most every RESEND_MIN_MS. True when this repeat may be. */
  repeatMayAnswer(seen: { resentAt?: number }, peer: RemoteInfo, received: number): boolean {
    if (seen.resentAt !== undefined && received - seen.resentAt < RESEND_MIN_MS) {
      this.repeatsLimited.set(peer.address, (this.repeatsLimited.get(peer.address) ?? 0) + 1);
      return false;
    }
    seen.resentAt = received;
    return true;
  }

  private overflow(code: string, sender: string, n: number): void {
    const o = this.rejectOverflow;
    o.datagrams += n;
    if (o.senders.size < MAX_DROP_KEYS) o.senders.add(sender);
    o.codes.set(code, (o.codes.get(code) ?? 0) + n);
  }

  /** What the intake refused since the last tick, in a bounded number of lines. */
  logDrops(): void {
    const log = this.log;
    if (this.rejectLog.size) {
      const byCount = [...this.rejectLog].sort((a, b) => b[1] - a[1]);
      for (const [k, n] of byCount.slice(0, MAX_DROP_LINES)) log.warn(`dropped ${n} datagram(s): ${k}`);
      for (const [k, n] of byCount.slice(MAX_DROP_LINES)) this.overflow(k.slice(0, k.indexOf(" from ")), k.slice(k.indexOf(" from ") + 6), n);
      this.rejectLog.clear();
    }
    const o = this.rejectOverflow;
    if (o.datagrams) {
      const codes = [...o.codes].map(([c, n]) => `${c} ${n}`).join(", ");
      log.warn(`dropped ${o.datagrams} more datagram(s) from ${o.senders.size}${o.senders.size >= MAX_DROP_KEYS ? "+" : ""} other sender(s): ${codes}`);
      this.rejectOverflow = { datagrams: 0, senders: new Set(), codes: new Map() };
    }
    for (const [addr, st] of this.staleLog) {
      log.warn(`stale: ${st.requests} request(s) from ${addr} outside the ${formatDuration(this.windowMs)} window (${describeSkew(-st.skewMs, "the sender's", "this agent's")}), ${st.answered} answered; check the clocks (NTP)`);
    }
    this.staleLog.clear();
    for (const [addr, n] of this.repeatsLimited) log.warn(`not re-answered: ${n} repeat(s) of answered request ids from ${addr} (more often than every ${RESEND_MIN_MS} ms: a replay?)`);
    this.repeatsLimited.clear();
    const queueDrops = this.counters.queueDrops - this.queueDropsLogged;
    if (queueDrops) {
      log.warn(`intake queue full: ${queueDrops} datagram(s) not queued, ${this.counters.overloadAnswers} valid request(s) answered 503 overload so far (${this.counters.queueDrops} not queued so far)`);
      this.queueDropsLogged = this.counters.queueDrops;
    }
  }
}

export interface CaptureLimitOptions {
  dir: string;
  maxSessions: number;
  maxDurationMs: number;
  minFreeMb: number;
  /** The default ring, for records that do not carry their own bound (older agents'). */
  ringSizeMb?: number;
  ringFiles?: number;
  log: Logger;
}

/** The limits on captures: new ones refused, running ones stopped (their files are always kept). */
export class CaptureGuards {
  private diskLow = false;
  /** Free space to see again before accepting captures after a stop for disk-low. */
  private resumeAtMb = 0;
  private readonly disk: DiskRate;
  /** The fast free-space sampler (disk-guard.ts), running while any capture does. */
  private diskTimer?: NodeJS.Timeout;
  /** The rings' room left, measured at most this often when the rate says danger. */
  private growthCache?: { at: number; mb: number };

  constructor(
    private readonly store: StateStore,
    private readonly sessions: Sessions,
    private readonly opts: CaptureLimitOptions,
  ) {
    this.disk = new DiskRate(opts.dir, opts.minFreeMb);
  }

  /** Why a new capture may not start now, or undefined. */
  refuse(): Outcome | undefined {
    if (this.diskLow) return [503, { reason: "disk-low", msg: `less than ${this.opts.minFreeMb} MB free in the capture dir` }];
    // Only a table with at least that many devices can hold that many captures: a fleet's CAPTUREs
    // below the limit do not each walk every record.
    const active = this.store.size >= this.opts.maxSessions ? this.sessions.activeCount() : 0;
    if (active >= this.opts.maxSessions) return [503, { reason: "max-sessions", msg: `max-sessions ${this.opts.maxSessions}: ${active} captures already running` }];
    // A capture is about to start: sample the disk from now, not from the next 1 s tick (at line
    // rate that second alone can fill a small disk).
    this.startSampling();
    return undefined;
  }

  /** Each tick (`now`: monotonic ms): stop captures past --max-duration or their spec's limits, and all of them when the disk runs low. */
  check(now: number): void {
    const log = this.opts.log;
    for (const d of this.store.all()) {
      const s = d.session;
      if (s?.state === "capturing" && sessionAgeMs(s, now) > this.opts.maxDurationMs) {
        log.warn(`capture for ${d.device} reached --max-duration ${formatDuration(this.opts.maxDurationMs)} without a STOP; stopping it (files kept)`);
        this.store.task(d.device, "watchdog", "stopped", "max-duration");
        void this.sessions.stopSession(d.device, "max-duration");
      } else if (s?.state === "capturing" && s.limits) {
        const over =
          s.limits.durationMs !== undefined && sessionAgeMs(s, now) >= s.limits.durationMs
            ? "duration"
            : s.limits.maxBytes !== undefined && this.sessions.tempBytes(s) >= s.limits.maxBytes
              ? "size"
              : undefined;
        if (over) {
          log.info(`capture for ${d.device} reached its spec's ${over} limit; stopping it (files kept)`);
          this.store.task(d.device, "watchdog", "stopped", `spec-${over}`);
          void this.sessions.stopSession(d.device, "spec-limit");
        }
      }
    }
    this.checkDisk();
    this.pace();
  }

  /** Sample the disk every DISK_TICK_MS while a capture runs; nothing while none does. */
  private pace(): void {
    const active = this.sessions.activeCount() > 0;
    if (active) this.startSampling();
    else if (this.diskTimer) {
      clearInterval(this.diskTimer);
      this.diskTimer = undefined;
      this.disk.reset();
    }
  }

  private startSampling(): void {
    if (this.diskTimer) return;
    this.diskTimer = setInterval(() => {
      this.checkDisk();
      this.pace();
    }, DISK_TICK_MS);
    this.diskTimer.unref();
  }

  /** Stop every capture when the disk is low, or would be before a slower check could act (disk-guard.ts). */
  private checkDisk(): void {
    const v = this.disk.sample(() => this.growthMb());
    if (!v) return;
    const log = this.opts.log;
    if (v.low && !this.diskLow) {
      log.error(`${v.low}: stopping all captures, refusing new ones`);
      for (const d of this.store.all()) if (d.session?.state === "capturing") void this.sessions.stopSession(d.device, "disk-low");
      // Not back at the first quiet sample: a rate-based stop trips above the minimum, and the
      // rate is forgotten once nothing captures, so "above the minimum" alone would accept the
      // next CAPTURE at once. Back only when space was freed: more than at the stop, by the room
      // the stop needed (at least 1 MB).
      this.resumeAtMb = Math.max(this.opts.minFreeMb, v.freeMb) + Math.max(v.marginMb, 1);
      this.diskLow = true;
    } else if (this.diskLow && !v.low && v.freeMb >= this.resumeAtMb) {
      log.info(`free disk back to ${v.freeMb.toFixed(1)} MB; accepting captures again`);
      this.diskLow = false;
    }
  }

  /** MB the running captures may still add: each ring's bound less what it holds; Infinity when one has no ring. */
  private growthMb(): number {
    const at = performance.now();
    if (this.growthCache && at - this.growthCache.at < 250) return this.growthCache.mb;
    let mb = 0;
    for (const d of this.store.all()) {
      const s = d.session;
      if (!s || !["starting", "capturing"].includes(s.state)) continue;
      const ringMb = s.ringMb ?? (s.ring && this.opts.ringSizeMb && this.opts.ringFiles ? this.opts.ringSizeMb * this.opts.ringFiles : undefined);
      if (ringMb === undefined) {
        mb = Infinity;
        break;
      }
      mb += Math.max(0, ringBoundMb(ringMb) - this.sessions.tempBytes(s) / 1048576);
    }
    this.growthCache = { at, mb };
    return mb;
  }
}
