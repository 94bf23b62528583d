// The `capture:` sections of a run config (run-level defaults, per-device overrides) turned into
// the one CaptureSpec model (packages/protocol/src/spec.ts) and checked against every target the
// device's capture runs on — the device itself and its agents — before anything starts.
import { type CaptureSpec, MAX_DURATION_MS, mergeCaptureSpecs, parseDurationValue, type SpecNote, validateCaptureSpec } from "@capsync/protocol";
import { compileFor, agentWireSpec, type CaptureTarget } from "../spec/index.js";
import { describeValue, isPlainObject, type PathIssue } from "./issues.js";

const KEYS = ["interfaces", "direction", "filter", "vrf", "snaplen", "limits"] as const;
const LIMIT_KEYS = ["duration", "packets", "maxSize", "ringFiles", "buffer"] as const;

/** "100MB", "1GB", 100 (MB) → megabytes. */
function megabytes(v: unknown): number | undefined {
  if (typeof v === "number" && Number.isFinite(v) && v > 0) return v;
  if (typeof v !== "string") return undefined;
  const m = /^(\d+(?:\.\d+)?)\s*(MB|GB|M|G)?$/i.exec(v.trim());
  if (!m) return undefined;
  return Number(m[1]) * (/^g/i.test(m[2] ?? "") ? 1000 : 1);
}

/**
 * The config's friendly shape → CaptureSpec. Durations as "1h"/seconds, sizes as "100MB"/MB.
 * Problems are pushed with their path under `base`; the result is undefined then.
 */
export function specFromConfig(raw: unknown, base: (string | number)[], issues: PathIssue[]): CaptureSpec | undefined {
  if (raw === undefined) return {};
  if (!isPlainObject(raw)) {
    issues.push({ path: base, message: `expected an object with ${KEYS.join(", ")}, got ${describeValue(raw)}` });
    return undefined;
  }
  const before = issues.length;
  for (const k of Object.keys(raw)) if (!(KEYS as readonly string[]).includes(k)) issues.push({ path: [...base, k], message: `unknown key '${k}'; expected ${KEYS.join(", ")}` });
  const spec: Record<string, unknown> = { ...raw };
  if (raw.limits !== undefined) {
    if (!isPlainObject(raw.limits)) {
      issues.push({ path: [...base, "limits"], message: `expected an object with ${LIMIT_KEYS.join(", ")}, got ${describeValue(raw.limits)}` });
    } else {
      const l = raw.limits;
      const out: Record<string, unknown> = {};
      for (const k of Object.keys(l)) if (!(LIMIT_KEYS as readonly string[]).includes(k)) issues.push({ path: [...base, "limits", k], message: `unknown key '${k}'; expected ${LIMIT_KEYS.join(", ")}` });
      if (l.duration !== undefined) {
        const d = parseDurationValue(l.duration, MAX_DURATION_MS);
        if (d.ok) out.durationSec = Math.ceil(d.ms / 1000);
        else issues.push({ path: [...base, "limits", "duration"], message: d.message });
      }
      for (const [k, to] of [["maxSize", "maxSizeMb"], ["buffer", "bufferMb"]] as const) {
        if (l[k] === undefined) continue;
        const mb = megabytes(l[k]);
        if (mb === undefined) issues.push({ path: [...base, "limits", k], message: `expected a size like 100MB or 1GB, got ${describeValue(l[k])}` });
        else out[to] = mb;
      }
      if (l.packets !== undefined) out.packets = l.packets;
      if (l.ringFiles !== undefined) out.ringFiles = l.ringFiles;
      spec.limits = out;
    }
  }
  // Aliases and host bits are rewritten here, not only when compiling: the run keeps this spec and
  // sends it to agents and drivers, which must see the canonical words.
  for (const n of sectionNotes(raw)) {
    const [k, side] = n.field.split(".") as ["direction" | "filter", string | undefined];
    if (side === undefined) spec[k] = n.to;
    else spec[k] = { ...(spec[k] as Record<string, unknown>), [side]: n.to };
  }
  return issues.length === before ? (spec as CaptureSpec) : undefined;
}

/**
 * What validation rewrites in one `capture:` section: a direction alias (ingress → in) and prefixes
 * with host bits (10.10.10.10/24 → 10.10.10.0/24). Direction and filter are checked apart, so a
 * bad filter (reported elsewhere) does not hide the direction's note.
 */
function sectionNotes(raw: Record<string, unknown>): SpecNote[] {
  const notes: SpecNote[] = [];
  for (const part of [{ direction: raw.direction }, { filter: raw.filter }]) {
    if (Object.values(part)[0] === undefined) continue;
    const v = validateCaptureSpec(part);
    if (v.ok && v.notes) notes.push(...v.notes);
  }
  return notes;
}

/**
 * Every normalisation in a raw config's capture sections and flow filter, as path + "from → to",
 * e.g. { path: ["devices", 0, "capture", "filter", "src"], message: "10.10.10.10/24 → 10.10.10.0/24" }.
 * `validate` shows them; the config itself is valid with or without them.
 */
export function captureNotes(raw: unknown): PathIssue[] {
  if (!isPlainObject(raw)) return [];
  const out: PathIssue[] = [];
  const add = (base: (string | number)[], notes: SpecNote[]) => {
    for (const n of notes) out.push({ path: [...base, ...n.field.split(".")], message: `${n.from} → ${n.to}` });
  };
  if (isPlainObject(raw.capture)) add(["capture"], sectionNotes(raw.capture));
  if (Array.isArray(raw.devices)) raw.devices.forEach((d, i) => isPlainObject(d) && isPlainObject(d.capture) && add(["devices", i, "capture"], sectionNotes(d.capture)));
  if (isPlainObject(raw.flow) && raw.flow.filter !== undefined) add(["flow"], sectionNotes({ filter: raw.flow.filter }));
  return out;
}

/**
 * Merge run defaults and a device's own capture section, then compile for the device and, when
 * it has agents, for the agents: a spec a target cannot express fails here, naming device and field.
 */
export function checkDeviceSpec(opts: {
  runSpec: CaptureSpec | undefined;
  deviceSpec: CaptureSpec | undefined;
  interfaces: string[] | undefined;
  type: CaptureTarget;
  address: string;
  hasAgents: boolean;
  legacy: boolean;
  path: (string | number)[];
  issues: PathIssue[];
}): CaptureSpec | undefined {
  const merged = mergeCaptureSpecs(opts.runSpec, { ...opts.deviceSpec, ...(opts.interfaces ? { interfaces: opts.interfaces } : {}) });
  const where = (field: string) => {
    const f = field.split(".").filter(Boolean);
    return f[0] === "interfaces" ? [...opts.path, "interfaces", ...f.slice(1).map((x) => (/^\d+$/.test(x) ? Number(x) : x))] : [...opts.path, "capture", ...f];
  };
  const dev = compileFor(opts.type, merged, { device: opts.address });
  if (!dev.ok) {
    opts.issues.push({ path: where(dev.field), message: dev.message });
    return undefined;
  }
  if (opts.hasAgents) {
    const ag = compileFor("agent", merged, { device: opts.address });
    if (!ag.ok) {
      opts.issues.push({ path: where(ag.field), message: `for its agents: ${ag.message}` });
      return undefined;
    }
    if (opts.legacy && agentWireSpec(merged) !== undefined) {
      opts.issues.push({ path: [...opts.path, "capture"], message: "the legacy agent protocol cannot carry a capture filter, direction or limits (only 'host <device>'); remove them or use CSYNC/1 agents" });
      return undefined;
    }
  }
  return merged;
}
