// An IOS-XE router as one hop of `cpe-capture trace` (../hop.ts): CEF's exact-route for the flow, the
// out interface's counters, CDP, ARP and the MAC table, asked over the exec CLI of ./ssh-cli.ts (the
// RESTCONF RPCs this driver uses run no show commands). One SSH session per question; the first one
// also asks `show version` (is this IOS-XE, its hostname) and the CEF load-sharing line, once.
import { ConfigError, DeviceProtocolError } from "@capsync/protocol";
import type { ArpEntry, CdpNeighbor, FlowQuery, HopClient, HopOptions, InterfaceStats, MacEntry, RouteDecision } from "../hop.js";
import { INTERFACE_NAME } from "../vendor.js";
import { exactRouteCommand, parseArp, parseCdpDetail, parseExactRoute, parseMacTable, parseRunningFacts, parseShowInterfaces } from "./hop-parsers.js";
import { IosXeSsh, cliErrors } from "./ssh-cli.js";

/** Which OS this is (a trace tries device types in turn) and its name, then the CEF hash setting. */
const FACTS = ["show version | include IOS XE Software|uptime is", "show running-config | include ^ip cef load-sharing"] as const;
const VRF = /^[A-Za-z0-9_.:-]{1,32}$/;

export class IosXeHop implements HopClient {
  private readonly ssh: IosXeSsh;
  private readonly ms: number;
  private readonly label: string;
  private facts: { hostname: string; loadShareMode: string } | undefined;

  constructor(opts: HopOptions) {
    this.ssh = new IosXeSsh({ address: opts.address, sshPort: opts.sshPort ?? 22, username: opts.username, password: opts.password });
    this.ms = opts.timeoutMs ?? 15_000;
    this.label = `IOS-XE ${opts.address}`;
  }

  /** Runs the lines in one session (the facts first when not known yet); refuses a device that is no IOS-XE. */
  private async run(lines: readonly string[]): Promise<string[]> {
    const first = this.facts === undefined;
    const exchanges = await this.ssh.runCli(first ? [...FACTS, ...lines] : lines, this.ms);
    if (first) {
      const version = exchanges.shift()?.output ?? "";
      const config = exchanges.shift()?.output ?? "";
      const facts = parseRunningFacts(version, config);
      if (!facts.iosXe) this.refuse(FACTS[0], "the device does not run IOS XE");
      if (!facts.hostname) this.refuse(FACTS[0], "no '<hostname> uptime is' line");
      this.facts = { hostname: facts.hostname, loadShareMode: facts.loadShareMode };
    }
    return exchanges.map((e) => e.output);
  }

  private refuse(command: string, why: string): never {
    throw new DeviceProtocolError(`${this.label}: ${command}: ${this.ssh.scrub(why)}`, { code: "hop-answer" });
  }

  async hostname(): Promise<string> {
    if (this.facts === undefined) await this.run([]);
    return this.facts!.hostname;
  }

  async routeFor(flow: FlowQuery): Promise<RouteDecision> {
    const command = exactRouteCommand(flow);
    if (typeof command !== "string") throw new ConfigError(`${this.label}: ${command.error}`);
    const [raw = ""] = await this.run([command]);
    const r = parseExactRoute(raw, flow.dst);
    if (!r.ok) this.refuse(command, r.reason);
    return {
      outInterface: r.outInterface,
      ...(r.nextHop !== undefined ? { nextHop: r.nextHop } : {}),
      ...(r.local ? { local: true } : {}),
      loadShareMode: this.facts?.loadShareMode,
      vrf: flow.vrf ?? "default",
      raw,
    };
  }

  async interfaceStats(name: string): Promise<InterfaceStats> {
    if (!INTERFACE_NAME.test(name)) throw new ConfigError(`${this.label}: ${JSON.stringify(name)} is not an interface name`);
    const command = `show interfaces ${name}`;
    const [raw = ""] = await this.run([command]);
    const s = parseShowInterfaces(raw);
    if ("error" in s) this.refuse(command, s.error);
    return s;
  }

  async cdpNeighbors(): Promise<CdpNeighbor[]> {
    return parseCdpDetail(await this.checked("show cdp neighbors detail"));
  }

  async arp(vrf?: string): Promise<ArpEntry[]> {
    const v = vrf && vrf !== "default" ? vrf : undefined;
    if (v !== undefined && !VRF.test(v)) throw new ConfigError(`${this.label}: VRF ${JSON.stringify(v)} is not a VRF name`);
    return parseArp(await this.checked(v ? `show ip arp vrf ${v}` : "show ip arp"));
  }

  async macTable(): Promise<MacEntry[]> {
    return parseMacTable(await this.checked("show mac address-table"));
  }

  private async checked(command: string): Promise<string> {
    const [raw = ""] = await this.run([command]);
    const errors = cliErrors(raw);
    if (errors.length > 0) this.refuse(command, errors.join(" "));
    return raw;
  }

  close(): Promise<void> {
    return this.ssh.close();
  }
}
