// Golden text: flowtracker's README output sample (github.com/networktocode/flowtracker, README.md,
// "Running the script"), reproduced character for character from the same facts; the closing line,
// --json and the failure text of capsync's own.
import { describe, expect, it } from "vitest";
import type { HopReport, TraceResult } from "./walker.js";
import { pythonSeconds, renderClosing, renderHop, renderOverview, traceJson, type TraceFlow } from "./render.js";

const FLOWTRACKER_README_SAMPLE = `
FLOW OVERVIEW:

SRC: 3.3.3.3
DEST: 4.4.4.4
PROTO: 6
SRC_PORT: 1234
DEST_PORT: 80
VRF: default


#############################################################################

CONNECTED TO: 9372-1 (p9372-1)
HOP NUMBER: 1

LOAD_SHARE_MODE: address source-destination port source-destination
VRF: default
OUT_IF: Eth1/52
DEST: 4.4.4.4
NEXT_HOP: 10.10.60.1

OUT_IF:
  RESETS: 6
  TX_STATS:
    1552 unicast packets  233683 multicast packets  3 broadcast packets
    235246 output packets  24675632 bytes
    0 jumbo packets
    0 output error  0 collision  0 deferred  0 late collision
    0 lost carrier  0 no carrier  0 babble  0 output discard
    0 Tx pause




Elapsed Time for Hop: 1.347575 seconds.

#############################################################################

CONNECTED TO: N9K2 (10.10.60.1)
HOP NUMBER: 2

LOAD_SHARE_MODE: address source-destination port source-destination
VRF: default
OUT_IF: Eth2/3
DEST: 4.4.4.4
NEXT_HOP: 10.10.70.2

OUT_IF:
  RESETS: 2
  TX_STATS:
    81 unicast packets  27053 multicast packets  3 broadcast packets
    27150 output packets  3490279 bytes
    0 jumbo packets
    0 output error  0 collision  0 deferred  0 late collision
    0 lost carrier  0 no carrier  0 babble  0 output discard
    0 Tx pause




Elapsed Time for Hop: 4.153353 seconds.

#############################################################################

CONNECTED TO: 9372-2 (10.10.70.2)
HOP NUMBER: 3

LOAD_SHARE_MODE: address source-destination port source-destination
VRF: default
OUT_IF: sup-eth1 , local, attached
DEST: 4.4.4.4
NEXT_HOP: sup-eth1

OUT_IF:
  RESETS: N/A
  TX_STATS: N/A


Elapsed Time for Hop: 0.192762 seconds.
`;

const FLOW: TraceFlow = { src: "3.3.3.3", dst: "4.4.4.4", proto: 6, sport: 1234, dport: 80, vrf: "default" };
const MODE = "address source-destination port source-destination";
const NXOS_TX = [
  "1552 unicast packets  233683 multicast packets  3 broadcast packets",
  "235246 output packets  24675632 bytes",
  "0 jumbo packets",
  "0 output error  0 collision  0 deferred  0 late collision",
  "0 lost carrier  0 no carrier  0 babble  0 output discard",
  "0 Tx pause",
];

function hop(over: Partial<HopReport>): HopReport {
  return {
    number: 1,
    address: "p9372-1",
    connectedVia: "p9372-1",
    type: "nxos",
    hostname: "9372-1",
    vrf: "default",
    loadShareMode: MODE,
    outInterface: "Eth1/52",
    nextHop: "10.10.60.1",
    attached: false,
    local: false,
    stats: { resets: "6 interface resets", txStats: {}, txLines: NXOS_TX },
    routeText: "",
    notes: [],
    elapsedSeconds: 1.347575,
    ...over,
  };
}

const HOPS: HopReport[] = [
  hop({}),
  hop({
    number: 2,
    address: "10.10.60.1",
    connectedVia: "10.10.60.1",
    hostname: "N9K2",
    outInterface: "Eth2/3",
    nextHop: "10.10.70.2",
    stats: {
      resets: "2 interface resets",
      txStats: {},
      txLines: [
        "81 unicast packets  27053 multicast packets  3 broadcast packets",
        "27150 output packets  3490279 bytes",
        "0 jumbo packets",
        "0 output error  0 collision  0 deferred  0 late collision",
        "0 lost carrier  0 no carrier  0 babble  0 output discard",
        "0 Tx pause",
      ],
    },
    elapsedSeconds: 4.153353,
  }),
  hop({
    number: 3,
    address: "10.10.70.2",
    connectedVia: "10.10.70.2",
    hostname: "9372-2",
    outInterface: "sup-eth1 , local, attached",
    nextHop: "sup-eth1",
    local: true,
    stats: undefined,
    elapsedSeconds: 0.192762,
  }),
];

describe("flowtracker's output", () => {
  it("is reproduced exactly: FLOW OVERVIEW and three hop blocks of its README", () => {
    expect(renderOverview(FLOW) + HOPS.map((h) => renderHop(h, FLOW.dst)).join("")).toBe(FLOWTRACKER_README_SAMPLE);
  });

  it("prints N/A for missing ports, and counters given only by label as 'value label' lines", () => {
    expect(renderOverview({ src: "10.0.0.1", dst: "10.0.0.2", proto: 1, vrf: "RED" })).toBe("\nFLOW OVERVIEW:\n\nSRC: 10.0.0.1\nDEST: 10.0.0.2\nPROTO: 1\nSRC_PORT: N/A\nDEST_PORT: N/A\nVRF: RED\n\n");
    const text = renderHop(hop({ stats: { resets: "3 interface resets", txStats: { "packets output": "12", bytes: "3400" } } }), "4.4.4.4");
    expect(text).toContain("OUT_IF:\n  RESETS: 3\n  TX_STATS:\n    12 packets output\n    3400 bytes\n\n\n\n\nElapsed Time for Hop: 1.347575 seconds.\n");
  });

  it("shows elapsed seconds as Python's str(float) does", () => {
    expect([pythonSeconds(1.347575), pythonSeconds(2), pythonSeconds(0.1234567), pythonSeconds(0.05)]).toEqual(["1.347575", "2.0", "0.123457", "0.05"]);
  });
});

describe("capsync's closing line and --json", () => {
  const done = (over: Partial<TraceResult>): TraceResult => ({ hops: HOPS, result: "complete", reason: undefined, elapsedSeconds: 5.69369, ...over });

  it("names where the path ends, or why it stopped", () => {
    const rule = "#".repeat(77);
    expect(renderClosing(done({}), "4.4.4.4")).toBe(`\n${rule}\n\nTRACE COMPLETE: 3 hops in 5.694 seconds; 4.4.4.4 is 9372-2 itself.\n`);
    expect(renderClosing(done({ hops: HOPS.slice(0, 1).map((h) => ({ ...h, attached: true, nextHop: "4.4.4.4" })) }), "4.4.4.4")).toBe(
      `\n${rule}\n\nTRACE COMPLETE: 1 hop in 5.694 seconds; 4.4.4.4 is attached to 9372-1 on Eth1/52.\n`,
    );
    const broken = done({
      hops: [HOPS[0]!, { ...HOPS[1]!, notes: ["no counters for Eth2/3: timeout"] }],
      result: "unreachable",
      reason: "hop 3 (10.10.70.2) cannot be reached: CLI 10.10.70.2:22: connect ECONNREFUSED 10.10.70.2:22",
    });
    expect(renderClosing(broken, "4.4.4.4")).toBe(
      `\n${rule}\n\nTRACE INCOMPLETE (unreachable) after 2 hops in 5.694 seconds:\n  hop 3 (10.10.70.2) cannot be reached: CLI 10.10.70.2:22: connect ECONNREFUSED 10.10.70.2:22\n  hop 2: no counters for Eth2/3: timeout\n`,
    );
  });

  it("--json is one object with flow, hops, result and reason", () => {
    const j = traceJson(FLOW, done({ result: "loop", reason: "routing loop: …" }));
    expect(Object.keys(j)).toEqual(["flow", "hops", "result", "reason", "elapsedSeconds"]);
    expect(j.flow).toEqual({ src: "3.3.3.3", dest: "4.4.4.4", proto: 6, srcPort: 1234, destPort: 80, vrf: "default" });
    expect((j.hops as unknown[])[0]).toEqual({
      hop: 1,
      address: "p9372-1",
      connectedVia: "p9372-1",
      type: "nxos",
      hostname: "9372-1",
      vrf: "default",
      loadShareMode: MODE,
      outInterface: "Eth1/52",
      nextHop: "10.10.60.1",
      attached: false,
      local: false,
      resets: 6,
      txStats: {},
      routeText: "",
      notes: [],
      elapsedSeconds: 1.347575,
    });
    expect((j.hops as { resets: unknown }[])[2]!.resets).toBeNull();
    expect([j.result, j.reason]).toEqual(["loop", "routing loop: …"]);
  });
});
