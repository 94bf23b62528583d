// The demo lab on real packets: namespaces (topology.ts), AudioCodes emulators capturing with real
// tcpdump, a real server-capture agent and the emulated management server in cslab-mgmt, and the
// real `cpe-capture run --config lab.yaml --json` in cslab-orch. After --break-after the router drops
// device 1 → management server; the management server's alarm stops device 1's captures for real.
import { randomBytes } from "node:crypto";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import YAML from "yaml";
import { generateSshKeyPair } from "@capsync/emulators";
import { configFromObject } from "@capsync/cpe-capture/config/loader";
import type { Manifest } from "@capsync/cpe-capture/run/model";
import { sleep } from "./abortable.js";
import { LabProcess } from "./children.js";
import { LAB_DIR_PREFIX, LAB_PID_FILE, LabError, namespacePids, removeLabLeftovers, runningLab, terminate } from "./netns.js";
import type { DemoReporter } from "./reporter.js";
import { RunWatcher, type RunEventLine } from "./run-watcher.js";
import { runSeen, summariseLab, type DemoSummary } from "./summary.js";
import { breakPath, buildTopology, droppedByBreak, labNamespaceNames, planTopology, teardownTopology, type LabTopology } from "./topology.js";

export interface LabRunOptions {
  devices: number;
  durationMs: number;
  breakAfterMs: number;
  /** The management server's silence before "Connection Lost". */
  lostAfterMs: number;
  keep: boolean;
  /** Absolute folder the run folder is created under. */
  output: string;
  t0: number;
  reporter: DemoReporter;
  /** Aborted at the first Ctrl-C/SIGTERM: stop, collect what there is, clean up. */
  signal: AbortSignal;
  /** Aborted at the second: skip waiting for collection. */
  hurry: AbortSignal;
}

/** In cslab-mgmt: the agent (control, SFTP) and the emulated management server's REST API (OVOC); in cslab-orch: the run's syslog. */
const PORTS = { agent: 20001, agentSftp: 20022, ovocApi: 8443, syslog: 20514 } as const;

const READY_TIMEOUT_MS = 20_000;
const START_TIMEOUT_MS = 45_000;

function resolveBin(specifier: string): string {
  try {
    return fileURLToPath(import.meta.resolve(specifier));
  } catch (e) {
    throw new LabError(`cannot find ${specifier} (run \`npm run build\` in the capsync checkout first)`, { cause: e });
  }
}

/** Resolves when `signal` aborts (never, otherwise). */
function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => (signal.aborted ? resolve() : signal.addEventListener("abort", () => resolve(), { once: true })));
}

/** Whether this build of the agent serves its captures over SFTP (--sftp-listen). */
function agentHasSftp(agentCli: string): boolean {
  try {
    return execFileSync(process.execPath, [agentCli, "--help"], { encoding: "utf8", timeout: 10_000 }).includes("--sftp-listen");
  } catch {
    return false;
  }
}

export async function runNetnsLab(o: LabRunOptions): Promise<DemoSummary> {
  const { reporter: r } = o;
  const tmpRoot = tmpdir();
  const other = runningLab(tmpRoot);
  if (other) throw new LabError(`another demo lab is running (pid ${other.pid}, ${other.dir}); wait for it to finish or stop it first`);
  const left = await removeLabLeftovers(tmpRoot);
  if (left.namespaces.length || left.processes.length || left.dirs.length || left.links.length) {
    r.step("leftovers", `removed what an earlier lab left: ${left.namespaces.length} namespace(s), ${left.processes.length} process(es), ${left.dirs.length} dir(s)`, { ...left });
  }

  const emulatorCli = resolveBin("@capsync/emulators/cli");
  const agentCli = resolveBin("@capsync/server-capture/cli");
  const cpeCli = resolveBin("@capsync/cpe-capture");
  const sftp = agentHasSftp(agentCli);

  const topo = planTopology(o.devices);
  const labDir = mkdtempSync(join(tmpRoot, LAB_DIR_PREFIX));
  chmodSync(labDir, 0o700);
  writeFileSync(join(labDir, LAB_PID_FILE), `${process.pid}\n`);
  const logs = join(labDir, "logs");
  mkdirSync(logs);
  const agentDir = join(labDir, "agent");
  mkdirSync(agentDir);

  const procs: LabProcess[] = [];
  let orch: LabProcess | undefined;
  let watcher: RunWatcher | undefined;
  let breakAtMs: number | undefined;
  const seen = runSeen();
  let built = false;
  const mgmt = topo.mgmt;
  const broken = topo.devices[0]!;

  try {
    buildTopology(topo);
    built = true;
    r.step("topology", `lab network up: router ${topo.router}, ${topo.devices.length} device namespace(s), ${mgmt.ns} ${mgmt.address}, ${topo.orch.ns} ${topo.orch.address}`, {
      namespaces: labNamespaceNames(topo),
      devices: topo.devices.map((d) => ({ ns: d.ns, type: d.type, address: d.address })),
    });

    // Fresh secrets for this lab only; passwords travel in the environment, never in argv.
    const keyFile = join(labDir, "agent.key");
    writeFileSync(keyFile, randomBytes(36).toString("base64url") + "\n", { mode: 0o600 });
    const pair = generateSshKeyPair("capsync-demo");
    const sshKeyFile = join(labDir, "id_ed25519");
    writeFileSync(sshKeyFile, pair.private, { mode: 0o600 });
    const authorizedKeys = join(labDir, "authorized_keys");
    writeFileSync(authorizedKeys, pair.public + "\n", { mode: 0o600 });
    // The emulators get theirs from the environment; the run config points at 0600 files, so a
    // kept lab (--keep) can be run again by hand with the same lab.yaml.
    const env: NodeJS.ProcessEnv = { ...process.env };
    const pwVar = (i: number) => `CSLAB_D${i}_PASSWORD`;
    const pwFile = (i: number) => join(labDir, `d${i}.password`);
    for (const d of topo.devices) {
      const pw = randomBytes(12).toString("base64url");
      env[pwVar(d.index)] = pw;
      writeFileSync(pwFile(d.index), pw + "\n", { mode: 0o600 });
    }

    const spawnIn = (name: string, ns: string, argv: string[]) => {
      const p = new LabProcess({ name, ns, argv, env, logBase: join(logs, name.replace(/\s+/g, "-")) });
      procs.push(p);
      return p;
    };
    const deviceProcs = topo.devices.map((d) =>
      spawnIn(`device ${d.index}`, d.ns, [
        process.execPath, emulatorCli, "audiocodes",
        "--type", d.type, "--address", d.address, "--password-env", pwVar(d.index),
        "--capture", "tcpdump", "--iface", d.iface, "--data-dir", join(labDir, `d${d.index}`),
      ]),
    );
    // The management server's REST API: the agent's REGISTER creates the forwarding rule that
    // sends "Connection Lost" to the orchestrator — no hand setup, no injected alarm. The API
    // password reaches both only through the environment.
    env.CAPSYNC_OVOC_USER = "capsync-api";
    env.CAPSYNC_OVOC_PASSWORD = randomBytes(12).toString("base64url");
    const agent = spawnIn("agent", mgmt.ns, [
      process.execPath, agentCli,
      "--listen", `${mgmt.address}:${PORTS.agent}`, "--dir", agentDir, "--key-file", keyFile,
      "--interface", mgmt.iface, "--allow", topo.orch.address, "--min-free-disk", "20",
      // The emulated API uses the emulators' self-signed certificate, inside the lab.
      "--ovoc-url", `https://${mgmt.address}:${PORTS.ovocApi}`, "--ovoc-tls", "insecure",
      ...(sftp ? ["--sftp-listen", `${mgmt.address}:${PORTS.agentSftp}`, "--authorized-keys", authorizedKeys] : []),
    ]);
    const mgmtProc = spawnIn("mgmt", mgmt.ns, [
      process.execPath, emulatorCli, "mgmt", "--bind", mgmt.address,
      ...topo.devices.flatMap((d) => ["--device", `${d.address},${d.type},demo-${d.type}-${d.index}`]),
      "--ovoc-api", `${mgmt.address}:${PORTS.ovocApi}`, "--ovoc-user", "capsync-api",
      "--interval", "1s", "--lost-after", `${o.lostAfterMs}ms`,
    ]);
    mgmtProc.onLine((line, stream) => {
      if (stream !== "out") return;
      const m = /^alarm (lost|established) (\S+) (\S+) silent=(\d+)ms to=(\S+)/.exec(line);
      if (m) {
        if (m[1] === "lost" && !seen.alarmSentAt.has(m[2]!)) seen.alarmSentAt.set(m[2]!, Date.parse(m[3]!));
        r.step("mgmt-alarm", `management server: ${m[2]} silent for ${(Number(m[4]) / 1000).toFixed(1)} s → syslog "${m[1] === "lost" ? "Connection Lost" : "Connection established"}" to ${m[5]}`, {
          kind: m[1], device: m[2], sentAt: m[3], to: m[5],
        });
      }
    });

    await Promise.all([
      ...deviceProcs.map((p) => p.waitForLine(/^ready audiocodes /, READY_TIMEOUT_MS, o.signal)),
      agent.waitForLine(/^server-capture ready /, READY_TIMEOUT_MS, o.signal),
      ...(sftp ? [agent.waitForLine(/^server-capture sftp /, READY_TIMEOUT_MS, o.signal)] : []),
      mgmtProc.waitForLine(/^ready ovoc /, READY_TIMEOUT_MS, o.signal),
    ]);
    r.step("processes", `emulators listening (REST 443, SFTP 22, SNMP 161, tcpdump on their WAN/LAN veth); agent ${mgmt.address}:${PORTS.agent}${sftp ? ` (SFTP ${PORTS.agentSftp})` : " (no SFTP in this agent build: its files stay in the lab)"}; management server polling every 1 s`);
    for (const d of topo.devices) {
      await mgmtProc.waitForLine(new RegExp(`^up ${d.address.replace(/\./g, "\\.")} `), READY_TIMEOUT_MS, o.signal);
    }
    r.step("polling", `management server hears every device (SNMP GET sysUpTime.0 → response)`);

    // The run config, exactly what a user would write for this lab.
    const config = {
      output: o.output,
      retries: 2,
      timeouts: { rest: "5s", sftp: "20s", agent: "4s" },
      agents: { keyFile, ...(sftp ? { sshKeyFile, sftpPort: PORTS.agentSftp } : {}) },
      syslog: { listen: `${topo.orch.address}:${PORTS.syslog}` },
      stop: { alarms: ["connection-lost"], maxEventsPerDevice: 1, duration: `${o.durationMs}ms` },
      devices: topo.devices.map((d) => ({
        name: `demo-${d.type}-${d.index}`,
        address: d.address,
        type: d.type,
        interfaces: d.interfaces,
        username: "Admin",
        password: { file: pwFile(d.index) },
        // Each emulator process makes its own self-signed certificate at start; nothing to pin.
        tls: "insecure",
        restPort: 443,
        sshPort: 22,
        agents: [`${mgmt.address}:${PORTS.agent}`],
      })),
    };
    configFromObject(config, { baseDir: labDir }); // same checks as the file gets; throws early if the lab is wrong
    const configFile = join(labDir, "lab.yaml");
    writeFileSync(configFile, `# capsync demo lab (generated by \`cpe-capture demo\`; namespaces ${labNamespaceNames(topo).join(", ")})\n${YAML.stringify(config)}`);

    watcher = new RunWatcher((e) => narrate(r, e));
    const w = watcher;
    orch = new LabProcess({ name: "cpe-capture", ns: topo.orch.ns, argv: [process.execPath, cpeCli, "run", "--config", configFile, "--json"], logBase: join(logs, "cpe-capture") });
    procs.push(orch);
    orch.onLine((line, stream) => stream === "out" && w.line(line));
    const orchProc = orch;
    void orch.exited.then(({ code }) => w.fail(new LabError(`cpe-capture run exited (${code}); last output:\n${orchProc.tail()}`)));
    r.step("run", `cpe-capture run --config ${configFile} --json (in ${topo.orch.ns})`, { config: configFile });

    await w.waitForStarted(topo.devices.map((d) => d.address), START_TIMEOUT_MS, o.signal);
    const notCapturing = topo.devices.filter((d) => w.states.get(d.address) !== "capturing");
    if (notCapturing.length) throw new LabError(`not capturing: ${notCapturing.map((d) => `${d.address} (${w.states.get(d.address)})`).join(", ")}`);
    r.step("capturing", `both sides capturing for every device; breaking ${broken.address} → ${mgmt.address} in ${o.breakAfterMs / 1000} s`);

    await sleep(o.breakAfterMs, o.signal);
    breakPath(topo, broken.address, mgmt.address);
    breakAtMs = Date.now();
    r.step("break", `router ${topo.router}: nftables now drops ${broken.address} → ${mgmt.address} (the other direction, and the orchestrator's path, still work)`, { device: broken.address, to: mgmt.address });

    await w.waitFor(() => w.done !== undefined, o.durationMs + 90_000, "the run to finish", o.signal);
    const exit = await Promise.race([orch.exited, new Promise<undefined>((res) => setTimeout(() => res(undefined), 10_000))]);
    seen.runExitCode = exit?.code ?? w.done?.exitCode ?? null;
    const dropped = droppedByBreak(topo);
    if (dropped !== undefined) r.step("dropped", `the router dropped ${dropped} packet(s) from ${broken.address} to ${mgmt.address}`, { dropped });
  } catch (e) {
    seen.problems.push(o.signal.aborted ? "interrupted (Ctrl-C / SIGTERM): stopped early" : (e as Error).message);
  } finally {
    // The orchestrator first, so on an interrupt it still stops and collects while devices are up.
    if (orch?.running) {
      const p = orch;
      r.step("stopping", "stopping cpe-capture (it stops and collects every capture first; Ctrl-C again to skip that)");
      await Promise.race([p.stop("SIGINT", o.hurry.aborted ? 1000 : 30_000), aborted(o.hurry).then(() => p.stop("SIGKILL", 500))]);
    }
    if (watcher?.done) {
      seen.runFolder = watcher.done.folder;
      seen.runExitCode ??= watcher.done.exitCode;
    }
    if (!seen.runFolder) seen.runFolder = findRunFolder(orch);
    if (seen.runFolder) {
      try {
        seen.manifest = JSON.parse(readFileSync(join(seen.runFolder, "manifest.json"), "utf8")) as Manifest;
      } catch {
        seen.manifest = undefined;
      }
    }
    if (seen.manifest && seen.runFolder) copyRemoteAgentFiles(seen.manifest, seen.runFolder, agentDir);
    if (!o.keep) {
      await Promise.all(procs.map((p) => p.stop("SIGTERM", 5000)));
      if (built) {
        // Anything still inside the lab (a tcpdump whose parent was killed) goes before its namespace.
        await terminate(labNamespaceNames(topo).flatMap(namespacePids), 2000);
        teardownTopology(topo);
      }
      rmSync(labDir, { recursive: true, force: true });
      r.step("teardown", "lab removed: namespaces, processes, keys and temp files");
    } else {
      for (const p of procs) p.detach();
    }
  }

  const devices = topo.devices.map((d) => ({ address: d.address, type: d.type }));
  const summary = await summariseLab("netns", o, seen, devices, { ...(breakAtMs !== undefined ? { breakAtMs } : {}), managementServer: mgmt.address });
  if (o.keep && built) summary.kept = { labDir, namespaces: labNamespaceNames(topo) };
  return summary;
}

/** Narration of the run's own events (text mode shows the milestones, JSON mode passes them on). */
function narrate(r: DemoReporter, e: RunEventLine): void {
  if (r.json) {
    if (e.done || (e.source === "run" && e.event === "state") || e.source === "trigger" || e.source === "collect") r.step("run-event", "", { event: e });
    return;
  }
  if (e.source === "run" && e.event === "state" && e.device && ["capturing", "stopping", "done", "failed"].includes(e.status ?? "")) {
    r.step("run-event", `cpe-capture: ${e.device} ${e.status}${e.detail ? ` (${e.detail})` : ""}`);
  } else if (e.source === "trigger" && e.status === "stop") {
    r.step("run-event", `cpe-capture: alarm for ${e.device} received → STOP to its agents, stop + download on the device`);
  } else if (e.source === "collect") {
    r.step("run-event", `cpe-capture: ${e.device} collected ${e.event}: ${e.detail ?? ""}`);
  }
}

/** The run folder from the orchestrator's log line when it never printed `done` (interrupted early). */
function findRunFolder(orch: LabProcess | undefined): string | undefined {
  const m = orch ? /"folder":"([^"]+)"/.exec(orch.tail(50)) : null;
  return m?.[1] && existsSync(m[1]) ? m[1] : undefined;
}

/** Agents without SFTP leave their files on the "server"; in the lab that is our own disk. */
function copyRemoteAgentFiles(m: Manifest, runFolder: string, agentDir: string): void {
  for (const d of m.devices) {
    for (const side of d.agents) {
      for (const f of side.files) {
        const from = join(agentDir, f.name);
        const to = join(runFolder, f.name);
        if (f.remote && /^[^/\\]+$/.test(f.name) && existsSync(from) && !existsSync(to)) copyFileSync(from, to);
      }
    }
  }
}

export type { LabTopology };
