// File names on the agent: temp names while tcpdump writes, final names derived from the device
// capture's name given in STOP. Final names never overwrite an existing file.
import { existsSync } from "node:fs";
import { join } from "node:path";
import { addressToken, captureTimestamp } from "@capsync/protocol";

export function tempName(device: string, when = new Date()): string {
  return `tmp_device_${addressToken(device)}_${captureTimestamp(when)}.pcap`;
}

/**
 * `CPE_device_<ip>_<ts>.pcap` → `OVOC_device_<ip>_<ts>-<index>.pcap` (the original's pairing);
 * any other name → `<stem>_server-<index>.pcap`. The input is already a validated file name.
 */
export function finalName(deviceFile: string, index: number): string {
  const stem = deviceFile.replace(/\.(pcapng|pcap|cap)$/i, "");
  const m = /^CPE_(.+)$/.exec(stem);
  return m ? `OVOC_${m[1]}-${index}.pcap` : `${stem}_server-${index}.pcap`;
}

/** First of name, name_2, name_3 ... (before the extension) that does not exist in dir. */
export function unusedName(dir: string, name: string, taken: ReadonlySet<string> = new Set()): string {
  const dot = name.lastIndexOf(".");
  const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ""];
  for (let n = 1; ; n++) {
    const candidate = n === 1 ? name : `${stem}_${n}${ext}`;
    if (!taken.has(candidate) && !existsSync(join(dir, candidate))) return candidate;
  }
}
