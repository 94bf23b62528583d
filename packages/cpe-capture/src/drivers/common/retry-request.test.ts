import { describe, expect, it } from "vitest";
import { DeviceProtocolError } from "@capsync/protocol";
import type { DriverTask } from "../driver.js";
import { DeviceCalls } from "./retry.js";

describe("device calls: the request text on every attempt's task", () => {
  it("records the script with each attempt, scrubbed like the output; none when the call sends no text", async () => {
    const tasks: DriverTask[] = [];
    const calls = new DeviceCalls({ label: "t 192.0.2.1", operationMs: undefined, backoffMs: 1, maxBackoffMs: 1, scrub: (s) => s.split("pw-9").join("***"), onTask: (t) => tasks.push(t) });
    let n = 0;
    const out = await calls.run<string>(
      "start-capture",
      2,
      async () => (++n === 1 ? { httpStatus: 503, output: "busy", error: new DeviceProtocolError("busy"), retry: true } : { value: "ok", httpStatus: 200, output: "done pw-9" }),
      1000,
      "line one\nauth-key pw-9",
    );
    expect(out).toBe("ok");
    expect(tasks.map((t) => [t.attempt, t.status, t.request, t.output])).toEqual([
      [1, "failed", "line one\nauth-key ***", "busy"],
      [2, "ok", "line one\nauth-key ***", "done ***"],
    ]);
    await calls.run("fetch-capture", 0, async () => ({ value: 1, output: "1 byte" }), 1000);
    expect("request" in tasks[2]!).toBe(false);
  });
});
