import { describe, expect, it } from "vitest";
import { checkCaptureSpec } from "./capture-spec.js";
import { checkCaptureSpecFor } from "./index.js";

describe("checkCaptureSpecFor", () => {
  const cases: Array<{ name: string; type: "msbr" | "gwsbc"; interfaces: string[] | undefined; expected: ReturnType<typeof checkCaptureSpecFor> }> = [
    { name: "msbr, several WAN at once", type: "msbr", interfaces: ["eth-wan", "cellular-wan", "t1-e1-wan"], expected: { ok: true, interfaces: ["eth-wan", "cellular-wan", "t1-e1-wan"] } },
    { name: "msbr, duplicates collapse", type: "msbr", interfaces: ["eth-lan", "eth-lan"], expected: { ok: true, interfaces: ["eth-lan"] } },
    {
      name: "msbr needs one",
      type: "msbr",
      interfaces: undefined,
      expected: { ok: false, field: "interfaces", message: "msbr needs at least one capture interface (one or more of: cellular-wan, fiber-wan, xdsl-wan, shdsl-wan, t1-e1-wan, eth-wan, eth-lan)" },
    },
    {
      name: "msbr, unknown name",
      type: "msbr",
      interfaces: ["eth-wan", "wlan", "GigabitEthernet1"],
      expected: {
        ok: false,
        field: "interfaces",
        message: 'msbr cannot capture on "wlan", "GigabitEthernet1"; expected one or more of: cellular-wan, fiber-wan, xdsl-wan, shdsl-wan, t1-e1-wan, eth-wan, eth-lan',
      },
    },
    { name: "gwsbc defaults to eth-lan", type: "gwsbc", interfaces: [], expected: { ok: true, interfaces: ["eth-lan"] } },
    { name: "gwsbc, eth-lan", type: "gwsbc", interfaces: ["eth-lan"], expected: { ok: true, interfaces: ["eth-lan"] } },
    { name: "gwsbc, no WAN", type: "gwsbc", interfaces: ["eth-wan"], expected: { ok: false, field: "interfaces", message: 'gwsbc cannot capture on "eth-wan"; expected one of: eth-lan' } },
  ];
  it.each(cases)("$name", ({ type, interfaces, expected }) => {
    expect(checkCaptureSpecFor(type, interfaces === undefined ? {} : { interfaces })).toEqual(expected);
  });

  it("single-interface targets refuse several", () => {
    expect(checkCaptureSpec("x", { interfaces: ["a", "b"] }, { interfaces: null, defaultInterfaces: [], multipleInterfaces: false })).toEqual({
      ok: false,
      field: "interfaces",
      message: "x captures on one interface at a time, got a, b",
    });
    expect(checkCaptureSpec("x", { interfaces: ["Gi1/0/1"] }, { interfaces: null, defaultInterfaces: [], multipleInterfaces: true })).toEqual({ ok: true, interfaces: ["Gi1/0/1"] });
  });
});
