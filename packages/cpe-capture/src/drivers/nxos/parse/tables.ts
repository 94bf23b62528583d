// `show ip arp [vrf <vrf>]` and `show mac address-table` (NX-OS 7.x to 10.x): the rows flowtracker
// reads to turn a directly connected destination into a physical port (get_mac_from_ip:
// `<ip>  <age hh:mm:ss>  <mac>  <interface>`; get_int_from_mac: `<mac>  <type>  <age>  <secure>
// <ntfy>  <port>`). Legend, header and flag lines are skipped; the MAC table's leading `*`/`G`/`+`
// markers and VLAN column are read.
import { lines, type Parsed } from "./issue.js";

/** @example { address: "10.1.1.20", age: "00:13:32", mac: "0050.56aa.0001", interface: "Vlan10" } */
export interface ArpRow {
  address: string;
  age: string;
  mac: string;
  interface: string;
}

/** @example { vlan: "10", mac: "0050.56aa.0001", type: "dynamic", port: "Eth1/5" } */
export interface MacRow {
  vlan: string;
  mac: string;
  type: string;
  port: string;
}

const MAC = "[0-9a-fA-F]{4}\\.[0-9a-fA-F]{4}\\.[0-9a-fA-F]{4}";

export function parseShowIpArp(text: string): Parsed<ArpRow[]> {
  const rows: ArpRow[] = [];
  const re = new RegExp(`^(\\d+\\.\\d+\\.\\d+\\.\\d+)\\s+(\\S+)\\s+(${MAC}|INCOMPLETE)\\s+(\\S+)`);
  for (const l of lines(text)) {
    const m = re.exec(l.trim());
    if (m && m[3] !== "INCOMPLETE") rows.push({ address: m[1]!, age: m[2]!, mac: m[3]!.toLowerCase(), interface: m[4]! });
  }
  if (rows.length === 0 && !/IP ARP Table|Total number of entries/.test(text)) {
    return { ok: false, code: "no-arp-table", message: `not an ARP table: ${text.trim().split("\n")[0]?.slice(0, 120) ?? "(empty)"}` };
  }
  return { ok: true, value: rows };
}

export function parseShowMacAddressTable(text: string): Parsed<MacRow[]> {
  const rows: MacRow[] = [];
  const re = new RegExp(`^[*G+CO]?\\s*(\\d+|-)\\s+(${MAC})\\s+(\\S+)\\s+(\\S+)\\s+\\S+\\s+\\S+\\s+(\\S+)`);
  for (const l of lines(text)) {
    const m = re.exec(l.trim());
    if (m) rows.push({ vlan: m[1]!, mac: m[2]!.toLowerCase(), type: m[3]!, port: m[5]! });
  }
  if (rows.length === 0 && !/MAC Address/i.test(text)) {
    return { ok: false, code: "no-mac-table", message: `not a MAC address table: ${text.trim().split("\n")[0]?.slice(0, 120) ?? "(empty)"}` };
  }
  return { ok: true, value: rows };
}
