// devices_info.json in the run folder: one record per device in the original cpe_capture_app's
// `devices_info` format, built from the manifest's device records and their tasks, written beside
// manifest.json whenever it is (run/manifest-writer.ts), so scripts written for the original keep
// working. The manifest stays the complete record; this is a view of it.
//
// How capsync's states map onto the original's fields (github:dgrissom55/trafficCapture v1.0.6,
// cpe_capture_app/cpe_capture_app.py, line numbers of de5ec0f):
//   tasks        one per device call, named as the original names them: start-capture 'Start capture',
//                confirm-start 'Verify started', stop-capture 'Stop capture', confirm-stop 'Verify
//                stopped', fetch-capture 'Retrieve capture' (2435, 2492, 3041, 3112, 3285); VERIFY's
//                traffic as 'Send ICMP (Ping)' / 'Send UDP (SNMPv3)' / 'Send TCP (Port 443)' (2669-2738).
//   statusCode   the call's HTTP status, -1 without one (send_cli_script 447). On a non-2xx answer the
//                original stored the code under a misspelt 'status_code' and left -1 here (565); capsync
//                puts it where the README and the function's own doc say it is.
//   task status  'Success' for an ok call, else 'Failure' (send_cli_script 447, 530).
//   description  send_cli_script's sentences: ok 'Successfully executed CLI script on device.' (515),
//                status not success 'CLI script execution failed on device.' (524), HTTP error: the
//                device's description or 'Unexpected response received from device. Status code: [N]'
//                (552-557), no answer 'REST Request Error: <error>' (470); show verdicts 'Debug capture
//                is active.' / 'Failed to start debug capture on device!' (2473-2481) and 'Debug capture
//                is not active.' / 'Failed to stop debug capture on device!' (3084-3101); a download
//                'Stored capture from device as file: [<name>]' or the error (3316-3332).
//   device       status, description and severity are those of the latest step, as each step of the
//                original overwrites them: start NORMAL / CRITICAL (2509-2513), VERIFY traffic NORMAL /
//                CRITICAL (2907-2909), stop NORMAL / MAJOR (3129-3133), retrieve NORMAL / CRITICAL
//                (3369-3371). capsync additions: a device capsync gave up on is 'Failure' (at least
//                CRITICAL) whatever its last call said; a run that collected the device file but not
//                every server file is MINOR (the original's MINOR: stopped, files not all in place).
//   cpeCapture   'active' from the confirmed start to the confirmed stop (2509, 3129); `state` is the
//                README's name for it. cpeEvent 'active' from the alarm until the device file is
//                retrieved (3852, 3196). ovocCapture 'active' while a server capture runs (3908, 3920);
//                `ovocState` is the README's name for it.
//   registration 'active' once every agent registered, 'aborted' when one failed (2216), else 'not active'.
//   lastRequest  the latest request to an agent (REGISTER|CAPTURE|VERIFY|STOP, 2240-3214) and
//   lastResponse its answer as the original spells it ('200 OK', 3889).
//   password     always '*****', as secure_json_dump prints it (618-643); no secret is ever in the file.
import { DEVICES_INFO_FILE, devicesInfoText, originalTimestamp, outcome, probeCounts, responseLine, verifyTasks, type InfoSeverity, type InfoStatus, type InfoTask, type StepOutcome } from "@capsync/common";
import { redact } from "@capsync/protocol";
import type { DeviceRecord, Manifest, TaskRecord } from "../run/model.js";

export { DEVICES_INFO_FILE } from "@capsync/common";

/** A device's record in devices_info.json, in the original's key order (README first, then the code's). */
export interface CpeDeviceInfo {
  device: string;
  username: string;
  password: "*****";
  status: InfoStatus;
  state: "active" | "not active";
  events: number;
  ovocState: "active" | "not active";
  description: string;
  lastRequest: string;
  lastResponse: string;
  severity: InfoSeverity;
  tasks: InfoTask[];
  type: string;
  interfaces: string[];
  ovoc: string;
  awaitingResponse: boolean;
  completed: boolean;
  cpeCapture: "active" | "not active";
  cpeEvent: "active" | "not active";
  ovocCapture: "active" | "not active";
  registration: "active" | "not active" | "aborted";
  registerAttempts: number;
  lastCapture: string;
}

const NAMES: Record<string, string> = {
  "start-capture": "Start capture",
  "confirm-start": "Verify started",
  "stop-capture": "Stop capture",
  "confirm-stop": "Verify stopped",
  "fetch-capture": "Retrieve capture",
};
/** Calls that run CLI script text on the device (the original's send_cli_script). */
const SCRIPTS = new Set(["start-capture", "confirm-start", "stop-capture", "confirm-stop"]);
/** Calls of the stop phase: failing them leaves the capture running (MAJOR). */
const STOP_PHASE = new Set(["stop-capture", "confirm-stop"]);

const STARTED = "Debug capture is active.";
const NOT_STARTED = "Failed to start debug capture on device!";
const STOPPED = "Debug capture is not active.";
const NOT_STOPPED = "Failed to stop debug capture on device!";

function taskName(name: string): string {
  return NAMES[name] ?? name.charAt(0).toUpperCase() + name.slice(1).replace(/-/g, " ");
}

const is2xx = (s: number | undefined) => s !== undefined && s >= 200 && s < 300;

function failureDescription(t: TaskRecord): string {
  const text = (t.output ?? "").trim();
  if (t.httpStatus === undefined) return t.name === "fetch-capture" ? text : `REST Request Error: ${text}`;
  if (is2xx(t.httpStatus)) return "CLI script execution failed on device.";
  // The device's own description when it gave one; a body that is markup or JSON is not one.
  return text && !/^[<{[]/.test(text) ? text : `Unexpected response received from device. Status code: [${t.httpStatus}]`;
}

interface Step {
  task: InfoTask;
  outcome: StepOutcome;
}

function deviceSteps(rec: DeviceRecord): Step[] {
  const lastConfirm = (name: string) => rec.tasks.reduce((n, t, i) => (t.name === name ? i : n), -1);
  const lastStartConfirm = lastConfirm("confirm-start");
  const lastStopConfirm = lastConfirm("confirm-stop");
  return rec.tasks.map((t, i) => {
    const ok = t.status === "ok";
    let description: string;
    let good = ok;
    if (!ok) description = failureDescription(t);
    else if (t.name === "confirm-start") {
      // Polls repeat while `show` says "not active": only the last one, once the device captures, saw it active.
      good = i === lastStartConfirm && rec.times.capturing !== undefined;
      description = good ? STARTED : NOT_STARTED;
    } else if (t.name === "confirm-stop") {
      good = i === lastStopConfirm && rec.times.stopped !== undefined;
      description = good ? STOPPED : NOT_STOPPED;
    } else if (t.name === "fetch-capture") description = `Stored capture from device as file: [${rec.deviceFile?.name ?? rec.captureName ?? ""}]`;
    else if (SCRIPTS.has(t.name)) description = "Successfully executed CLI script on device.";
    else description = (t.output ?? "").split("\n")[0]!.trim() || "Success";
    const task: InfoTask = {
      task: taskName(t.name),
      timestamp: originalTimestamp(t.timestamp),
      status: outcome(ok),
      statusCode: t.httpStatus ?? -1,
      output: ok || is2xx(t.httpStatus) ? (t.output ?? "") : "",
      description,
    };
    if (t.name === "stop-capture") task.filename = rec.captureName ?? "";
    if (t.name === "fetch-capture") task.filename = ok ? (rec.deviceFile?.name ?? rec.captureName ?? "") : "";
    const severity: InfoSeverity = good ? "NORMAL" : STOP_PHASE.has(t.name) ? "MAJOR" : "CRITICAL";
    return { task, outcome: { status: outcome(ok), severity, description } };
  });
}

const active = (b: boolean) => (b ? "active" : "not active");

/** "198.51.100.5:20001" or "[2001:db8::5]:20001" → the host, the original's `ovoc` address. */
function agentHost(agent: string): string {
  const m = /^\[(.+)\]:\d+$/.exec(agent) ?? /^([^:]+):\d+$/.exec(agent);
  return m ? m[1]! : agent;
}

/** Address → username from the manifest's (display) config; built once per file, not per device. */
export function usernames(m: Manifest): Map<string, string> {
  const out = new Map<string, string>();
  const devices = (m.config as { devices?: unknown } | undefined)?.devices;
  if (!Array.isArray(devices)) return out;
  for (const d of devices as { address?: unknown; username?: unknown }[]) {
    if (typeof d?.address === "string" && typeof d.username === "string") out.set(d.address, d.username);
  }
  return out;
}

/** One device's devices_info record (see the mapping at the top of this file). */
export function deviceInfo(m: Manifest, rec: DeviceRecord, users: Map<string, string> = usernames(m)): CpeDeviceInfo {
  const steps = deviceSteps(rec);
  if (rec.verify) {
    // VERIFY's traffic leaves before the stop (as send_traffic ran before stop_capture); its results
    // are stamped when the last probe timed out, often after the stop: listed where it was sent.
    const v = verifyTasks(rec.verify.at, probeCounts(rec.verify.orchestrator), { statusCode: true });
    const stop = rec.tasks.findIndex((t) => t.name === "stop-capture");
    steps.splice(stop < 0 ? steps.length : stop, 0, ...v.tasks.map((task) => ({ task, outcome: v.step })));
  }
  const last = steps.at(-1)?.outcome;
  const gaveUp = rec.state === "failed" || rec.status === "failed";
  let status: InfoStatus = last?.status ?? outcome(!gaveUp);
  let severity: InfoSeverity = last?.severity ?? (gaveUp ? "CRITICAL" : "NORMAL");
  let description = last?.description ?? rec.description;
  if (gaveUp) {
    // A last step that went well did not fail the device: capsync's own description says what did.
    if (last?.severity === "NORMAL") description = rec.description;
    status = "Failure";
    if (severity === "NORMAL" || severity === "MINOR") severity = "CRITICAL";
  } else if (rec.status === "partial" && severity === "NORMAL") severity = "MINOR";

  const answers = rec.agents.flatMap((a) => a.answers);
  // The original set lastRequest when it sent a request; an answer's send time is its arrival
  // minus its round trip (VERIFY's probes can outlast the STOP sent after it).
  const sentAt = (a: (typeof answers)[number]): number => Date.parse(a.at) - a.elapsedMs;
  const latest = answers.reduce<(typeof answers)[number] | undefined>((l, a) => (!l || sentAt(a) >= sentAt(l) ? a : l), undefined);
  const registered = rec.agents.length > 0 && rec.agents.every((a) => a.registration === "active");
  const cpeCapture = active(rec.times.capturing !== undefined && rec.times.stopped === undefined && rec.deviceCapture !== "collected" && rec.deviceCapture !== "failed");
  const ovocCapture = active(rec.agents.some((a) => a.capture === "capturing" || a.capture === "stopping"));
  return {
    device: rec.device,
    username: users.get(rec.device) ?? "",
    password: "*****",
    status,
    state: cpeCapture,
    events: rec.events,
    ovocState: ovocCapture,
    description,
    lastRequest: latest?.verb ?? "",
    lastResponse: responseLine(latest?.code),
    severity,
    tasks: steps.map((s) => s.task),
    type: rec.type.toUpperCase(),
    interfaces: [...rec.interfaces],
    ovoc: rec.agents[0] ? agentHost(rec.agents[0].agent) : "",
    awaitingResponse: rec.agents.some((a) => a.capture === "registering" || a.capture === "starting" || a.capture === "stopping"),
    completed: rec.state === "done" || rec.state === "failed",
    cpeCapture,
    cpeEvent: active(rec.stopReason === "alarm" && rec.deviceCapture !== "collected"),
    ovocCapture,
    registration: registered ? "active" : rec.agents.some((a) => a.registration === "failed") ? "aborted" : "not active",
    registerAttempts: answers.filter((a) => a.verb === "REGISTER").reduce((n, a) => n + Math.max(1, a.tries), 0),
    lastCapture: rec.deviceFile?.name ?? "",
  };
}

/** devices_info.json's text for the manifest, in one piece. */
export function devicesInfoJson(m: Manifest, secrets: readonly string[]): string {
  const users = usernames(m);
  return devicesInfoText(
    m.devices.map((d) => deviceInfo(m, d, users)),
    secrets,
  );
}

/** Devices built per event-loop turn in a sliced write (as the manifest's, run/manifest-writer.ts). */
const SLICE = 25;
const turn = () => new Promise<void>((r) => setImmediate(r));

/** The same text as devicesInfoJson, built a slice of devices per turn; `stale()` ends it early. */
export async function slicedDevicesInfoJson(m: Manifest, secrets: readonly string[], stale: () => boolean = () => false): Promise<{ text: string; busyMs: number } | undefined> {
  const records: CpeDeviceInfo[] = [];
  let busyMs = 0;
  let t = performance.now();
  const users = usernames(m);
  for (let i = 0; i < m.devices.length; i += SLICE) {
    for (const d of m.devices.slice(i, i + SLICE)) records.push(deviceInfo(m, d, users));
    busyMs += performance.now() - t;
    await turn();
    if (stale()) return undefined;
    t = performance.now();
  }
  const text = devicesInfoText(records, secrets);
  return { text, busyMs: busyMs + performance.now() - t };
}

/** devicesInfoJson's text a device at a time, for run/manifest-writer.ts's incremental writes (each device's piece at the array's indent of 8). */
const devicesInfoPieces = {
  context: (m: Manifest): unknown => usernames(m),
  device: (m: Manifest, rec: DeviceRecord, users: unknown, secrets: readonly string[]): string =>
    redact(JSON.stringify(deviceInfo(m, rec, users as Map<string, string>), null, 4), secrets).replace(/^/gm, "        "),
  chunks: <C>(pieces: readonly C[]): (C | string)[] => (pieces.length ? ['{\n    "devices": [\n', ...pieces.flatMap((p, i) => (i ? [",\n", p] : [p])), "\n    ]\n}\n"] : ['{\n    "devices": []\n}\n']),
};

/** What run/manifest-writer.ts writes beside manifest.json. */
export const devicesInfoCompanion = { file: DEVICES_INFO_FILE, text: devicesInfoJson, sliced: slicedDevicesInfoJson, pieces: devicesInfoPieces } as const;
