// The NX-OS answer to `cpe-capture trace`'s question (../hop.ts): flowtracker's commands — `show
// routing hash`, `show interface`, `show cdp neighbors detail`, `show ip arp`, `show mac
// address-table`, `show hostname` — over NX-API with the SSH CLI as fallback (./session.ts), read by
// ./parse/. A parse issue becomes a DeviceProtocolError naming the command and what was missing.
import { ConfigError, DeviceProtocolError } from "@capsync/protocol";
import { DeviceCalls } from "../common/retry.js";
import type { ArpEntry, CdpNeighbor, FlowQuery, HopClient, HopOptions, InterfaceStats, MacEntry, RouteDecision } from "../hop.js";
import { INTERFACE_NAME } from "../vendor.js";
import type { Parsed } from "./parse/issue.js";
import { parseShowInterface } from "./parse/interface.js";
import { parseCdpNeighborsDetail } from "./parse/neighbors.js";
import { parseRoutingHash, routingHashCommand } from "./parse/routing-hash.js";
import { parseShowHostname } from "./parse/system.js";
import { parseShowIpArp, parseShowMacAddressTable } from "./parse/tables.js";
import { nxosSession, type NxosSession, type NxosVia } from "./session.js";

const VRF = /^[A-Za-z0-9_.:-]{1,64}$/;

export class NxosHopClient implements HopClient {
  private readonly session: NxosSession;
  private readonly calls: DeviceCalls;
  private readonly label: string;
  private readonly ms: number;

  constructor(opts: HopOptions) {
    this.label = `nxos ${opts.address}`;
    this.ms = opts.timeoutMs ?? 10_000;
    this.session = nxosSession(opts);
    this.calls = new DeviceCalls({ label: this.label, operationMs: this.ms * 2, backoffMs: 200, maxBackoffMs: 1000, scrub: (t) => this.session.scrub(t), onTask: () => {} });
  }

  /** How the switch answered last: NX-API, or the SSH CLI after NX-API was found off. */
  get via(): NxosVia | undefined {
    return this.session.via;
  }

  /** One command, its text read by `parse`; a parse issue is a DeviceProtocolError. */
  private async show<T>(command: string, parse: (text: string) => Parsed<T>): Promise<T> {
    const [text] = await this.calls.run(command, 1, (ms) => this.session.run([command], ms), this.ms);
    const p = parse(text ?? "");
    if (!p.ok) throw new DeviceProtocolError(this.session.scrub(`${this.label}: '${command}': ${p.message}`), { code: `nxos-${p.code}` });
    return p.value;
  }

  hostname(): Promise<string> {
    return this.show("show hostname", parseShowHostname);
  }

  async routeFor(flow: FlowQuery): Promise<RouteDecision> {
    const command = routingHashCommand(flow);
    if (!command) throw new ConfigError(`${this.label}: not a flow NX-OS can hash: ${JSON.stringify(flow)} (IPv4 addresses, protocol 0-255, both ports or none, a VRF name)`);
    const h = await this.show(command, (t) => {
      const p = parseRoutingHash(t);
      if (p.ok && p.value.outInterface === undefined) return { ok: false as const, code: "no-out-interface", message: `no out interface for path ${p.value.path}` };
      return p;
    });
    const raw = [h.loadShareMode && `load-share mode: ${h.loadShareMode}`, `Hash for VRF "${h.vrf}"`, `Hashing to path *${h.path}`, `Out Interface: ${h.outInterface}`].filter(Boolean).join("\n");
    return {
      outInterface: h.outInterface!,
      ...(h.nextHop !== undefined && h.nextHop !== flow.dst && !h.local ? { nextHop: h.nextHop } : {}),
      ...(h.loadShareMode !== undefined ? { loadShareMode: h.loadShareMode } : {}),
      vrf: h.vrf,
      ...(h.local ? { local: true } : {}),
      raw,
    };
  }

  async interfaceStats(name: string): Promise<InterfaceStats> {
    if (!INTERFACE_NAME.test(name)) throw new ConfigError(`${this.label}: not an interface name: ${JSON.stringify(name)}`);
    const c = await this.show(`show interface ${name}`, parseShowInterface);
    return { ...(c.resets !== undefined ? { resets: c.resets } : {}), txStats: c.txStats, txLines: c.txBlock.split("\n").map((l) => l.trim()).filter((l) => l !== ""), raw: c.txBlock };
  }

  async cdpNeighbors(): Promise<CdpNeighbor[]> {
    const list = await this.show("show cdp neighbors detail", parseCdpNeighborsDetail);
    return list.map((n) => ({
      deviceId: n.deviceId,
      localInterface: n.localInterface,
      ...(n.remoteInterface !== undefined ? { remoteInterface: n.remoteInterface } : {}),
      addresses: n.addresses,
      mgmtAddresses: n.mgmtAddresses,
      ...(n.platform !== undefined ? { platform: n.platform } : {}),
    }));
  }

  async arp(vrf?: string): Promise<ArpEntry[]> {
    if (vrf !== undefined && !VRF.test(vrf)) throw new ConfigError(`${this.label}: not a VRF name: ${JSON.stringify(vrf)}`);
    const rows = await this.show(vrf && vrf !== "default" ? `show ip arp vrf ${vrf}` : "show ip arp", parseShowIpArp);
    return rows.map((r) => ({ address: r.address, mac: r.mac, interface: r.interface }));
  }

  async macTable(): Promise<MacEntry[]> {
    const rows = await this.show("show mac address-table", parseShowMacAddressTable);
    return rows.map((r) => ({ mac: r.mac, vlan: r.vlan, port: r.port }));
  }

  close(): Promise<void> {
    return this.session.close();
  }
}
