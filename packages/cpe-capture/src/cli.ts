// The command table, nothing else (changesets-style): each command is a plain async function.
import { Command, Option } from "commander";
import type { Io } from "./commands/run.js";
import { VERSION } from "./version.js";

export function buildProgram(io: Io, setExit: (p: Promise<number>) => void): Command {
  const program = new Command("cpe-capture")
    .description("capsync orchestrator: capture on devices and their servers at once, stop on the Connection Lost alarm")
    .version(VERSION)
    .configureOutput({ writeOut: (s) => io.stdout.write(s), writeErr: (s) => io.stderr.write(s) })
    .exitOverride()
    .addHelpText("after", "\nExit codes: 0 all collected, 1 some devices failed (listed), 2 bad input.");

  program
    .command("run")
    .description("start captures from a config file and collect them when the stop triggers fire")
    .requiredOption("-c, --config <file>", "run config (YAML or JSON)")
    .option("-o, --output <dir>", "override the config's output folder")
    .option("--json", "print machine-readable events (JSON lines) instead of the status table")
    .action(async (o: { config: string; output?: string; json?: boolean }) => {
      const { runCommand } = await import("./commands/run.js");
      setExit(runCommand(o, io));
    });

  program
    .command("validate")
    .description("check a config file and print it normalised (secrets as ***)")
    .requiredOption("-c, --config <file>", "run config (YAML or JSON)")
    .option("--json", "print JSON instead of YAML")
    .action(async (o: { config: string; json?: boolean }) => {
      const { validateCommand } = await import("./commands/validate.js");
      setExit(validateCommand(o, io));
    });

  program
    .command("interactive")
    .description("ask for the devices and settings (remembered, passwords never), optionally save them as a config file, then run; the default on a terminal")
    .action(async () => {
      const { interactiveCommand } = await import("./commands/interactive.js");
      setExit(interactiveCommand(io));
    });

  program
    .command("demo")
    .description("a self-contained lab: emulated devices, a real agent and management server in network namespaces, a real alarm (root); --loopback without root")
    .option("--devices <n>", "emulated devices (1-20); device 1 (MSBR) gets its path broken, the others alternate GW/SBC, MSBR", "2")
    .option("--duration <duration>", "how long the run lasts; the healthy devices capture until it ends", "45s")
    .option("--break-after <duration>", "when device 1's path to the management server breaks, after every device captures", "12s")
    .option("-o, --output <dir>", "folder the run folder is created under", "./runs")
    .option("--keep", "leave the lab up afterwards (namespaces cslab-*, emulators, agent); the next demo or --clean removes it")
    .option("--clean", "only remove a kept or crashed lab, then exit")
    .option("--loopback", "no root needed: emulators on 127.0.0.x with synthetic captures, no agents, alarm injected by the demo")
    .option("--json", "JSON lines: one per step, then {\"done\":true,\"exitCode\":..,\"summary\":{..}}")
    .option("--xepacketcap", "no root needed: an emulated IOS-XE router with traffic, an S3 store (buckets xepacketcap, codefest-pcap) and serve in xepacketcap compatibility mode on http://127.0.0.1:5000, for Postman or pcap-sparkbot, until Ctrl-C")
    .option("--port <port>", "with --xepacketcap: the port serve listens on, on 127.0.0.1 (default: 5000)")
    .option("--allow <addresses>", "with --xepacketcap: addresses/prefixes that need no token, comma-separated (default: 127.0.0.0/8 and ::1)")
    .option("--trace", "a trace lab (root): 6 emulated NX-OS/IOS-XE switches in routed namespaces (cstrace-*) answering from their kernel routes, one ECMP pair; cpe-capture trace over it, one hop broken, traced again")
    .addHelpText("after", "\nExit codes: 0 the broken device was stopped by the alarm and everything was collected (--xepacketcap: stopped by Ctrl-C), 1 it was not (--xepacketcap: port in use), 2 bad input or no root/ip netns.")
    .action(async (o: { devices?: string; duration?: string; breakAfter?: string; output?: string; keep?: boolean; clean?: boolean; loopback?: boolean; json?: boolean; xepacketcap?: boolean; port?: string; allow?: string; trace?: boolean }) => {
      const { demoCommand } = await import("./commands/demo.js");
      setExit(demoCommand(o, io));
    });

  program
    .command("report")
    .description("merge a run's device and server captures into merged.pcapng and report what was lost (report.txt/json/html)")
    .argument("<run-folder>")
    .action(async (dir: string) => {
      const { reportCommand } = await import("./commands/report.js");
      setExit(reportCommand(dir, io));
    });

  // The same run-folder command in two modes: keep going, or stop everything now.
  const folderCommands = [
    ["resume", "continue", "pick up a run whose orchestrator was interrupted: finish stops and downloads, keep waiting for the rest"],
    ["stop", "stop", "stop every capture of a run and collect it (a running orchestrator, or an interrupted run from its journal)"],
  ] as const;
  for (const [name, mode, description] of folderCommands) {
    program
      .command(name)
      .description(description)
      .argument("<run-folder>")
      .option("--json", "JSON-lines events")
      .action(async (dir: string, o: { json?: boolean }) => {
        const { resumeCommand } = await import("./commands/resume.js");
        setExit(resumeCommand(dir, mode, o, io));
      });
  }

  program
    .command("filter")
    .description("change the filter of a running capture: device and agents restart into a new file segment; the earlier one is kept and collected")
    .argument("<run-folder>")
    .argument("[field=value...]", "polycube style: src= dst= l4proto= sport= dport= snaplen= direction=")
    .option("--device <name|address>", "only this device (repeat for more); default every capturing device", (v: string, a: string[] = []) => [...a, v])
    .option("--src <prefix>", "source address or prefix (filter.src)")
    .option("--dst <prefix>", "destination address or prefix (filter.dst)")
    .option("--l4proto <proto>", "tcp, udp, icmp, ip or a protocol number (filter.protocol)")
    .option("--sport <port>", "source port, with tcp or udp (filter.sport)")
    .option("--dport <port>", "destination port, with tcp or udp (filter.dport)")
    .option("--snaplen <bytes>", "bytes kept of each packet")
    .option("--direction <dir>", "in, out or both")
    .option("--spec <file|json>", "a capture section (filter, direction, snaplen) as a YAML/JSON file or inline JSON")
    .option("--clear", "capture without a filter again")
    .option("--json", "print the answer as one JSON line")
    .addHelpText("after", "\nThe given filter replaces the running one as a whole.\nExit codes: 0 every device restarted, 1 some did not (reported failed, earlier segment kept), 2 refused (nothing restarted) or no running orchestrator.")
    .action(async (dir: string, words: string[], o: import("./commands/filter.js").FilterOptions) => {
      const { filterCommand } = await import("./commands/filter.js");
      setExit(filterCommand(dir, words, o, io));
    });

  program
    .command("trace")
    .description("follow one flow hop by hop from a first router or switch, as flowtracker does: each hop's out interface, next hop and counters")
    .option("--src <address>", "the source IP address or hostname of the flow")
    .option("--dest <address>", "the destination IP address or hostname of the flow")
    .option("--proto <proto>", "the IP protocol: tcp, udp, icmp or a number")
    .option("--src_port <port>", "the source layer 4 port of the flow (also --src-port)")
    .option("--dest_port <port>", "the destination layer 4 port of the flow (also --dest-port)")
    .addOption(new Option("--src-port <port>").hideHelp())
    .addOption(new Option("--dest-port <port>").hideHelp())
    .option("--vrf <vrf>", "the VRF of the flow (default: default)")
    .option("--target <address>", "the IP address or hostname of the first router or switch")
    .option("--user <user>", "the SSH/NX-API username for every hop")
    .option("--pwd <password>", "the password (visible in the process list: prefer CAPSYNC_TRACE_PASSWORD or the prompt)")
    .option("--mode <mode>", "interactive (ask before each next hop; the default on a terminal) or auto")
    .option("--use_mgmt", "connect to each next hop on the management address its CDP entry advertises (also --use-mgmt)")
    .addOption(new Option("--use-mgmt").hideHelp())
    .option("--type <types>", "the device types to try at each hop, in order, comma-separated, e.g. iosxe or nxos,iosxe (default: every type that can trace)")
    .option("--ssh-port <port>", "SSH port of every hop (default 22)")
    .option("--rest-port <port>", "HTTPS port of every hop's API (default 443)")
    .option("--insecure", "accept any HTTPS certificate (lab devices)")
    .option("--ca <file>", "trust this CA for the hops' HTTPS certificates")
    .option("--timeout <seconds>", "per question to a hop (default 15)")
    .option("--json", "print one JSON object {flow, hops, result, reason} instead of the blocks")
    .option("--capture", "then capture the flow on every hop that can (out interface) and the --agent hosts, and report where packets vanish")
    .option("--duration <duration>", "with --capture: how long, e.g. 30s or 2m (default 30s; Ctrl-C stops early)")
    .option("--agent <[src=|dest=]host:port>", "with --capture: a server-capture agent on the source or destination host (repeatable)", (v: string, all: string[] = []) => [...all, v])
    .option("--key-file <file>", "with --agent: the agents' CSYNC/1 pre-shared key file")
    .option("--ssh-key-file <file>", "with --agent: SSH private key to download the agents' files over SFTP")
    .option("--sftp-port <port>", "with --agent: the agents' SFTP port (default 20022)")
    .option("-o, --output <dir>", "with --capture: folder the run folder is created under (default ./runs)")
    .addHelpText(
      "after",
      "\nMissing options are asked on a terminal (the password hidden); without one, a missing --src, --dest, --proto,\n--target, --user or password is an error. The password may come from the environment: CAPSYNC_TRACE_PASSWORD.\nEach hop is asked as the first type that answers; later hops try the previous hop's type first.\nExit codes: 0 the path reached the destination, 1 it stopped short (unreachable or refusing hop, loop, 32 hops), 2 bad input;\nwith --capture, 0 also needs every capturing hop collected, and 1 also means a hop could not capture or collect.",
    )
    .action(async (o: import("./trace/options.js").TraceCliOptions & import("./trace/capture.js").CaptureCliOptions) => {
      const { traceCommand } = await import("./commands/trace.js");
      setExit(traceCommand(o, io));
    });

  program
    .command("upload")
    .description("upload a run folder to its storage (S3 / S3-compatible); rerun to resume an interrupted upload")
    .argument("<run-folder>")
    .option("-c, --config <file>", "take storage: from this config instead of the run's own run-config.json")
    .option("--json", "one JSON line with the result")
    .action(async (dir: string, o: { config?: string; json?: boolean }) => {
      const { uploadCommand } = await import("./storage/command.js");
      setExit(uploadCommand(dir, o, io));
    });

  program
    .command("serve")
    .description("HTTP API to start and follow captures remotely: /api/v1/runs and the xepacketcap-compatible /pcap_json, /status_json")
    .requiredOption("-c, --config <file>", "serve config (YAML or JSON): listen, tls, tokens, dataDir, the run defaults and the /pcap_json routers")
    .option("--json", "log JSON lines instead of text")
    .addHelpText("after", "\nExit codes: 0 stopped by SIGINT/SIGTERM (running jobs are resumed at the next start), 1 runtime failure, 2 bad config.")
    .action(async (o: { config: string; json?: boolean }) => {
      const { serveCommand } = await import("./commands/serve.js");
      setExit(serveCommand(o, io));
    });

  return program;
}
