// An emulated AudioCodes device as its own process inside a test's network namespace (the
// capsync-emulator CLI under `ip netns exec`), so a test can cut its link for a real outage.
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { join } from "node:path";
import { ROOT, tempDir } from "./agent-proc.js";

export const EMULATOR_CLI = join(ROOT, "packages/emulators/dist/cli.js");
/** Where the emulator keeps the capture file it serves as /debug-capture/debug-capture-data.pcap. */
const CAPTURE_REL = join("debug-capture", "debug-capture-data.pcap");

export interface NsDevice {
  child: ChildProcess;
  address: string;
  restPort: number;
  sshPort: number;
  /** The file the device serves over SFTP (in its --data-dir). */
  capturePath: string;
  output: () => string;
  stop(): Promise<void>;
}

export async function startNsAudioCodes(ns: string, o: { type: "msbr" | "gwsbc"; address: string; password: string; pps?: number }): Promise<NsDevice> {
  const dataDir = tempDir("capsync-nsdev-");
  // The password goes by environment, never argv.
  const child = spawn(
    "ip",
    ["netns", "exec", ns, process.execPath, EMULATOR_CLI, "audiocodes", "--type", o.type, "--address", o.address, "--password-env", "NSDEV_PW", "--rest-port", "0", "--ssh-port", "0", "--snmp-port=-1", "--pps", String(o.pps ?? 100), "--data-dir", dataDir],
    { stdio: ["ignore", "pipe", "pipe"], env: { ...process.env, NSDEV_PW: o.password } },
  );
  let out = "";
  child.stderr!.on("data", (d: Buffer) => (out += d.toString()));
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  const ready = await new Promise<RegExpExecArray>((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`emulator in ${ns} not ready after 15 s: ${out}`)), 15_000);
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /^ready audiocodes \S+ \S+ rest=(\d+) ssh=(\d+)/m.exec(out);
      if (m) {
        clearTimeout(t);
        resolve(m);
      }
    });
    child.once("exit", (c) => {
      clearTimeout(t);
      reject(new Error(`emulator in ${ns} exited ${c}: ${out}`));
    });
  });
  return {
    child,
    address: o.address,
    restPort: Number(ready[1]),
    sshPort: Number(ready[2]),
    capturePath: join(dataDir, CAPTURE_REL),
    output: () => out,
    async stop() {
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
      await exited;
    },
  };
}

/** Bring a link up or down (a real outage: the kernel drops what is routed through it). */
export function setLink(dev: string, state: "up" | "down", ns?: string): void {
  execFileSync("ip", [...(ns ? ["-n", ns] : []), "link", "set", dev, state], { stdio: ["ignore", "pipe", "pipe"] });
}
