// Privileges: the agent needs root (or CAP_NET_RAW) to open the capture device, tcpdump does not
// need it afterwards. Read from /proc/<tcpdump pid>/status once tcpdump listens: with the default
// --tcpdump-user tcpdump it runs as that user with no capabilities; `--tcpdump-user root` and an
// unknown user keep root (the latter with a warning); a ring buffer (the default) drops even when a
// parent of the capture dir is closed to the user. Started without root but with CAP_NET_RAW
// (setpriv, as a systemd unit would), the agent and tcpdump run as that unprivileged user.
import { spawn, type ChildProcess } from "node:child_process";
import { chmodSync, chownSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";
import { AGENT_CLI, TEST_KEY, TestPeer, startAgent, tempDir, writeKey, type AgentProc } from "../helpers/agent-proc.js";
import { tcpdumpsFor } from "../helpers/procs.js";

const CPE = (dev: string) => `CPE_device_${dev}_2026-11-23T10.00.00.000000.pcap`;
const CAP_NET_RAW = 13n;
const CAP_NET_ADMIN = 12n;

function status(pid: number): { uid: number[]; gid: number[]; capEff: bigint; capPrm: bigint } {
  const s = readFileSync(`/proc/${pid}/status`, "utf8");
  const nums = (k: string) => /^(\w+):\s+(.*)$/m.exec(s.split("\n").find((l) => l.startsWith(`${k}:`))!)![2]!.trim().split(/\s+/).map(Number);
  const hex = (k: string) => BigInt(`0x${/^\w+:\s+([0-9a-f]+)$/m.exec(s.split("\n").find((l) => l.startsWith(`${k}:`))!)![1]}`);
  return { uid: nums("Uid"), gid: nums("Gid"), capEff: hex("CapEff"), capPrm: hex("CapPrm") };
}

const idOf = (user: string) => ({ uid: Number(execFileSync("id", ["-u", user], { encoding: "utf8" }).trim()), gid: Number(execFileSync("id", ["-g", user], { encoding: "utf8" }).trim()) });

/** CAPTURE on the agent, read tcpdump's credentials while it runs, STOP. */
async function tcpdumpCredentials(port: number, dev: string): Promise<ReturnType<typeof status>> {
  const peer = await TestPeer.open();
  try {
    const cap = await peer.request(port, { verb: "CAPTURE", device: dev });
    expect(cap.final.code, JSON.stringify(cap.final.details)).toBe(200);
    const [t] = tcpdumpsFor(dev);
    const st = status(t!.pid);
    expect((await peer.request(port, { verb: "STOP", device: dev, filename: CPE(dev) })).final.code).toBe(200);
    return st;
  } finally {
    peer.close();
  }
}

async function logOf(a: AgentProc, re: RegExp): Promise<string> {
  for (let i = 0; i < 100; i++) {
    const text = a.stderr();
    if (re.test(text)) return text;
    await new Promise((r) => setTimeout(r, 20));
  }
  return a.stderr();
}

describe("tcpdump's privileges", () => {
  const tcpdumpUser = idOf("tcpdump");

  it("default --tcpdump-user tcpdump: tcpdump runs as that user with no capabilities; the agent keeps root", async () => {
    const a = await startAgent(["--key-file", writeKey(tempDir()), "--interface", "lo"]);
    try {
      const st = await tcpdumpCredentials(a.port, "127.0.0.171");
      console.log(`tcpdump as '${"tcpdump"}': Uid ${st.uid.join(" ")} Gid ${st.gid.join(" ")} CapEff ${st.capEff.toString(16)} CapPrm ${st.capPrm.toString(16)}`);
      expect(st.uid).toEqual([tcpdumpUser.uid, tcpdumpUser.uid, tcpdumpUser.uid, tcpdumpUser.uid]);
      expect(st.gid).toEqual([tcpdumpUser.gid, tcpdumpUser.gid, tcpdumpUser.gid, tcpdumpUser.gid]);
      expect(st.capEff).toBe(0n);
      expect(st.capPrm).toBe(0n);
      expect(status(a.child.pid!).uid[1]).toBe(0);
    } finally {
      await a.stop();
    }
  });

  it("--tcpdump-user root keeps root; an unknown user keeps root and says so", async () => {
    const r = await startAgent(["--key-file", writeKey(tempDir()), "--interface", "lo", "--tcpdump-user", "root"]);
    try {
      expect((await tcpdumpCredentials(r.port, "127.0.0.172")).uid[1]).toBe(0);
    } finally {
      await r.stop();
    }
    const u = await startAgent(["--key-file", writeKey(tempDir()), "--interface", "lo", "--tcpdump-user", "nosuchuser"]);
    try {
      expect(await logOf(u, /nosuchuser/)).toMatch(/user 'nosuchuser' does not exist; tcpdump keeps root privileges/);
      expect((await tcpdumpCredentials(u.port, "127.0.0.173")).uid[1]).toBe(0);
    } finally {
      await u.stop();
    }
  });

  it("ring buffer (the default): drops whether or not the user can reach the capture dir's parents", async () => {
    const open = tempDir("capsync-priv-ring-");
    chmodSync(open, 0o755);
    const ok = await startAgent(["--key-file", writeKey(tempDir()), "--interface", "lo", "--ring-size", "1", "--ring-files", "2"], { dir: join(open, "captures") });
    try {
      expect((await tcpdumpCredentials(ok.port, "127.0.0.174")).uid[1]).toBe(tcpdumpUser.uid);
    } finally {
      await ok.stop();
    }
    // mkdtemp: mode 0700, so "tcpdump" cannot search it; tcpdump runs in its own dir and names
    // the ring files relative to it, so it drops all the same.
    const closed = tempDir("capsync-priv-ring-closed-");
    const shut = await startAgent(["--key-file", writeKey(tempDir()), "--interface", "lo"], { dir: join(closed, "captures") });
    try {
      expect((await tcpdumpCredentials(shut.port, "127.0.0.175")).uid[1]).toBe(tcpdumpUser.uid);
      expect(shut.stderr()).not.toMatch(/keeps root/);
    } finally {
      await shut.stop();
    }
  });

  it("without root, with CAP_NET_RAW (setpriv as a unit would grant it): agent and tcpdump run as the unprivileged user", async () => {
    const nobody = idOf("nobody");
    const base = tempDir("capsync-priv-caps-");
    chmodSync(base, 0o755);
    const dir = join(base, "captures");
    mkdirSync(dir);
    chownSync(dir, nobody.uid, nobody.gid);
    const key = join(base, "agent.key");
    writeFileSync(key, TEST_KEY);
    chmodSync(key, 0o600);
    chownSync(key, nobody.uid, nobody.gid);
    const child: ChildProcess = spawn(
      "setpriv",
      ["--reuid=nobody", "--regid=nogroup", "--clear-groups", "--inh-caps=+net_raw,+net_admin", "--ambient-caps=+net_raw,+net_admin", process.execPath, AGENT_CLI, "--listen", "127.0.0.1:0", "--dir", dir, "--key-file", key, "--interface", "lo"],
      { stdio: ["ignore", "pipe", "pipe"] },
    );
    let out = "";
    let err = "";
    child.stdout!.on("data", (d: Buffer) => (out += d.toString()));
    child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
    const exited = new Promise((r) => child.once("exit", r));
    try {
      for (let i = 0; i < 200 && !/server-capture ready/.test(out); i++) await new Promise((r) => setTimeout(r, 25));
      const port = Number(/server-capture ready \S+ (\d+)/.exec(out)?.[1]);
      expect(port, err).toBeGreaterThan(0);
      const agent = status(child.pid!);
      const st = await tcpdumpCredentials(port, "127.0.0.176");
      console.log(`capabilities mode: agent Uid ${agent.uid[1]} CapEff ${agent.capEff.toString(16)}; tcpdump Uid ${st.uid.join(" ")} CapEff ${st.capEff.toString(16)}`);
      // setpriv execs node in place, so the child pid is the agent.
      expect(agent.uid).toEqual([nobody.uid, nobody.uid, nobody.uid, nobody.uid]);
      expect(st.uid).toEqual([nobody.uid, nobody.uid, nobody.uid, nobody.uid]);
      expect((st.capEff >> CAP_NET_RAW) & 1n).toBe(1n);
      // Nothing beyond what it was given.
      expect(st.capEff & ~((1n << CAP_NET_RAW) | (1n << CAP_NET_ADMIN))).toBe(0n);
      expect(err).toMatch(/running as uid \d+ with capabilities: tcpdump runs as this user/);
    } finally {
      child.kill("SIGTERM");
      await exited;
    }
  });
});
