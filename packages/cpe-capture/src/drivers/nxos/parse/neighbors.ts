// `show cdp neighbors detail` (NX-OS 9.3/10.x): one block per neighbor between dashed lines —
// `Device ID:`, `System Name:`, `Interface address(es):` and `Mgmt address(es):` lists of
// `IPv4 Address: …`, `Platform: <pid>, Capabilities: …`, `Interface: <local>, Port ID (outgoing port): <remote>`.
// flowtracker's get_mgmt reads the same block: the neighbor whose addresses hold the next hop, then
// its first Mgmt IPv4 address.
import { lines, type Parsed } from "./issue.js";

/** @example { deviceId: "N9K2(FDO21392QKM)", systemName: "N9K2", localInterface: "Ethernet1/52", remoteInterface: "Ethernet2/3", addresses: ["10.10.60.1"], mgmtAddresses: ["192.0.2.12"], platform: "N9K-C93180YC-EX" } */
export interface CdpEntry {
  deviceId: string;
  systemName: string | undefined;
  localInterface: string;
  remoteInterface: string | undefined;
  addresses: string[];
  mgmtAddresses: string[];
  platform: string | undefined;
}

export function parseCdpNeighborsDetail(text: string): Parsed<CdpEntry[]> {
  const out: CdpEntry[] = [];
  let cur: (Partial<CdpEntry> & { addresses: string[]; mgmtAddresses: string[] }) | undefined;
  let list: "addresses" | "mgmtAddresses" | undefined;
  const flush = () => {
    if (cur?.deviceId && cur.localInterface) {
      out.push({
        deviceId: cur.deviceId,
        systemName: cur.systemName,
        localInterface: cur.localInterface,
        remoteInterface: cur.remoteInterface,
        addresses: cur.addresses,
        mgmtAddresses: cur.mgmtAddresses,
        platform: cur.platform,
      });
    }
    cur = undefined;
    list = undefined;
  };
  for (const raw of lines(text)) {
    const l = raw.trim();
    let m: RegExpExecArray | null;
    if (/^-{5,}$/.test(l)) flush();
    else if ((m = /^Device ID:\s*(.+)$/.exec(l))) {
      flush();
      cur = { deviceId: m[1]!.trim(), addresses: [], mgmtAddresses: [] };
    } else if (!cur) continue;
    else if ((m = /^System Name:\s*(.+)$/.exec(l))) cur.systemName = m[1]!.trim();
    else if (/^Interface address\(es\):/.test(l)) list = "addresses";
    else if (/^Mgmt address\(es\):/.test(l)) list = "mgmtAddresses";
    else if ((m = /^IPv[46] Address:\s*(\S+)/.exec(l)) && list) cur[list].push(m[1]!);
    else if ((m = /^Platform:\s*([^,]+)/.exec(l))) {
      cur.platform = m[1]!.trim();
      list = undefined;
    } else if ((m = /^Interface:\s*([^,]+),\s*Port ID \(outgoing port\):\s*(\S+)/.exec(l))) {
      cur.localInterface = m[1]!.trim();
      cur.remoteInterface = m[2]!;
      list = undefined;
    } else if (l !== "" && !/^IPv[46] Address/.test(l)) list = undefined;
  }
  flush();
  if (out.length === 0 && !/Total cdp entries|Device ID/i.test(text) && text.trim() !== "") {
    return { ok: false, code: "no-cdp", message: `no CDP neighbor blocks: ${text.trim().split("\n")[0]!.slice(0, 120)}` };
  }
  return { ok: true, value: out };
}
