// The stop alarms IOS-XE devices raise themselves: %LINK-n-UPDOWN and %LINEPROTO-n-UPDOWN syslog
// messages (parsed by ./syslog.ts). A "down" stops the device's capture; an "up" is only logged.
import type { MatchHit, Matcher } from "../../triggers/matcher.js";
import { parseIosxeSyslog, parseIosxeUpdown } from "./syslog.js";

function updown(name: string, facility: "LINK" | "LINEPROTO"): Matcher {
  const literal = `%${facility}-`;
  return {
    name,
    stopLiterals: [literal],
    logLiterals: [],
    match(view) {
      if (!view.msg.includes(literal)) return undefined;
      const m = parseIosxeSyslog(view.msg);
      if (!m.ok || m.value.facility !== facility) return undefined;
      const u = parseIosxeUpdown(m.value);
      if (!u.ok) return undefined;
      // Devices send these themselves: the sender is the device, unless a relay forwarded it, when
      // the syslog HOSTNAME or IOS origin-id still names it.
      const candidates: MatchHit["candidates"] = [{ address: view.from.address, via: "sender" }];
      if (view.hostname !== null) candidates.push({ address: view.hostname, via: "hostname" });
      if (m.value.origin !== null) candidates.push({ address: m.value.origin, via: "origin" });
      const v = m.value;
      return { stop: u.value.state === "down", reason: `%${v.facility}-${v.severity}-${v.mnemonic}: ${v.body}`, candidates };
    },
  };
}

/** By the name `stop.alarms` lists them under. */
export const IOSXE_ALARMS = {
  "iosxe-link-down": updown("iosxe-link-down", "LINK"),
  "iosxe-lineproto-down": updown("iosxe-lineproto-down", "LINEPROTO"),
};
