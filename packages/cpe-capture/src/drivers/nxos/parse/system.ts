// `show version` and `show hostname` (NX-OS 9.3/10.x, Nexus 9000): the probe's facts — `NXOS:
// version 9.3(5)` (`system: version` on older releases), `cisco Nexus9000 <model> chassis`,
// `Processor Board ID <serial>`, `Device name: <host>` — and the bare host name line.
import { firstLine, lines, type Parsed } from "./issue.js";

/** @example { version: "9.3(5)", model: "Nexus9000 93180YC-EX", serial: "FDO21392QKM", hostname: "n9k-140" } */
export interface NxosVersion {
  version: string;
  model: string;
  serial: string;
  hostname: string | undefined;
}

export function parseShowVersion(text: string): Parsed<NxosVersion> {
  const version = /^\s*(?:NXOS|system|kickstart):\s+version\s+(\S+)/im.exec(text)?.[1];
  if (!version) return { ok: false, code: "no-version", message: `no 'NXOS: version' line: ${firstLine(text)}` };
  const model = /^\s*cisco (.+?) [Cc]hassis/m.exec(text)?.[1]?.trim();
  if (!model) return { ok: false, code: "no-model", message: "no 'cisco … chassis' line" };
  const serial = /Processor Board ID\s+(\S+)/i.exec(text)?.[1] ?? "";
  const hostname = /^\s*Device name:\s*(\S+)/m.exec(text)?.[1];
  return { ok: true, value: { version, model, serial, hostname } };
}

/** `show hostname` prints the name alone (fully qualified when a domain is set). */
export function parseShowHostname(text: string): Parsed<string> {
  const names = lines(text).map((l) => l.trim()).filter((l) => l !== "");
  if (names.length !== 1 || !/^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/.test(names[0]!)) {
    return { ok: false, code: "no-hostname", message: `not a host name: ${firstLine(text)}` };
  }
  return { ok: true, value: names[0]! };
}
