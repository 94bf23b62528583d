// `cpe-capture demo --xepacketcap` as a user (and pcap-sparkbot) meets it: the real binary as a
// child process, then exactly what pcap-sparkbot's pcap-skill.js does — POST /pcap_json with
// {iface, proto, src, dst, bucket: "xepacketcap", duration} (its regex captures: all strings) and no
// credentials, POST /status_json {job_id} every 2 s until UPLOADED or ERROR — then the capture at
// `url` downloaded and checked packet by packet. serve's default allow list is 127.0.0.0/8, so the
// demo runs with `--allow 127.0.0.1` and the same request from 127.0.0.2 must get 401. SIGINT ends
// it with exit 0, and the process table, the ports and the temp folder show nothing left behind.
// The demo runs as user nobody: it needs no root.
import { execFile, spawn, type ChildProcess } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { createServer, connect, type AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, test } from "vitest";
import { CPE_CLI } from "../helpers/cli-proc.js";
import { readPcap } from "../helpers/pcap-lite.js";
import { processesMatching } from "../helpers/procs.js";

const PEER = "192.0.2.10";
const GI1 = "192.0.2.1";
const work = mkdtempSync(join(tmpdir(), "capsync-xedemo-test-"));
let demo: { child: ChildProcess; out: () => string; err: () => string; exited: Promise<number | null> } | undefined;
let port = 0;

async function freePort(): Promise<number> {
  const s = createServer();
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  const p = (s.address() as AddressInfo).port;
  await new Promise<void>((r) => s.close(() => r()));
  return p;
}

/** As root the demo runs as user nobody (setpriv execs, so the pid is node's): it needs no root. */
function startDemo(args: string[], o: { asNobody?: boolean } = {}): NonNullable<typeof demo> {
  const argv = [CPE_CLI, "demo", "--xepacketcap", ...args];
  const [cmd, cmdArgs] = o.asNobody && process.getuid?.() === 0 ? ["setpriv", ["--reuid=65534", "--regid=65534", "--clear-groups", process.execPath, ...argv]] : [process.execPath, argv];
  const child = spawn(cmd, cmdArgs, { stdio: ["ignore", "pipe", "pipe"] });
  let out = "";
  let err = "";
  child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const exited = new Promise<number | null>((r) => child.once("exit", (code) => r(code)));
  return { child, out: () => out, err: () => err, exited };
}

/** request-promise with `json: true`, as the bot sends: JSON body, JSON accept, no credentials. */
function botPost(path: string, body: unknown, localAddress = "127.0.0.1"): Promise<{ status: number; body: Record<string, unknown> }> {
  const data = JSON.stringify(body);
  return new Promise((resolve, reject) => {
    const req = request({ host: "127.0.0.1", port, path, method: "POST", localAddress, headers: { accept: "application/json", "content-type": "application/json", "content-length": Buffer.byteLength(data) } }, (res) => {
      let text = "";
      res.on("data", (c: Buffer) => (text += c.toString()));
      res.on("end", () => {
        let parsed: Record<string, unknown>;
        try {
          parsed = JSON.parse(text) as Record<string, unknown>;
        } catch {
          parsed = { text };
        }
        resolve({ status: res.statusCode ?? 0, body: parsed });
      });
    });
    req.on("error", reject);
    req.end(data);
  });
}

function portOpen(p: number): Promise<boolean> {
  return new Promise((resolve) => {
    const c = connect({ host: "127.0.0.1", port: p });
    c.once("connect", () => (c.destroy(), resolve(true)));
    c.once("error", () => resolve(false));
  });
}

beforeAll(async () => {
  port = await freePort();
  demo = startDemo(["--port", String(port), "--allow", "127.0.0.1"], { asNobody: true });
  for (let i = 0; i < 600 && !demo.out().includes("Running until Ctrl-C"); i++) {
    if (demo.child.exitCode !== null) break;
    await new Promise((r) => setTimeout(r, 50));
  }
  if (!demo.out().includes("Running until Ctrl-C")) throw new Error(`demo did not start:\n${demo.out()}\n${demo.err()}`);
}, 40_000);

afterAll(() => {
  if (demo && demo.child.exitCode === null) demo.child.kill("SIGKILL");
  rmSync(work, { recursive: true, force: true });
});

describe("cpe-capture demo --xepacketcap", () => {
  test("prints what a user needs: the URL, the router and its interfaces, a curl pair, Ctrl-C", () => {
    const out = demo!.out();
    const url = `http://127.0.0.1:${port}`;
    expect(out).toContain(`  URL         ${url}   (POST /pcap_json, POST /status_json; no token needed from 127.0.0.1/32)`);
    expect(out).toMatch(/router {6}xe-demo \(emulated C8000V/);
    for (const [i, ip, peer] of [["GigabitEthernet1", GI1, PEER], ["GigabitEthernet2", "198.51.100.1", "198.51.100.10"], ["GigabitEthernet3", "203.0.113.1", "203.0.113.10"]] as const) {
      expect(out).toContain(`${i.padEnd(17)} ${ip.padEnd(13)} traffic: UDP+TCP ${ip}:5060 <-> ${peer}:5060, 100 packets/s`);
    }
    expect(out).toMatch(/S3 store {4}http:\/\/127\.0\.0\.1:\d+, buckets xepacketcap, codefest-pcap \(s3rver/);
    expect(out).toContain(`  JOB=$(curl -s -X POST ${url}/pcap_json -H 'Content-Type: application/json' -d '{"iface":"g1","proto":"udp","src":"any","dst":"any","bucket":"xepacketcap","duration":10}' | tr -dc 0-9); echo "job $JOB"\n`);
    expect(out).toContain(`  curl -s -X POST ${url}/status_json -H 'Content-Type: application/json' -d "{\\"job_id\\": $JOB}"\n`);
    expect(out).toContain("Running until Ctrl-C");
  });

  test("the printed curl pair works as pasted into sh", async () => {
    const lines = demo!.out().split("\n");
    const at = lines.findIndex((l) => l.startsWith("Start a capture"));
    const pasted = lines.slice(at + 1, at + 3).map((l) => l.trim());
    // The demo's own text, pasted as a user would; the test's input, not a user's.
    const { stdout } = await promisify(execFile)("sh", ["-c", pasted.join("\n")]);
    const [first, ...rest] = stdout.split("\n");
    const id = /^job (\d{6})$/.exec(first!)![1];
    expect(JSON.parse(rest.join("\n"))).toMatchObject({ job_id: Number(id), iface: "g1", proto: "udp", src: "any", dst: "any", duration: 10, url: null });
  });

  test("pcap-sparkbot's flow, no token, from loopback: UPLOADED, url is the pcap, every packet matches the filter", async () => {
    // "capture device 127.0.0.1 interface Gi1 proto udp src 192.0.2.10 dst 192.0.2.1 duration 6"
    const m = /^capture device (.*) interface (.*) proto (.*) src (.*) dst (.*) duration (.*)$/.exec(`capture device 127.0.0.1 interface Gi1 proto udp src ${PEER} dst ${GI1} duration 6`)!;
    const started = await botPost("/pcap_json", { iface: m[2], proto: m[3], src: m[4], dst: m[5], bucket: "xepacketcap", duration: m[6] });
    expect(started.status).toBe(200);
    const jobId = started.body.job_id;
    expect(String(jobId)).toMatch(/^\d+$/);
    const seen: string[] = [];
    let job: Record<string, unknown> = {};
    const until = Date.now() + 60_000;
    while (Date.now() < until) {
      await new Promise((r) => setTimeout(r, 2000)); // the bot's delay, before the first poll too
      const r = await botPost("/status_json", { job_id: jobId });
      expect(r.status).toBe(200);
      job = r.body;
      if (seen.at(-1) !== job.status) seen.push(String(job.status));
      if (job.status === "UPLOADED" || job.status === "ERROR") break;
    }
    expect(job, `${demo!.err().slice(-3000)}`).toMatchObject({ status: "UPLOADED", iface: "Gi1", proto: "udp", src: PEER, dst: GI1 });
    expect(String(job.job_id)).toBe(String(jobId));
    expect(seen).toContain("STARTED");
    // What the bot then says, with `url` the capture file itself, in the bucket it named.
    const reply = `Job ${String(job.job_id)} completed successfully.  Capture is at ${String(job.url)}`;
    expect(reply).toMatch(new RegExp(`^Job ${String(jobId)} completed successfully\\.  Capture is at http://127\\.0\\.0\\.1:\\d+/xepacketcap/`));
    const res = await fetch(String(job.url));
    expect(res.status).toBe(200);
    const file = join(work, "capture.pcap");
    writeFileSync(file, Buffer.from(await res.arrayBuffer()));
    const pcap = readPcap(file);
    expect(pcap.linktype).toBe(1);
    // 100 packets/s on Gi1, a quarter of them UDP 192.0.2.10 → 192.0.2.1: 25/s × 6 s = 150.
    expect(pcap.packets.length).toBeGreaterThanOrEqual(120);
    expect(pcap.packets.length).toBeLessThanOrEqual(160);
    for (const p of pcap.packets) {
      expect({ proto: p.proto, src: p.src, dst: p.dst, sport: p.sport, dport: p.dport }).toEqual({ proto: 17, src: PEER, dst: GI1, sport: 5060, dport: 5060 });
      expect(p.payload!.toString("latin1")).toMatch(new RegExp(`^capsync-synthetic ${PEER}>${GI1} seq=\\d+\\n`));
    }
  }, 90_000);

  test("xepacketcap's own Postman example (proto tcp, bucket codefest-pcap, iface g1): TCP packets only", async () => {
    const started = await botPost("/pcap_json", { iface: "g1", proto: "tcp", src: "any", dst: "any", bucket: "codefest-pcap", duration: 3 });
    expect(started.status).toBe(200);
    let job: Record<string, unknown> = {};
    for (let i = 0; i < 30 && job.status !== "UPLOADED" && job.status !== "ERROR"; i++) {
      await new Promise((r) => setTimeout(r, 1000));
      job = (await botPost("/status_json", { job_id: Number(started.body.job_id) })).body;
    }
    expect(job).toMatchObject({ status: "UPLOADED", iface: "g1", proto: "tcp", duration: 3 });
    expect(String(job.url)).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/codefest-pcap\/\d+\.pcap\?/);
    const file = join(work, "postman.pcap");
    writeFileSync(file, Buffer.from(await (await fetch(String(job.url))).arrayBuffer()));
    const pcap = readPcap(file);
    // 100 packets/s, half TCP, both directions: 50/s × 3 s = 150.
    expect(pcap.packets.length).toBeGreaterThanOrEqual(120);
    expect(pcap.packets.length).toBeLessThanOrEqual(160);
    expect(new Set(pcap.packets.map((p) => `${p.proto} ${p.src}>${p.dst}`))).toEqual(new Set([`6 ${GI1}>${PEER}`, `6 ${PEER}>${GI1}`]));
  }, 40_000);

  test("the same request from 127.0.0.2, outside --allow 127.0.0.1, gets 401", async () => {
    const r = await botPost("/pcap_json", { iface: "Gi1", proto: "udp", src: PEER, dst: GI1, bucket: "xepacketcap", duration: "6" }, "127.0.0.2");
    expect(r.status).toBe(401);
    expect((await botPost("/status_json", { job_id: "123456" }, "127.0.0.2")).status).toBe(401);
  });

  test("bad input: exit 2, the flag named, nothing started", async () => {
    const cases: [string[], string][] = [
      [["--xepacketcap", "--port", "0"], "cpe-capture demo: --port: expected a TCP port 1-65535, got '0'\n"],
      [["--xepacketcap", "--port", "50x"], "cpe-capture demo: --port: expected a TCP port 1-65535, got '50x'\n"],
      [["--xepacketcap", "--allow", "127.0.0.1/33"], 'cpe-capture demo: --allow: prefix length of "127.0.0.1/33" is 0..32 (several: separated by commas)\n'],
      [["--xepacketcap", "--loopback"], "cpe-capture demo: --xepacketcap runs on its own; it does not go with --loopback, --keep or --clean\n"],
      [["--port", "5001"], "cpe-capture demo: --port goes with --xepacketcap\n"],
    ];
    for (const [args, message] of cases) {
      const r = await promisify(execFile)(process.execPath, [CPE_CLI, "demo", ...args]).then(
        () => ({ code: 0, stderr: "" }),
        (e: { code: number; stderr: string }) => ({ code: e.code, stderr: e.stderr }),
      );
      expect({ args, ...r }).toEqual({ args, code: 2, stderr: message });
    }
  }, 30_000);

  test("a second demo on the same port: a clear error, exit 1", async () => {
    const second = startDemo(["--port", String(port)]);
    expect(await second.exited).toBe(1);
    expect(second.err()).toBe(`cpe-capture demo: port ${port} on 127.0.0.1 is in use (another xepacketcap, serve or demo?); stop it or pick another port with --port\n`);
    expect(second.out()).toBe("");
  }, 30_000);

  test("SIGINT: exit 0, nothing left running, listening or on disk", async () => {
    const dir = /folder {6}(\S+)/.exec(demo!.out())![1]!;
    const s3Port = Number(/S3 store {4}http:\/\/127\.0\.0\.1:(\d+)/.exec(demo!.out())![1]);
    expect(existsSync(dir)).toBe(true);
    const pid = demo!.child.pid!;
    demo!.child.kill("SIGINT");
    expect(await demo!.exited).toBe(0);
    expect(demo!.err()).toContain("SIGINT: stopping the demo (router, S3 store, serve)");
    expect(demo!.err()).toContain("demo stopped; everything removed");
    // Nothing of the demo in the process table: not the demo, no child of it, no s3rver/serve/emulator.
    const left = processesMatching((a) => a.some((x) => x === "--xepacketcap" || x.includes("s3rver") || /capsync-xedemo-(?!test)/.test(x)));
    expect(left).toEqual([]);
    expect(existsSync(`/proc/${pid}`)).toBe(false);
    const children = processesMatching(() => true).filter((p) => {
      try {
        return Number(/^\d+ \(.*\) \S (\d+)/.exec(readFileSync(`/proc/${p.pid}/stat`, "utf8"))?.[1]) === pid;
      } catch {
        return false;
      }
    });
    expect(children).toEqual([]);
    expect(await portOpen(port)).toBe(false);
    expect(await portOpen(s3Port)).toBe(false);
    expect(existsSync(dir)).toBe(false);
  }, 30_000);
});
