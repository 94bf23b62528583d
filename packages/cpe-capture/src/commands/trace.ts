// `cpe-capture trace`: flowtracker's job — follow one flow hop by hop from a first router or switch,
// asking each which way the flow goes — with its command line, prompts and output blocks. The
// device types come from the registry (any type with a hop client); trace/ does the rest.
import { confirm, input, password } from "@inquirer/prompts";
import { HOP_TYPES, hopClientFor } from "../drivers/index.js";
import { ConfigError } from "@capsync/protocol";
import { settleOptions, type Asker, type TraceCliOptions } from "../trace/options.js";
import { renderClosing, renderHop, renderOverview, traceJson } from "../trace/render.js";
import { walk } from "../trace/walker.js";
import { captureAlong, capturePlan, settleCapture, type CaptureCliOptions } from "../trace/capture.js";
import type { HopClient } from "../drivers/hop.js";
import type { Io } from "./run.js";

export interface TraceIo extends Io {
  /** Defaults to process.stdin; a terminal there means missing options are asked. */
  stdin?: NodeJS.ReadableStream & { isTTY?: boolean };
}

/** Questions on the terminal: on stdout when it is one, else on stderr (stdout stays the trace's). */
function terminalAsker(stdin: NodeJS.ReadableStream, out: NodeJS.WritableStream): Asker {
  const ctx = { input: stdin, output: out };
  return {
    text: (message, validate, optional) => input({ message, validate: (v) => (optional && v.trim() === "" ? true : validate(v)) }, ctx),
    secret: (message) => password({ message, validate: (v) => (v === "" ? "Required" : true) }, ctx),
    yesNo: (message) => confirm({ message, default: false }, ctx),
  };
}

export async function traceCommand(o: TraceCliOptions & CaptureCliOptions, io: TraceIo, connectOverride?: (type: string, address: string) => HopClient): Promise<number> {
  const stdin = io.stdin ?? process.stdin;
  const promptOut = (io.stdout.isTTY && !o.json ? io.stdout : io.stderr) as NodeJS.WritableStream;
  const ask = stdin.isTTY ? terminalAsker(stdin, promptOut) : undefined;
  try {
    const s = await settleOptions(o, ask);
    const capture = settleCapture(o, s.flow);
    if (HOP_TYPES.length === 0) throw new ConfigError("no registered device type can answer a path trace");
    // --type a,b: only these types, in this order, at every hop; each is checked against the registry.
    const types = s.type === undefined ? HOP_TYPES : s.type.split(",").map((t) => t.trim()).filter(Boolean);
    if (types.length === 0) throw new ConfigError(`--type: give one or more device types (${HOP_TYPES.join(", ")})`);
    for (const t of types) {
      if (!HOP_TYPES.includes(t)) throw new ConfigError(`--type: ${JSON.stringify(t)} cannot answer a path trace; types that can: ${HOP_TYPES.join(", ")}`);
    }
    const connect =
      connectOverride ??
      ((type: string, address: string) =>
        hopClientFor(type)({
          address,
          username: s.user,
          password: s.password,
          ...(s.sshPort !== undefined ? { sshPort: s.sshPort } : {}),
          ...(s.restPort !== undefined ? { restPort: s.restPort } : {}),
          ...(s.tls ? { tls: s.tls } : {}),
          timeoutMs: s.timeoutMs,
        }));
    if (!s.json) io.stdout.write(renderOverview(s.flow));
    const result = await walk({
      flow: s.flow,
      target: s.target,
      firstTypes: types,
      allTypes: types,
      connect,
      useMgmt: s.useMgmt,
      secrets: [s.password],
      onHop: (hop) => {
        if (!s.json) io.stdout.write(renderHop(hop, s.flow.dst));
      },
      ...(s.mode === "interactive" && ask
        ? { beforeNextHop: async () => (await ask.text("Hit Enter to Continue... (q stops)", () => true, true)).trim().toLowerCase() !== "q" }
        : {}),
    });
    if (!capture) {
      io.stdout.write(s.json ? `${JSON.stringify(traceJson(s.flow, result))}\n` : renderClosing(result, s.flow.dst));
      return result.result === "complete" ? 0 : 1;
    }
    // --capture: along the hops found, also when the walk stopped short (then the exit code stays 1).
    if (!s.json) io.stdout.write(renderClosing(result, s.flow.dst));
    const c = await captureAlong(capturePlan(s, capture, result.hops), s, capture, io);
    io.stdout.write(s.json ? `${JSON.stringify({ ...traceJson(s.flow, result), capture: c.json })}\n` : `\n${c.lines.join("\n")}\n`);
    return result.result === "complete" ? c.exitCode : 1;
  } catch (e) {
    if (e instanceof Error && (e.name === "ExitPromptError" || e.name === "AbortPromptError")) {
      io.stderr.write("\ncancelled\n");
      return 130;
    }
    throw e;
  }
}
