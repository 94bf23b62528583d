// The agent's devices_info.json in its capture dir: one record per device in the original
// ovoc_capture_app's `devices_info` format, built from the state file's records and written with
// every state file write (state.ts flush, already coalesced and throttled for large fleets).
//
// How the agent's states map onto the original's fields (github:dgrissom55/trafficCapture v1.0.6,
// ovoc_capture_app/ovoc_capture_app.py, line numbers of de5ec0f):
//   tasks        capture 'Start capture' with the temp file in `filename` and 'Started capture for
//                device to file: [<tmp>]' (3117-3154); stop 'Stop capture' with the device file name in
//                `filename`, 'Stopped capture on device as file: [<name>]' (3387-3417), then one
//                'Rename temporary capture file' per file, `filename` the final name, 'Successfully
//                renamed capture file: [<temp>]' (3474-3518); VERIFY's traffic 'Send ICMP (Ping)' /
//                'Send UDP (SNMPv3)' / 'Send TCP (Port 443)' (1758-1985). A failed task's description is
//                the error, as the original's `'{}'.format(err)`.
//   severity     of the latest step, as the original sets it per step: REGISTER NORMAL / CRITICAL
//                (1444-1446), a failed unregister MINOR (1597; a successful one, which capsync does
//                right after STOP rather than after two idle hours, leaves the outcome as it was), start NORMAL / CRITICAL (3188-3192),
//                stop NORMAL, MINOR if a file was not renamed, MAJOR if tcpdump was not stopped (3553-3561),
//                VERIFY NORMAL / CRITICAL (1996-1998). capsync's own stops (max-duration, disk-low, a
//                spec limit) are 'Stop capture' with severity MINOR: the capture ended before STOP.
//   state        'active' while tcpdump runs (3188, 3553); the code's name for it is ovocCapture.
//   lastCapture  the first file of the last stopped capture; lastRequest the verb, lastResponse its
//                answer as the original spells it ('200 OK', 2783).
//   registration 'active' / 'not active' (2760), regTime seconds since the epoch (2761); cpeFilename,
//                tempCapture, pid, ovocCapture0.. as the original keeps them (3185, 3141, 3238, 3525);
//                file names are bare: the files are in the same dir as devices_info.json.
import { renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { DEVICES_INFO_FILE, devicesInfoText, originalTimestamp, outcome, probeCounts, responseLine, verifyTasks, type InfoSeverity, type InfoStatus, type InfoTask, type StepOutcome } from "@capsync/common";
import type { DeviceRecord, SessionRecord, Task } from "./state.js";

/** A device's record, README keys first (device … tasks), then the ones the code adds as it goes. */
export interface AgentDeviceInfo {
  device: string;
  status: InfoStatus;
  state: "active" | "not active";
  description: string;
  lastCapture: string;
  lastRequest: string;
  lastResponse: string;
  severity: InfoSeverity;
  tasks: InfoTask[];
  registration: "active" | "not active";
  regTime?: number;
  ovocCapture: "active" | "not active";
  cpeFilename?: string;
  tempCapture?: string;
  pid?: string;
  [ovocCaptureN: `ovocCapture${number}`]: string;
}

interface Step {
  tasks: InfoTask[];
  outcome: StepOutcome;
}

const ACTIVE = new Set(["starting", "capturing", "stopping"]);

/** The device file a stop renamed for, back from a final name (naming.ts finalName, inverted). */
function deviceFileOf(finalName: string): string {
  const ovoc = /^OVOC_(.+)-\d+\.pcap$/.exec(finalName);
  if (ovoc) return `CPE_${ovoc[1]}.pcap`;
  const other = /^(.+)_server-\d+\.pcap$/.exec(finalName);
  return other ? `${other[1]}.pcap` : finalName;
}

function stopStep(t: Task, timestamp: string, s: SessionRecord | undefined): Step {
  const files = (t.detail ?? "").split(",").filter(Boolean);
  // The current session knows its temp name and device file; an older stop has only its final names.
  const current = s?.files && s.files.map((f) => f.name).join(",") === (t.detail ?? "") ? s : undefined;
  const forFile = current?.forFile ?? (files[0] ? deviceFileOf(files[0]) : "");
  const stop: InfoTask = { task: "Stop capture", timestamp, status: "Success", description: `Stopped capture on device as file: [${forFile}]`, filename: forFile };
  const renames = files.map((name, i): InfoTask => {
    const temp = current ? (current.ring ? `${current.tmpName}${i}` : current.tmpName) : name;
    return { task: "Rename temporary capture file", timestamp, status: "Success", description: `Successfully renamed capture file: [${temp}]`, filename: name };
  });
  const last = renames.at(-1) ?? stop;
  return { tasks: [stop, ...renames], outcome: { status: "Success", severity: "NORMAL", description: last.description } };
}

function verifyStep(t: Task, timestamp: string): Step {
  let parsed: unknown;
  try {
    parsed = JSON.parse(t.detail ?? "");
  } catch {
    parsed = undefined;
  }
  const v = verifyTasks(timestamp, probeCounts(parsed));
  return { tasks: v.tasks, outcome: v.step };
}

function step(t: Task, d: DeviceRecord, isLastCapture: boolean): Step {
  const timestamp = originalTimestamp(t.timestamp);
  const ok = t.status === "ok";
  const detail = t.detail ?? "";
  const single = (task: string, description: string, severity: InfoSeverity, extra: Partial<InfoTask> = {}, status: InfoStatus = outcome(ok)): Step => ({
    tasks: [{ task, timestamp, status, description, ...extra }],
    outcome: { status, severity, description },
  });
  switch (t.task) {
    case "register":
      return single("Register device", ok ? `Registered device for CPE capture script: [${detail}]` : detail, ok ? "NORMAL" : "CRITICAL");
    case "unregister":
      return single("Unregister device", ok ? `Unregistered device: ${detail}` : detail, ok ? "NORMAL" : "MINOR");
    case "capture": {
      const tmp = detail.split(" ")[0] ?? "";
      const filename = ok ? tmp : isLastCapture ? (d.session?.tmpName ?? "") : "";
      return single("Start capture", ok ? `Started capture for device to file: [${tmp}]` : detail, ok ? "NORMAL" : "CRITICAL", { filename });
    }
    case "stop":
      return stopStep(t, timestamp, d.session);
    case "verify":
      return verifyStep(t, t.timestamp);
    case "watchdog":
      return single("Stop capture", `Capture stopped by the agent (${detail}); files kept.`, "MINOR", { filename: "" }, "Success");
    case "adopt":
      return single("Adopt capture", detail, "NORMAL");
    case "recover":
      return single("Recover capture", detail, "NORMAL");
    default:
      return single(t.task.charAt(0).toUpperCase() + t.task.slice(1), detail, ok ? "NORMAL" : "CRITICAL");
  }
}

/** One device's record (see the mapping at the top of this file). */
export function agentDeviceInfo(d: DeviceRecord): AgentDeviceInfo {
  const lastCaptureTask = d.tasks.reduce((n, t, i) => (t.task === "capture" ? i : n), -1);
  const steps = d.tasks.map((t, i) => step(t, d, i === lastCaptureTask));
  // capsync unregisters right after the STOP (the original only after two idle hours, 4416): a
  // successful unregister is housekeeping and leaves the record on the capture's outcome.
  const last = steps.filter((x, i) => !(d.tasks[i]!.task === "unregister" && d.tasks[i]!.status === "ok")).at(-1)?.outcome ?? steps.at(-1)?.outcome;
  const s = d.session;
  const running = s !== undefined && ACTIVE.has(s.state);
  const regTask = [...d.tasks].reverse().find((t) => t.task === "register" && t.status === "ok");
  const out: AgentDeviceInfo = {
    device: d.device,
    status: last?.status ?? "Success",
    state: running ? "active" : "not active",
    description: last?.description ?? "",
    lastCapture: s?.files?.[0]?.name ?? "",
    lastRequest: d.lastRequest ?? "",
    lastResponse: responseLine(d.lastResponse === undefined ? undefined : Number(d.lastResponse)),
    severity: last?.severity ?? "NORMAL",
    tasks: steps.flatMap((x) => x.tasks),
    registration: d.registration,
    ...(d.registration === "active" && regTask ? { regTime: Date.parse(regTask.timestamp) / 1000 } : {}),
    ovocCapture: running ? "active" : "not active",
  };
  if (s?.forFile !== undefined) out.cpeFilename = s.forFile;
  if (s) out.tempCapture = s.tmpName;
  if (s) out.pid = s.pid !== undefined ? String(s.pid) : "";
  s?.files?.forEach((f, i) => (out[`ovocCapture${i}`] = f.name));
  return out;
}

/**
 * Writes devices_info.json into `dir` (temp file + rename) for the state file's records; hooked to
 * the state file's writes (state.ts: debounced, it is a view). `changed` names the devices whose
 * records changed since the last call: only those are re-rendered, the others' text is reused
 * (undefined: all). The text is what devicesInfoText renders: {"devices": [...]} indented by 4. A
 * failure is reported once, never thrown: the state file is what matters.
 */
export function devicesInfoWriter(dir: string, onError: (e: Error) => void): (devices: readonly DeviceRecord[], changed?: ReadonlySet<string>) => void {
  const target = join(dir, DEVICES_INFO_FILE);
  const tmp = `${target}.${process.pid}.tmp`;
  const rendered = new Map<string, string>();
  let failing = false;
  return (devices, changed) => {
    try {
      const parts: string[] = [];
      for (const d of devices) {
        let text = changed && !changed.has(d.device) ? rendered.get(d.device) : undefined;
        if (text === undefined) {
          // One record as JSON.stringify({ devices }, null, 4) lays it out: two levels in.
          text = devicesInfoText([agentDeviceInfo(d)], []).slice(`{\n    "devices": [\n`.length, -`\n    ]\n}\n`.length);
          rendered.set(d.device, text);
        }
        parts.push(text);
      }
      const body = parts.length ? `{\n    "devices": [\n${parts.join(",\n")}\n    ]\n}\n` : devicesInfoText([], []);
      writeFileSync(tmp, body, { mode: 0o640 });
      renameSync(tmp, target);
      failing = false;
    } catch (e) {
      if (!failing) onError(e as Error);
      failing = true;
    }
  };
}
