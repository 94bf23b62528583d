// The parameters of chrishocker/xepacketcap (guestshell packet-capture API for IOS-XE: iface,
// proto ip|tcp|udp, src/dst "any" or a host address, duration in seconds) mapped onto the capture
// spec one to one, both ways. Not carried over: its fixed capture name PKT_CAP and one-job-at-a-time
// queue (capsync names each capture point uniquely). Its job ids, bucket, file name and circular
// EPC buffer belong to the job, not the spec: `serve` keeps them (serve/http.ts, serve/xepacketcap.ts).
import { validateCaptureSpec, type CaptureSpec, type SpecIssue } from "./model.js";

/** @example { iface: "GigabitEthernet1", proto: "udp", src: "any", dst: "192.0.2.10", duration: 60 } */
export interface XePacketCapJob {
  iface: string;
  proto: "ip" | "tcp" | "udp";
  /** "any" or one host address (xepacketcap wrote `host <addr>` into its ACL). */
  src: string;
  dst: string;
  /** Seconds the capture runs. */
  duration: number;
}

export type XePacketCapToSpec = { ok: true; spec: CaptureSpec } | SpecIssue;
export type SpecToXePacketCap = { ok: true; job: XePacketCapJob } | SpecIssue;

/** The spec an xepacketcap job describes: that interface, both directions, the ACE's 3-tuple, the duration. */
export function fromXePacketCap(job: XePacketCapJob): XePacketCapToSpec {
  if (!["ip", "tcp", "udp"].includes(job.proto)) return { ok: false, field: "proto", message: `xepacketcap proto is ip, tcp or udp, got ${JSON.stringify(job.proto)}` };
  for (const side of ["src", "dst"] as const) {
    const v = job[side];
    if (v !== "any" && (typeof v !== "string" || v.includes("/"))) return { ok: false, field: side, message: `xepacketcap ${side} is "any" or one host address, got ${JSON.stringify(v)}` };
  }
  const r = validateCaptureSpec({
    interfaces: [job.iface],
    direction: "both",
    filter: { protocol: job.proto, src: job.src, dst: job.dst },
    limits: { durationSec: job.duration },
  });
  if (!r.ok) {
    const field = { interfaces: "iface", "interfaces.0": "iface", "filter.protocol": "proto", "filter.src": "src", "filter.dst": "dst", "limits.durationSec": "duration" }[r.field] ?? r.field;
    return { ok: false, field, message: r.message };
  }
  return r;
}

/** The xepacketcap job for a spec, when the spec says no more than such a job can. */
export function toXePacketCap(spec: CaptureSpec): SpecToXePacketCap {
  const no = (field: string, why: string): SpecIssue => ({ ok: false, field, message: `xepacketcap: ${field}: ${why}` });
  if (spec.interfaces?.length !== 1) return no("interfaces", "xepacketcap captures on exactly one interface");
  if ((spec.direction ?? "both") !== "both") return no("direction", "xepacketcap always captures both directions");
  const f = spec.filter ?? {};
  if (f.sport !== undefined) return no("filter.sport", "xepacketcap has no ports");
  if (f.dport !== undefined) return no("filter.dport", "xepacketcap has no ports");
  const proto = f.protocol ?? "ip";
  if (proto !== "ip" && proto !== "tcp" && proto !== "udp") return no("filter.protocol", "xepacketcap knows ip, tcp and udp only");
  for (const side of ["src", "dst"] as const) if (f[side]?.includes("/")) return no(`filter.${side}`, "xepacketcap takes one host, not a prefix");
  if (spec.vrf !== undefined) return no("vrf", "xepacketcap has no VRF");
  if (spec.snaplen !== undefined) return no("snaplen", "xepacketcap keeps whole packets");
  const { durationSec, ...rest } = spec.limits ?? {};
  const extra = Object.keys(rest)[0];
  if (extra) return no(`limits.${extra}`, "xepacketcap only limits the duration");
  if (durationSec === undefined) return no("limits.durationSec", "an xepacketcap job always has a duration");
  return { ok: true, job: { iface: spec.interfaces[0]!, proto, src: f.src ?? "any", dst: f.dst ?? "any", duration: durationSec } };
}

/** The extended-ACL entry xepacketcap configured for a job, e.g. "permit udp any host 192.0.2.10". */
export function xePacketCapAce(job: XePacketCapJob): string {
  const end = (v: string) => (v === "any" ? "any" : `host ${v}`);
  return `permit ${job.proto} ${end(job.src)} ${end(job.dst)}`;
}
