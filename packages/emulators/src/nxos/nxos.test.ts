// The NX-OS emulator as a client without capsync sees it: raw NX-API requests over HTTPS (the
// documented ins_api shapes, 401/404 pages, a closed port), and the routing answers (longest
// prefix, ECMP by flow, the resolver for what the table lacks).
import { request } from "node:https";
import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { ecmpIndex, startNxosDevice, type NxosDevice } from "./index.js";

const USER = "admin";
const PASS = "emu-nx-pw";
let dev: NxosDevice | undefined;
afterEach(async () => {
  await dev?.close();
  dev = undefined;
});

function post(d: NxosDevice, body: unknown, auth = `${USER}:${PASS}`, path = "/ins"): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const req = request({ host: d.address, port: d.restPort, method: "POST", path, ca: d.certificate, agent: false, auth, headers: { "content-type": "application/json" } }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => resolve({ status: res.statusCode!, text }));
    });
    req.on("error", reject);
    req.end(JSON.stringify(body));
  });
}
const ins = (input: string, type = "cli_show_ascii") => ({ ins_api: { version: "1.0", type, chunk: "0", sid: "1", input, output_format: "json" } });

describe("NX-OS emulator: NX-API", () => {
  it("one command → one output object; several → an array in order; bad ones carry code 400 and clierror", async () => {
    dev = await startNxosDevice({ address: "127.0.0.168", username: USER, password: PASS, hostname: "leaf9" });
    const one = await post(dev, ins("show hostname"));
    expect(one.status).toBe(200);
    expect(JSON.parse(one.text)).toEqual({ ins_api: { type: "cli_show_ascii", version: "1.0", sid: "eoc", outputs: { output: { input: "show hostname", body: "leaf9 \n", code: "200", msg: "Success" } } } });
    const many = JSON.parse((await post(dev, ins("show hostname ;show bogus"))).text) as { ins_api: { outputs: { output: Record<string, string>[] } } };
    expect(many.ins_api.outputs.output).toEqual([
      { input: "show hostname", body: "leaf9 \n", code: "200", msg: "Success" },
      { input: "show bogus", code: "400", msg: "Input CLI command error", clierror: "% Invalid command at '^' marker.\n" },
    ]);
    const structured = JSON.parse((await post(dev, ins("show hostname", "cli_show"))).text) as { ins_api: { outputs: { output: Record<string, string> } } };
    expect(structured.ins_api.outputs.output).toEqual({ input: "show hostname", code: "501", msg: "Structured output unsupported" });
    expect(dev.commands()).toEqual(["show hostname", "show hostname", "show bogus", "show hostname"]);
  });

  it("wrong credentials: nginx's 401 page; NX-API off: 404, or nothing listening", async () => {
    dev = await startNxosDevice({ address: "127.0.0.168", username: USER, password: PASS });
    const denied = await post(dev, ins("show hostname"), `${USER}:wrong`);
    expect(denied.status).toBe(401);
    expect(denied.text).toContain("<title>401 Authorization Required</title>");
    dev.setNxapi("404");
    const off = await post(dev, ins("show hostname"));
    expect(off.status).toBe(404);
    expect(dev.commands()).toEqual([]);
    await dev.close();
    dev = await startNxosDevice({ address: "127.0.0.168", username: USER, password: PASS, nxapi: "closed" });
    const refused = await new Promise<string>((resolve) => {
      const s = connect(dev!.restPort, dev!.address);
      s.on("connect", () => resolve("connected"));
      s.on("error", (e: NodeJS.ErrnoException) => resolve(e.code ?? "error"));
    });
    expect(refused).toBe("ECONNREFUSED");
  });

  it("show routing hash: longest prefix, the flow's ECMP member, the resolver for the rest", async () => {
    dev = await startNxosDevice({
      address: "127.0.0.168",
      username: USER,
      password: PASS,
      routes: [
        { prefix: "0.0.0.0/0", nextHops: [{ via: "10.9.9.1", interface: "Ethernet1/9" }] },
        { prefix: "198.51.100.0/24", nextHops: [{ via: "10.0.1.2", interface: "Ethernet1/1" }, { via: "10.0.2.2", interface: "Ethernet1/2" }] },
      ],
      resolve: (flow) => (flow.vrf === "BLUE" ? { prefix: `${flow.dst}/32`, vrf: "BLUE", nextHops: [{ via: "192.0.2.9", interface: "Ethernet1/3" }] } : undefined),
    });
    const body = async (cmd: string) => (JSON.parse((await post(dev!, ins(cmd))).text) as { ins_api: { outputs: { output: { body: string } } } }).ins_api.outputs.output.body;
    const ecmp = await body("show routing hash 203.0.113.5 198.51.100.7 ip-proto 6 1234 80");
    const pick = ecmpIndex({ src: "203.0.113.5", dst: "198.51.100.7", proto: 6, sport: 1234, dport: 80, vrf: "default" }, 2);
    expect(ecmp).toContain(`Hashing to path *${pick === 0 ? "10.0.1.2" : "10.0.2.2"}\nOut Interface: Eth1/${pick + 1}\n`);
    expect(ecmp).toContain("198.51.100.0/24, ubest/mbest: 2/0\n");
    expect(await body("show routing hash 203.0.113.5 203.0.113.99")).toContain("Hashing to path *10.9.9.1\nOut Interface: Eth1/9\n");
    expect(await body("show routing hash 203.0.113.5 203.0.113.99 vrf BLUE")).toContain('Hash for VRF "BLUE"\nHashing to path *192.0.2.9\nOut Interface: Eth1/3\n');
    expect(await body("show routing hash 203.0.113.5 203.0.113.99 vrf RED")).toContain('Route not found for 203.0.113.99 in VRF "RED"');
  });
});
