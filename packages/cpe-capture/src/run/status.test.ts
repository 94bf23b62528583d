import { describe, expect, it } from "vitest";
import { VERSION } from "../version.js";
import { agentClock, renderTable, TABLE_TITLE } from "./status.js";
import type { DeviceRecord } from "./model.js";

const rec = (device: string, state: DeviceRecord["state"]): DeviceRecord => ({ device, name: device, type: "msbr", state, status: "running", severity: "info", description: "", interfaces: [], events: 0, tasks: [], agents: [], times: {} });

describe("status table", () => {
  it("opens with the product and its version, then the column header", () => {
    expect(VERSION).toMatch(/^\d+\.\d+\.\d+/);
    const lines = renderTable([rec("192.0.2.10", "capturing"), rec("192.0.2.11", "done")]);
    expect(lines[0]).toBe(`capsync cpe-capture ${VERSION} — 2 devices, 1 finished`);
    expect(TABLE_TITLE).toBe(`capsync cpe-capture ${VERSION}`);
    expect(lines[1]!.startsWith("DEVICE")).toBe(true);
    expect(lines).toHaveLength(4);
    expect(renderTable([rec("192.0.2.10", "idle")])[0]).toBe(`capsync cpe-capture ${VERSION} — 1 device, 0 finished`);
  });

  it("shows the agents' clock skew, the farthest off of them", () => {
    const side = (agent: string, skewMs?: number) => ({ agent, registration: "active" as const, capture: "capturing" as const, answers: [], files: [], ...(skewMs === undefined ? {} : { clock: { skewMs, uncertaintyMs: 1, at: "" } }) });
    const r = rec("192.0.2.10", "capturing");
    expect(agentClock(r)).toBe("-");
    r.agents = [side("127.0.0.1:1", 120), side("127.0.0.1:2", -95_240), side("127.0.0.1:3")];
    expect(agentClock(r)).toBe("-95.2 s (2)");
    const lines = renderTable([r]);
    expect(lines[1]).toMatch(/SERVER CAPTURE +AGENT CLOCK +EVENTS/);
    expect(lines[2]).toContain("-95.2 s (2)");
  });
});
