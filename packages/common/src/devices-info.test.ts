process.env.TZ = "America/New_York";

import { describe, expect, it } from "vitest";
import { devicesInfoText, originalTimestamp, probeCounts, responseLine, verifyTasks } from "./devices-info.js";

describe("devices_info value formats", () => {
  it("timestamps: local time, six fraction digits, no offset (the original's naive strftime)", () => {
    expect(originalTimestamp("2026-01-15T12:00:00.123Z")).toBe("2026-01-15T07:00:00.123000");
    expect(originalTimestamp("2026-07-15T12:00:00.000Z")).toBe("2026-07-15T08:00:00.000000");
    expect(originalTimestamp("not a time")).toBe("");
  });

  it("answer codes as the original's lastResponse spells them", () => {
    expect([100, 200, 404, 409, 430, 503].map(responseLine)).toEqual(["100 Trying", "200 OK", "404 Not Found", "409 Conflict", "430 Flow Failed", "503 Service Unavailable"]);
    expect(responseLine(undefined)).toBe("");
    expect(responseLine(0)).toBe("");
  });

  it("probe counts from the probes' result and from the manifest's summary alike", () => {
    expect(probeCounts({ tcpTries: 3, tcpAnswered: 2, udpSent: 3, udpAnswers: 0, icmp: { sent: 3, received: 1 }, snmpv3: { ok: true, sent: 3, answered: 3 } })).toEqual({
      icmp: { sent: 3, answered: 1 },
      snmpv3: { sent: 3, answered: 3 },
      snmp: { sent: 3, answered: 0 },
      tcp: { sent: 3, answered: 2 },
    });
    expect(probeCounts({ ok: true, tcp: "3/3", snmp: "0/3", icmp: "2/3" })).toEqual({ icmp: { sent: 3, answered: 2 }, snmp: { sent: 3, answered: 0 }, tcp: { sent: 3, answered: 3 } });
    expect(probeCounts(null)).toEqual({});
    expect(probeCounts({ tcp: "n/a" })).toEqual({});
  });

  it("VERIFY tasks: Success only when every probe answered; the device sentence joins all kinds", () => {
    const v = verifyTasks("2026-01-15T12:00:00.000Z", { icmp: { sent: 3, answered: 3 }, tcp: { sent: 3, answered: 1 } }, { statusCode: true });
    expect(v.tasks).toEqual([
      { task: "Send ICMP (Ping)", timestamp: "2026-01-15T07:00:00.000000", status: "Success", statusCode: -1, output: "ICMP: 3 of 3 answered.", description: "Successfully sent all ICMP pings to device." },
      { task: "Send TCP (Port 443)", timestamp: "2026-01-15T07:00:00.000000", status: "Failure", statusCode: -1, output: "TCP: 1 of 3 answered.", description: "Failed to receive response to 2 out of 3 TCP connection requests!" },
    ]);
    expect(v.step).toEqual({
      status: "Failure",
      severity: "CRITICAL",
      description: "Successfully sent all ICMP pings to device. Sending UDP SNMPv3 GET requests is disabled. Failed to receive response to 2 out of 3 TCP connection requests!",
    });
    expect(verifyTasks("2026-01-15T12:00:00.000Z", { tcp: { sent: 0, answered: 0 } }).step.status).toBe("Failure");
  });

  it("the file text: {devices} with indent 4, secrets redacted", () => {
    expect(devicesInfoText([{ device: "192.0.2.1", description: "pw s3cret" }], ["s3cret"])).toBe('{\n    "devices": [\n        {\n            "device": "192.0.2.1",\n            "description": "pw ***"\n        }\n    ]\n}\n');
  });
});
