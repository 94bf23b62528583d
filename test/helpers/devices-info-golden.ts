// The golden devices_info records: the two examples in trafficCapture's README (seed 002 and
// github:dgrissom55/trafficCapture README.md at de5ec0f, "The 'devices_info' dictionary …"),
// copied verbatim, and a checker that holds a capsync record against one field for field: every
// key the README shows, each value in the README's format.
import { expect } from "vitest";

/** cpe_capture_app.py's record, as its README shows it (one device, one task). */
export const README_CPE_RECORD = ` {
     "devices": [
         {
             "device": "<device ip address>",
             "username": "<device REST API username>",
             "password": "<device REST API password>",
             "status": "Success|Failure",
             "state": "active|not active",
             "events": "Success|Failure",
             "ovocState": "active|not active",
             "description": "<some description>",
             "lastRequest": "<some command request>",
             "lastResponse": "<some command response>",
             "severity": "NORMAL|MINOR|MAJOR|CRITICAL",
             "tasks": [
                 {
                     "task": "<task name>",
                     "timestamp": "%Y-%m-%dT%H:%M:%S:%f%z",
                     "status": "Success|Failure",
                     "statusCode": <http response status code>,
                     "output": "<CLI script execution>",
                     "description": "<CLI script load status>",
                 },
                 ...
                 <Next Task>
             ]
         },
         ...
         <Next Device>
     ]
 }
 
 For a 'Stop capture' task, the following item is added to the task items:
                     "filename": "<capture filename>",`;

/** ovoc_capture_app.py's record, as its README shows it. */
export const README_OVOC_RECORD = ` {
     "devices": [
         {
             "device": "<device ip address>",
             "status": "Success|Failure",
             "state": "active|not active",
             "description": "<some description>",
             "lastCapture": "<last stopped capture filename>",
             "lastRequest": "<some command request>",
             "lastResponse": "<some command response>",
             "severity": "NORMAL|MINOR|MAJOR|CRITICAL",
             "tasks": [
                 {
                     "task": "<task name>",
                     "timestamp": "%Y-%m-%dT%H:%M:%S:%f%z",
                     "status": "Success|Failure",
                     "description": "<status information>",
                 },
                 ...
                 <Next Task>
             ]
         },
         ...
         <Next Device>
     ]
 }
 
 For a 'Stop capture' task, the following item is added to the task items:
                     "filename": "<capture filename>",`;

/** What a README value allows. */
export type Rule = { kind: "text" } | { kind: "enum"; values: string[] } | { kind: "number" } | { kind: "timestamp" } | { kind: "events" };

export interface GoldenShape {
  device: Map<string, Rule>;
  task: Map<string, Rule>;
  /** The key the README adds to 'Stop capture' tasks. */
  stopTaskExtra: string;
}

function rule(key: string, raw: string): Rule {
  const v = raw.trim().replace(/,$/, "");
  if (!v.startsWith('"')) return { kind: "number" }; // <http response status code>, unquoted
  const s = v.slice(1, -1);
  if (key === "timestamp") return { kind: "timestamp" };
  // The README's "events": "Success|Failure" is from v1.0.0; since 1.0.1 the code counts alarms there
  // (cpe_capture_app.py 1195 `= 0`, 3848 `+= 1`), which is what scripts actually read.
  if (key === "events") return { kind: "events" };
  if (s.startsWith("<")) return { kind: "text" };
  return { kind: "enum", values: s.split("|") };
}

/** The README example parsed: device keys (before "tasks") and task keys, each with its rule. */
export function parseReadmeRecord(text: string): GoldenShape {
  const device = new Map<string, Rule>();
  const task = new Map<string, Rule>();
  let inTask = false;
  for (const line of text.split("\n")) {
    if (/"tasks": \[/.test(line)) {
      device.set("tasks", { kind: "text" });
      inTask = true;
      continue;
    }
    if (inTask && /^\s*\]/.test(line)) inTask = false;
    const m = /^\s*"(\w+)": (.+)$/.exec(line);
    // The top level's "devices": [ is the list itself, not a record key.
    if (!m || m[2]!.trim() === "[" || /For a 'Stop capture'/.test(line)) continue;
    if (line.includes('"filename"')) continue;
    (inTask ? task : device).set(m[1]!, rule(m[1]!, m[2]!));
  }
  return { device, task, stopTaskExtra: "filename" };
}

/**
 * The code's timestamp: strftime('%Y-%m-%dT%H:%M:%S.%f%z') of a naive datetime, so no offset — the
 * apps' own example is "2022-06-22T16:13:39.895358". The README's ':%f' is a typo of that '.'.
 */
export const ORIGINAL_TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}$/;

function check(where: string, value: unknown, r: Rule): void {
  switch (r.kind) {
    case "text":
      if (where.endsWith(".tasks")) expect(Array.isArray(value), where).toBe(true);
      else expect(typeof value, where).toBe("string");
      return;
    case "enum":
      expect(r.values, `${where} = ${JSON.stringify(value)}`).toContain(value);
      return;
    case "number":
      expect(Number.isInteger(value), `${where} = ${JSON.stringify(value)}`).toBe(true);
      return;
    case "timestamp":
      expect(value, where).toMatch(ORIGINAL_TIMESTAMP);
      return;
    case "events":
      expect(Number.isInteger(value) && (value as number) >= 0, `${where} = ${JSON.stringify(value)}`).toBe(true);
  }
}

/** Every README key present in `record` and its tasks, each value in the README's format. */
export function expectReadmeShape(record: Record<string, unknown>, shape: GoldenShape): void {
  for (const [k, r] of shape.device) {
    expect(Object.keys(record), `device key ${k}`).toContain(k);
    check(`device.${k}`, record[k], r);
  }
  const tasks = record.tasks as Record<string, unknown>[];
  for (const [i, t] of tasks.entries()) {
    for (const [k, r] of shape.task) {
      expect(Object.keys(t), `tasks[${i}] (${String(t.task)}) key ${k}`).toContain(k);
      check(`tasks[${i}].${k}`, t[k], r);
    }
    if (t.task === "Stop capture") expect(typeof t[shape.stopTaskExtra], `tasks[${i}].filename`).toBe("string");
  }
}
