// `cpe-capture run --config run.yaml`: a batch run from a config file.
import type { Writable } from "node:stream";
import { existsSync, rmSync, statSync } from "node:fs";
import type { CaptureHandle } from "../drivers/driver.js";
import type { Manifest } from "../run/model.js";
import { RUN_CONFIG_FILE, storableConfig } from "../run/recover.js";
import { ConfigError } from "@capsync/protocol";
import { createLogger, loadKeyFile } from "@capsync/common";
import { loadConfig } from "../config/loader.js";
import { resolveDeviceSecrets } from "../config/secrets.js";
import { resolveVerifyProbes } from "../config/verify-secrets.js";
import type { RunConfig } from "../config/schema.js";
import { RunFolder } from "../artifacts/run-folder.js";
import { reportRun } from "../artifacts/report.js";
import { Orchestrator, type OrchestratorOptions, type RunSummary } from "../run/orchestrator.js";
import { StatusView, finalSummary, type StatusMode } from "../run/status.js";
import { installStopSignals, type SignalSource } from "../triggers/signals.js";
import { Notifier } from "../notify/notifier.js";
import { afterRun, logTo } from "../storage/after-run.js";

export interface RunOptions {
  config: string;
  json?: boolean;
  output?: string;
}

export interface Io {
  stdout: Writable & { isTTY?: boolean };
  stderr: Writable;
}

/** The SSH private key for the agents' SFTP: like OpenSSH, refused when group or others can read it. */
function checkSshKeyFile(file: string): void {
  if (!existsSync(file)) throw new ConfigError(`agents.sshKeyFile: ${file} does not exist`);
  const st = statSync(file);
  if (!st.isFile()) throw new ConfigError(`agents.sshKeyFile: ${file} is not a regular file`);
  if ((st.mode & 0o077) !== 0) {
    throw new ConfigError(`agents.sshKeyFile: ${file} has mode ${(st.mode & 0o777).toString(8).padStart(4, "0")}, which lets group/others read the private key; run: chmod 600 ${file}`);
  }
}

export async function runCommand(opts: RunOptions, io: Io): Promise<number> {
  const { config, warnings } = await loadConfig(opts.config);
  if (opts.output) config.output = opts.output;
  for (const w of warnings) io.stderr.write(`warning: ${w}\n`);
  const summary = await runConfig(config, io, { json: opts.json ?? false });
  return summary.exitCode;
}

/** Shared by `run`, the interactive mode and the demo: everything after the config is known. */
export async function runConfig(
  config: RunConfig,
  io: Io,
  opts: {
    json: boolean;
    drivers?: OrchestratorOptions["drivers"];
    onStarted?: (o: Orchestrator) => void;
    quiet?: boolean;
    /** Where `{ env }` password references are looked up (default process.env); the interactive mode passes its private map. */
    env?: NodeJS.ProcessEnv;
    /** Pick up an interrupted run in its existing folder (resume / stop). */
    resume?: { folder: RunFolder; manifest: Manifest; handles: Record<string, CaptureHandle>; mode: "continue" | "stop" };
    /** Where stop signals come from (default the process); `cpe-capture serve` runs many runs in one process. */
    signalSource?: SignalSource;
    /** The captures are collected and the upload (storage:) begins. */
    onUploadStart?: () => void;
    /** The duration limits' clock (tests cross days of run time with a fake one). */
    durationClock?: OrchestratorOptions["durationClock"];
  },
): Promise<RunSummary & { folder: string; orchestrator: Orchestrator; reportLine?: string; storageLink?: string; storageError?: string }> {
  const secrets = await resolveDeviceSecrets(config, opts.env ? { env: opts.env } : {});
  // VERIFY's SNMPv3 keys, read like the passwords (only when VERIFY runs); redacted like them.
  const verifyProbes = await resolveVerifyProbes(config.verify ? config.verifyProbes : undefined, opts.env ? { env: opts.env } : {});
  for (const w of [...secrets.warnings, ...verifyProbes.warnings]) io.stderr.write(`warning: ${w}\n`);
  let agentKey: Buffer | undefined;
  const usesAgents = config.devices.some((d) => d.agents.length > 0) || Boolean(config.flow?.path.some((h) => h.kind === "server"));
  if (usesAgents && !config.agents.legacy) {
    if (!config.agents.keyFile) throw new ConfigError("agents.keyFile: required when devices list agents (or set agents.legacy: true)");
    agentKey = loadKeyFile(config.agents.keyFile);
  }
  if (config.agents.sshKeyFile) checkSshKeyFile(config.agents.sshKeyFile);
  const allSecrets = [...secrets.secrets, ...verifyProbes.secrets, ...(agentKey ? [agentKey.toString("latin1")] : [])];

  const folder = opts.resume?.folder ?? RunFolder.create(config.output);
  if (!opts.resume) folder.writeAtomic(RUN_CONFIG_FILE, JSON.stringify(storableConfig(config), null, 2) + "\n");
  // Lets `cpe-capture stop <folder>` find a live orchestrator; removed when the run ends.
  folder.writeAtomic("orchestrator.pid", `${process.pid}\n`);
  const log = createLogger({ file: folder.path("capsync.log"), console: false, secrets: () => allSecrets });
  // Verification is the default; turning it off is per device and never silent.
  for (const d of config.devices) {
    if (d.tls.mode !== "insecure") continue;
    const w = `${d.name === d.address ? d.address : `${d.name} (${d.address})`}: TLS certificate not verified (tls: insecure): anyone on the path can pose as this device and read its password`;
    log.warn(w);
    if (!opts.quiet) io.stderr.write(`warning: ${w}\n`);
  }
  // Webhooks (notify:): sent in the background, never a reason for the run to fail.
  const notifier = config.notify ? await Notifier.create(config.notify, { log: logTo(log), ...(opts.env ? { env: opts.env } : {}) }) : undefined;
  allSecrets.push(...(notifier?.secrets ?? []));
  const notifyCtx = { runId: folder.runId, devices: config.devices.map((d) => ({ device: d.address, name: d.name, type: d.type })) };
  const mode: StatusMode = opts.json ? "json" : io.stdout.isTTY ? "table" : "lines";
  const view = new StatusView(io.stdout, opts.quiet ? "json" : mode);
  const orch = new Orchestrator({
    config,
    passwords: secrets.passwords,
    verifyProbes: verifyProbes.options,
    secrets: allSecrets,
    ...(agentKey ? { agentKey } : {}),
    folder,
    log,
    ...(opts.drivers ? { drivers: opts.drivers } : {}),
    ...(opts.durationClock ? { durationClock: opts.durationClock } : {}),
    ...(opts.resume ? { resume: { manifest: opts.resume.manifest, handles: opts.resume.handles, mode: opts.resume.mode } } : {}),
    onChange: (r) => view.update(r),
    onEvent: (row) => {
      view.event(row);
      notifier?.onEventRow(row, notifyCtx);
    },
  });
  const signals = installStopSignals((e) => {
    if (e.count === 1) {
      io.stderr.write(`\n${e.signal}: stopping every capture and collecting the files (again to force quit)\n`);
      orch.stopAll("signal", `${e.signal} from the operator`);
    } else {
      io.stderr.write(`${e.signal} again: exiting without waiting; captures may still run on devices and agents\n`);
      process.exitCode = 1;
      // index.ts is the only process.exit; a forced quit is the one exception an operator asks for.
      setImmediate(() => process.kill(process.pid, "SIGKILL"));
    }
  }, opts.signalSource ? { source: opts.signalSource } : {});
  try {
    await orch.start();
    if (!opts.json && !opts.quiet) {
      const l = orch.listening;
      io.stderr.write(
        `run ${folder.runId}: ${config.devices.length} device(s); syslog on ${l.udp ? `udp ${l.udp.address}:${l.udp.port}` : ""}${l.tcp ? ` tcp ${l.tcp.address}:${l.tcp.port}` : ""}; folder ${folder.dir}\n`,
      );
    }
    opts.onStarted?.(orch);
    const summary = await orch.wait();
    view.close();
    // The comparison of both sides, on every run; a report problem never fails the run.
    let reportLine: string | undefined;
    try {
      reportLine = (await reportRun(folder.dir))?.summaryLine;
      if (reportLine) log.info(reportLine);
    } catch (e) {
      reportLine = `report not written: ${(e as Error).message}`;
      log.warn(reportLine);
    }
    if (reportLine && !opts.json && !opts.quiet) io.stdout.write(`${reportLine}\n`);
    // Upload (storage:) and the final notification; a failed requested upload is exit 1.
    const after = await afterRun({ config, dir: folder.dir, runId: folder.runId, manifest: summary.manifest, exitCode: summary.exitCode, reportLine, log, notifier, ...(opts.env ? { env: opts.env } : {}), addSecrets: (v) => allSecrets.push(...v), ...(opts.onUploadStart ? { onUploadStart: opts.onUploadStart } : {}) });
    const exitCode = after.exitCode as 0 | 1;
    if (after.upload && !opts.json && !opts.quiet) io.stdout.write(`uploaded to s3://${after.upload.bucket}/${after.upload.prefix}: ${after.upload.link}\n`);
    if (after.storageError) io.stderr.write(`cpe-capture: upload failed: ${after.storageError}\n`);
    if (!opts.json && !opts.quiet) io.stdout.write(finalSummary(summary.manifest.devices, folder.dir, summary.manifest.path) + "\n");
    const storage = { ...(after.upload ? { storageLink: after.upload.link } : {}), ...(after.storageError ? { storageError: after.storageError } : {}) };
    if (opts.json) io.stdout.write(JSON.stringify({ done: true, status: summary.manifest.status, folder: folder.dir, exitCode, ...(reportLine ? { report: reportLine } : {}), ...storage }) + "\n");
    return { ...summary, exitCode, folder: folder.dir, orchestrator: orch, ...(reportLine ? { reportLine } : {}), ...storage };
  } finally {
    view.close();
    signals.dispose();
    rmSync(folder.path("orchestrator.pid"), { force: true });
    await new Promise<void>((r) => {
      log.on("finish", () => r());
      log.end();
    });
  }
}
