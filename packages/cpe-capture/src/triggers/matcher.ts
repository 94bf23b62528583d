// What an alarm matcher sees and answers: the contract the built-in matchers (triggers/ovoc-alarm.ts,
// each vendor module's `alarms`) and user patterns implement. Types only, so vendor modules can
// implement it without loading the router.
import type { SyslogErrorCode } from "./rfc5424.js";

export interface Sender {
  address: string;
  port: number;
  transport: "udp" | "tcp";
}

export type SyslogFormat = "rfc5424" | "rfc3164" | "raw";

/** A decoded frame as matchers see it. */
export interface SyslogView {
  format: SyslogFormat;
  /** The MSG part (TAG included for RFC 3164); for frames neither parser accepts, the text after PRI. */
  msg: string;
  hostname: string | null;
  /** The whole frame as text (trailing NUL/CR/LF dropped). */
  line: string;
  /** Why the strict parsers refused the frame (format "raw"), else null. */
  parseError: { code: SyslogErrorCode; offset: number } | null;
  from: Sender;
}

/** How the device of an event was found. */
export type DeviceVia = "alarm" | "pattern" | "sender" | "hostname" | "origin";

export interface MatchHit {
  /** false: a related message that is only logged ("Connection established", link up, ...). */
  stop: boolean;
  reason: string;
  /** Device addresses in order of preference; the first known device wins. */
  candidates: Array<{ address: string; via: DeviceVia }>;
}

export interface Matcher {
  readonly name: string;
  /**
   * Prefilter: a frame whose bytes contain none of these cannot be a stop for this matcher, so the
   * listener skips parsing it. null when no literal is known (a user regex without `contains`).
   */
  readonly stopLiterals: readonly string[] | null;
  /** Frames containing these may produce log-only events; they are parsed at lower priority. */
  readonly logLiterals: readonly string[];
  match(view: SyslogView): MatchHit | undefined;
}
