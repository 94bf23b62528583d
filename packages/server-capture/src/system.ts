// Host checks: privileges for packet capture, free disk space, tcpdump's unprivileged user.
import { readFileSync, statfsSync } from "node:fs";
import { execFileSync } from "node:child_process";

const CAP_NET_RAW = 13;

/** Root, or CAP_NET_RAW in the effective set (a systemd unit may grant just that). */
export function canCapture(): boolean {
  if (process.getuid?.() === 0) return true;
  try {
    const m = /^CapEff:\s*([0-9a-f]+)$/m.exec(readFileSync("/proc/self/status", "utf8"));
    return m ? (BigInt(`0x${m[1]}`) & (1n << BigInt(CAP_NET_RAW))) !== 0n : false;
  } catch {
    return false;
  }
}

export function freeMegabytes(dir: string): number {
  const s = statfsSync(dir);
  return (s.bavail * s.bsize) / (1024 * 1024);
}

/** uid/gid of a local user, or undefined when it does not exist. */
export function lookupUser(name: string): { uid: number; gid: number } | undefined {
  if (!/^[a-z_][a-z0-9_-]{0,31}$/.test(name)) return undefined;
  try {
    const uid = Number(execFileSync("id", ["-u", name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
    const gid = Number(execFileSync("id", ["-g", name], { encoding: "utf8", stdio: ["ignore", "pipe", "ignore"] }).trim());
    return Number.isInteger(uid) && Number.isInteger(gid) ? { uid, gid } : undefined;
  } catch {
    return undefined;
  }
}
