// VERIFY's ICMP echo, as the original sends it (`ping -c N <device>`): node has no raw or ICMP
// sockets, so the system ping (iputils-ping) does it. The address must be an IP literal and goes
// to execFile as one argument after every option: no shell, no host-name lookup.
import { execFile } from "node:child_process";
import { isIP } from "node:net";

export interface IcmpOptions {
  /** Echo requests; default 3, at most 20. */
  count?: number;
  /** How long to wait for each reply; default 1000 ms. */
  timeoutMs?: number;
  /** Between requests; default 200 ms (iputils' minimum for a non-root user). */
  intervalMs?: number;
  /** ICMP payload bytes; default 56 (ping's own default: 64-byte ICMP messages). */
  size?: number;
  /** Tests point this at a stand-in; default `ping` from PATH. */
  binary?: string;
}

export interface IcmpResult {
  sent: number;
  received: number;
  /** Round-trip times of the replies, in milliseconds; absent without replies. */
  rttMs?: { min: number; avg: number; max: number };
  /** Why no echo could be sent at all (ping missing, no route, bad address). */
  error?: string;
}

export const ICMP_DEFAULTS = { count: 3, timeoutMs: 1000, intervalMs: 200, size: 56 } as const;

/** The ping arguments for one VERIFY; exported so the tests can assert them. Throws on a bad address. */
export function pingArgs(address: string, o: IcmpOptions = {}): string[] {
  const family = isIP(address);
  if (family === 0) throw new TypeError(`not an IP address: ${JSON.stringify(address).slice(0, 80)}`);
  const count = clampInt(o.count ?? ICMP_DEFAULTS.count, 1, 20);
  const timeoutMs = clampInt(o.timeoutMs ?? ICMP_DEFAULTS.timeoutMs, 100, 10_000);
  const intervalMs = clampInt(o.intervalMs ?? ICMP_DEFAULTS.intervalMs, 200, 10_000);
  const size = clampInt(o.size ?? ICMP_DEFAULTS.size, 0, 65_507);
  // No -w: with a deadline, -c counts replies and ping keeps sending until it; without one, ping
  // sends exactly `count` echoes and waits -W for the last reply, as the original's `ping -c`.
  return [family === 6 ? "-6" : "-4", "-n", "-c", String(count), "-i", seconds(intervalMs), "-W", seconds(timeoutMs), "-s", String(size), "--", address];
}

/** Send the echo requests and count the replies. Never throws: a failure is in `error`. */
export function icmpEcho(address: string, o: IcmpOptions = {}): Promise<IcmpResult> {
  let args: string[];
  try {
    args = pingArgs(address, o);
  } catch (e) {
    return Promise.resolve({ sent: 0, received: 0, error: (e as Error).message });
  }
  // ping's own bound is (count - 1) intervals plus the reply timeout; this one only backs it up.
  const deadlineMs = (Number(args[args.indexOf("-c") + 1]) - 1) * Number(args[args.indexOf("-i") + 1]) * 1000 + Number(args[args.indexOf("-W") + 1]) * 1000;
  return new Promise((resolve) => {
    // SIGINT makes ping print its summary, should it outlive its own -w deadline.
    execFile(o.binary ?? "ping", args, { env: { PATH: process.env.PATH ?? "/usr/bin:/bin", LC_ALL: "C" }, timeout: deadlineMs + 2000, killSignal: "SIGINT", maxBuffer: 1 << 20 }, (err, stdout, stderr) => {
      const parsed = parsePingOutput(String(stdout));
      if (parsed) return resolve(parsed);
      const code = (err as NodeJS.ErrnoException | null)?.code;
      if (code === "ENOENT") return resolve({ sent: 0, received: 0, error: "ping not found: install iputils-ping" });
      const why = String(stderr).split("\n").find((l) => l.trim() !== "")?.trim() ?? (err ? err.message : "no summary from ping");
      resolve({ sent: 0, received: 0, error: why.slice(0, 200) });
    });
  });
}

/** ping's summary lines (iputils and busybox); undefined when there is none. */
export function parsePingOutput(text: string): IcmpResult | undefined {
  const counts = /(\d+) packets transmitted, (\d+) (?:packets )?received/.exec(text);
  if (!counts) return undefined;
  const r: IcmpResult = { sent: Number(counts[1]), received: Number(counts[2]) };
  const rtt = /(?:rtt|round-trip) min\/avg\/max(?:\/mdev)? = ([\d.]+)\/([\d.]+)\/([\d.]+)/.exec(text);
  if (rtt && r.received > 0) r.rttMs = { min: Number(rtt[1]), avg: Number(rtt[2]), max: Number(rtt[3]) };
  return r;
}

function clampInt(v: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, Math.trunc(Number.isFinite(v) ? v : min)));
}

function seconds(ms: number): string {
  return (ms / 1000).toFixed(3).replace(/\.?0+$/, "");
}
