// What a device's capture-spec compiler is (each vendor module brings one per device type) and the
// one way to run it: validate the untrusted spec, compile, name the device in every message. No
// registry here, so drivers compile their own specs without importing the list of all vendors.
import { validateCaptureSpec, type CaptureSpec } from "./model.js";

/** A failure names the spec field (e.g. "filter.dport") and says why, naming the device. */
export type CompileIssue = { ok: false; field: string; message: string };

/**
 * Turns a validated spec into what one device type runs.
 * `text` is the plan as an engineer would read it (CLI lines, a filter expression) for logs, dry
 * runs and golden tests; `plan` is what the driver sends.
 */
export interface SpecCompiler<Key extends string = string, Plan = unknown> {
  /** Where compileFor puts the plan in its answer, e.g. "epc": `{ ok: true, target, text, epc: plan }`. */
  readonly key: Key;
  /** `label` names the device in messages ("<type> <address>"); never throws. */
  compile(spec: CaptureSpec, label: string, opts: CompileOptions): { ok: true; text: string; plan: Plan } | CompileIssue;
}

export interface CompileOptions {
  /** The device address: named in messages, and for agents the `host <device>` scope. */
  device?: string;
  /** Capture point name shown in `text` where the device names its captures (drivers pick a unique one per run). */
  captureName?: string;
}

/** Validates `spec` (untrusted input is fine), then compiles it for `target` with `compiler`. Never throws. */
export function compileWith<Plan>(target: string, compiler: SpecCompiler<string, Plan>, spec: unknown, opts: CompileOptions = {}): { ok: true; text: string; plan: Plan } | CompileIssue {
  const label = opts.device ? `${target} ${opts.device}` : target;
  const v = validateCaptureSpec(spec ?? {});
  if (!v.ok) return { ok: false, field: v.field, message: `${label}: ${v.field || "spec"}: ${v.message}` };
  return compiler.compile(v.spec, label, opts);
}
