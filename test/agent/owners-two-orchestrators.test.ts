// Two orchestrators, one device, one real agent: each capture belongs to the orchestrator that
// started it (the key its MAC proves and the address it sends from). Another orchestrator's
// CAPTURE gets 409 owned-by naming the owner, its STOP never ends that capture. The orchestrators
// are the real agent client with two different keys (the agent is given both key files).
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readFileSync, writeFileSync, chmodSync } from "node:fs";
import { join } from "node:path";
import { keyId } from "@capsync/protocol";
import { AgentClient } from "@capsync/cpe-capture/agents/client";
import { refusalText } from "@capsync/cpe-capture/agents/index";
import { TEST_KEY, startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { tcpdumpsFor } from "../helpers/procs.js";

const KEY_B = "capsync-second-orchestrator-key-9876543210-QRS";
const DEV = "127.0.0.93";
const CPE = (tag: string) => `CPE_device_${DEV}_2026-12-06T0${tag}.00.00.000000.pcap`;

let agent: AgentProc;
let a: AgentClient;
let b: AgentClient;
/** Orchestrator A's key from another address: another owner too. */
let a2: AgentClient;

beforeAll(async () => {
  const work = tempDir("capsync-owners-");
  const keyA = writeKey(work);
  const keyB = join(work, "b.key");
  writeFileSync(keyB, KEY_B + "\n");
  chmodSync(keyB, 0o600);
  agent = await startAgent(["--key-file", keyA, "--key-file", keyB, "--interface", "lo"]);
  a = await AgentClient.open({ mode: "v1", key: Buffer.from(TEST_KEY), bind: { address: "127.0.0.1" } });
  b = await AgentClient.open({ mode: "v1", key: Buffer.from(KEY_B), bind: { address: "127.0.0.1" } });
  a2 = await AgentClient.open({ mode: "v1", key: Buffer.from(TEST_KEY), bind: { address: "127.0.0.2" } });
});
afterAll(async () => {
  for (const c of [a, b, a2]) c?.close();
  await agent?.stop();
});

const ep = () => ({ host: "127.0.0.1", port: agent.port });
const A_ID = keyId(Buffer.from(TEST_KEY));
const B_ID = keyId(Buffer.from(KEY_B));

describe("capture ownership", () => {
  it("B's CAPTURE and STOP for A's capture are refused naming A; A's own CAPTURE again is its running capture; A's STOP ends it", async () => {
    expect(A_ID).toMatch(/^[0-9a-f]{12}$/);
    expect(A_ID).not.toBe(B_ID);
    // The agent names its keys by the same ids at start, so an operator can match a 409 to a key file.
    expect(readFileSync(join(agent.dir, "server-capture.log"), "utf8")).toContain(`CSYNC/1 key id(s) ${A_ID}, ${B_ID}: a capture belongs to the key and address that started it`);
    const capA = await a.request(ep(), { verb: "CAPTURE", device: DEV });
    expect(capA.code).toBe(200);
    const file = capA.details.file!;

    const capB = await b.request(ep(), { verb: "CAPTURE", device: DEV });
    expect([capB.code, capB.details.reason, capB.details.key, capB.details.owner]).toEqual([409, "owned-by", A_ID, "127.0.0.1"]);
    expect(capB.details.msg).toBe(`the capture for ${DEV} belongs to another orchestrator (key ${A_ID} from 127.0.0.1, since ${capB.details.since}); it alone may stop it`);
    expect(refusalText(capB)).toBe(
      `agent 127.0.0.1:${agent.port} refused CAPTURE: ${DEV} is being captured there by another orchestrator (key ${A_ID} from 127.0.0.1, since ${capB.details.since}); only it can stop that capture`,
    );
    // The same key from another address is another orchestrator too.
    const capA2 = await a2.request(ep(), { verb: "CAPTURE", device: DEV });
    expect([capA2.code, capA2.details.reason]).toEqual([409, "owned-by"]);

    const stopB = await b.request(ep(), { verb: "STOP", device: DEV, filename: CPE("1") });
    expect([stopB.code, stopB.details.reason, stopB.details.key]).toEqual([409, "owned-by", A_ID]);
    const stopA2 = await a2.request(ep(), { verb: "STOP", device: DEV, filename: CPE("1") });
    expect([stopA2.code, stopA2.details.reason]).toEqual([409, "owned-by"]);
    // Still A's one tcpdump, still capturing.
    expect(tcpdumpsFor(DEV)).toHaveLength(1);
    const again = await a.request(ep(), { verb: "CAPTURE", device: DEV });
    expect([again.code, again.details.file, again.details.existing]).toEqual([200, file, "1"]);
    const state = JSON.parse(readFileSync(join(agent.dir, "server-capture-state.json"), "utf8")) as { devices: { device: string; session?: { owner?: unknown } }[] };
    expect(state.devices.find((d) => d.device === DEV)?.session?.owner).toEqual({ key: A_ID, address: "127.0.0.1" });

    const stopA = await a.request(ep(), { verb: "STOP", device: DEV, filename: CPE("1") });
    expect(stopA.code).toBe(200);
    expect(stopA.details.file).toBe(`OVOC_device_${DEV}_2026-12-06T01.00.00.000000-0.pcap`);
    expect(tcpdumpsFor(DEV)).toHaveLength(0);
  });

  it("once A's capture is collected B may start its own, and A's STOP cannot end B's", async () => {
    const capB = await b.request(ep(), { verb: "CAPTURE", device: DEV });
    expect(capB.code).toBe(200);
    expect(capB.details.existing).toBeUndefined();
    const stopA = await a.request(ep(), { verb: "STOP", device: DEV, filename: CPE("1") });
    expect([stopA.code, stopA.details.reason, stopA.details.key, stopA.details.owner]).toEqual([409, "owned-by", B_ID, "127.0.0.1"]);
    expect(tcpdumpsFor(DEV)).toHaveLength(1);
    const stopB = await b.request(ep(), { verb: "STOP", device: DEV, filename: CPE("2") });
    expect(stopB.code).toBe(200);
    expect(stopB.details.file).toBe(`OVOC_device_${DEV}_2026-12-06T02.00.00.000000-0.pcap`);
    // B's retried STOP (a new request id, same file) still gets its files; nothing left running.
    const retry = await b.request(ep(), { verb: "STOP", device: DEV, filename: CPE("2") });
    expect([retry.code, retry.details.file]).toEqual([200, stopB.details.file]);
    expect(tcpdumpsFor(DEV)).toHaveLength(0);
  });
});
