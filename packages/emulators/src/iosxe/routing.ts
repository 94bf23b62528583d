// The emulated router's answers to what a path trace asks, computed from its `routing` option: `show ip
// cef [vrf V] exact-route <src> [src-port P] <dst> [dest-port P]` (longest prefix, ECMP sets picked
// by a hash of the 5-tuple, the device's own addresses as `receive`), `show interfaces <if>`,
// `show cdp neighbors detail`, `show ip arp [vrf V]`, `show mac address-table` and `show
// running-config`, printed as IOS-XE 17.x prints them. Not emulated: IPv6, `platform` exact-route.
import type { DeviceContext } from "./context.js";
import type { IosXeRoute } from "./types.js";
import { flowHash, ipv4Number, prefixLength } from "../route-table.js";

/** Structurally exec-cli.ts's CliResult (imported from here, not the other way round). */
type CliResult = { output: string } | { invalidAt: number; message: string };

export type RoutingCli = (words: readonly string[]) => CliResult | undefined;

/** The trace commands, or undefined for a line that is none of them (exec-cli.ts answers it). */
export function createRoutingCli(ctx: DeviceContext, resolveInterface: (typed: string) => string | undefined): RoutingCli {
  const routing = ctx.opts.routing ?? { routes: [] };
  const invalid = (at: number): CliResult => ({ invalidAt: at, message: "invalid input" });

  function ownAddress(addr: string, vrf: string | undefined): boolean {
    return ctx.interfaces.some((i) => i.ip?.split(" ")[0] === addr && (i.vrf ?? undefined) === vrf);
  }

  function exactRoute(words: readonly string[]): CliResult {
    // words: show ip cef [vrf V] exact-route <src> [src-port P] <dst> [dest-port P]
    let i = 3;
    let vrf: string | undefined;
    if (words[i] === "vrf") {
      vrf = words[i + 1];
      if (!vrf) return invalid(i + 1);
      i += 2;
    }
    if (words[i] !== "exact-route") return invalid(i);
    i++;
    const src = words[i];
    if (!src || ipv4Number(src) === undefined) return invalid(i);
    i++;
    let sport: number | undefined;
    if (words[i] === "src-port") {
      sport = Number(words[i + 1]);
      if (!/^\d{1,5}$/.test(words[i + 1] ?? "") || sport > 65535) return invalid(i + 1);
      i += 2;
    }
    const dst = words[i];
    const d = dst === undefined ? undefined : ipv4Number(dst);
    if (dst === undefined || d === undefined) return invalid(i);
    i++;
    let dport: number | undefined;
    if (words[i] === "dest-port") {
      dport = Number(words[i + 1]);
      if (!/^\d{1,5}$/.test(words[i + 1] ?? "") || dport > 65535) return invalid(i + 1);
      i += 2;
    }
    if (i !== words.length) return invalid(i);
    if (vrf !== undefined && !ctx.interfaces.some((x) => x.vrf === vrf) && !routing.routes.some((r) => r.vrf === vrf)) {
      return { output: `% IP routing table ${vrf} does not exist\n` };
    }
    const head = `${src} -> ${dst} =>`;
    if (ownAddress(dst, vrf)) return { output: `${head}receive\n` };
    let best: IosXeRoute[] = [];
    let bestLen = -1;
    for (const r of routing.routes) {
      if ((r.vrf ?? undefined) !== vrf) continue;
      const len = prefixLength(r.prefix, d);
      if (len === undefined || len < bestLen) continue;
      if (len > bestLen) best = [];
      bestLen = len;
      best.push(r);
    }
    if (best.length === 0 && routing.resolve) {
      const r = routing.resolve({ src, dst, ...(sport !== undefined ? { sport } : {}), ...(dport !== undefined ? { dport } : {}), ...(vrf !== undefined ? { vrf } : {}) });
      if (r) best = [r];
    }
    if (best.length === 0) return { output: `${head}no route\n` };
    const pick = best[flowHash([src, dst, sport, dport].map((p) => String(p ?? "")).join("|")) % best.length]!;
    return { output: `${head}IP adj out of ${pick.interface}, addr ${pick.via ?? dst}\n` };
  }

  function showInterface(name: string): string {
    const i = ctx.interfaces.find((x) => x.name === name)!;
    const seed = flowHash(name) % 1000;
    const c = routing.counters?.[name] ?? { outPackets: 40_000 + seed, outBytes: (40_000 + seed) * 99, resets: seed % 4 };
    const mac = `5254.00${(seed % 256).toString(16).padStart(2, "0")}.${(flowHash(`${ctx.hostname}|${name}`) & 0xffff).toString(16).padStart(4, "0")}`;
    const [addr, mask] = (i.ip ?? "").split(" ");
    const len = mask ? mask.split(".").reduce((n, o) => n + Number(o).toString(2).replace(/0/g, "").length, 0) : 0;
    return [
      `${name} is up, line protocol is up `,
      `  Hardware is vNIC, address is ${mac} (bia ${mac})`,
      ...(addr ? [`  Internet address is ${addr}/${len}`] : []),
      `  MTU 1500 bytes, BW 1000000 Kbit/sec, DLY 10 usec, `,
      `     reliability 255/255, txload 1/255, rxload 1/255`,
      `  Encapsulation ARPA, loopback not set`,
      `  Keepalive set (10 sec)`,
      `  Full Duplex, 1000Mbps, link type is auto, media type is Virtual`,
      `  output flow-control is unsupported, input flow-control is unsupported`,
      `  ARP type: ARPA, ARP Timeout 04:00:00`,
      `  Last input 00:00:00, output 00:00:00, output hang never`,
      `  Last clearing of "show interface" counters never`,
      `  Input queue: 0/375/0/0 (size/max/drops/flushes); Total output drops: 0`,
      `  Queueing strategy: fifo`,
      `  Output queue: 0/40 (size/max)`,
      `  5 minute input rate 1000 bits/sec, 1 packets/sec`,
      `  5 minute output rate 1000 bits/sec, 1 packets/sec`,
      `     ${c.outPackets + 812} packets input, ${(c.outPackets + 812) * 97} bytes, 0 no buffer`,
      `     Received 12 broadcasts (0 IP multicasts)`,
      `     0 runts, 0 giants, 0 throttles `,
      `     0 input errors, 0 CRC, 0 frame, 0 overrun, 0 ignored`,
      `     0 watchdog, 0 multicast, 0 pause input`,
      `     ${c.outPackets} packets output, ${c.outBytes} bytes, 0 underruns`,
      `     Output 3 broadcasts (0 IP multicasts)`,
      `     0 output errors, 0 collisions, ${c.resets} interface resets`,
      `     0 unknown protocol drops`,
      `     0 babbles, 0 late collision, 0 deferred`,
      `     0 lost carrier, 0 no carrier, 0 pause output`,
      `     0 output buffer failures, 0 output buffers swapped out`,
      ``,
    ].join("\n");
  }

  function cdpDetail(): string {
    const blocks = (routing.cdp ?? []).map((n) =>
      [
        `-------------------------`,
        `Device ID: ${n.deviceId}`,
        `Entry address(es): `,
        `  IP address: ${n.address}`,
        `Platform: ${n.platform ?? "cisco C8000V"},  Capabilities: Router IGMP `,
        `Interface: ${n.localInterface},  Port ID (outgoing port): ${n.remoteInterface}`,
        `Holdtime : 163 sec`,
        ``,
        `Version :`,
        `Cisco IOS Software [Dublin], Virtual XE Software (X86_64_LINUX_IOSD-UNIVERSALK9-M), Version 17.12.1, RELEASE SOFTWARE (fc5)`,
        `Technical Support: http://www.cisco.com/techsupport`,
        `Copyright (c) 1986-2023 by Cisco Systems, Inc.`,
        `Compiled Thu 27-Jul-23 22:33 by mcpre`,
        ``,
        `advertisement version: 2`,
        `Duplex: full`,
        ...(n.mgmtAddress ? [`Management address(es): `, `  IP address: ${n.mgmtAddress}`] : [`Management address(es): `]),
        ``,
      ].join("\n"),
    );
    return `${blocks.join("\n")}\n\nTotal cdp entries displayed : ${blocks.length}\n`;
  }

  function arp(vrf: string | undefined): string {
    const rows = (routing.arp ?? []).filter((a) => (a.vrf ?? undefined) === vrf);
    const own = ctx.interfaces.filter((i) => i.ip && (i.vrf ?? undefined) === vrf).map((i) => ({ address: i.ip!.split(" ")[0]!, mac: "5254.0000.0001", interface: i.name, own: true }));
    const line = (a: { address: string; mac: string; interface: string; own?: boolean }) =>
      `Internet  ${a.address.padEnd(15)} ${(a.own ? "-" : "12").padStart(10)}   ${a.mac}  ARPA   ${a.interface}`;
    return ["Protocol  Address          Age (min)  Hardware Addr   Type   Interface", ...[...own, ...rows].map(line), ""].join("\n");
  }

  function macTable(): CliResult {
    if (!routing.macTable) return invalid(1);
    const rows = routing.macTable.map((m) => `${m.vlan.padStart(4)}    ${m.mac}    DYNAMIC     ${m.port}`);
    return {
      output: [
        `          Mac Address Table`,
        `-------------------------------------------`,
        ``,
        `Vlan    Mac Address       Type        Ports`,
        `----    -----------       --------    -----`,
        ...rows,
        `Total Mac Addresses for this criterion: ${rows.length}`,
        ``,
      ].join("\n"),
    };
  }

  function runningConfig(): string {
    const body = [
      `version 17.9`,
      `service timestamps debug datetime msec`,
      `!`,
      `hostname ${ctx.hostname}`,
      `!`,
      ...(routing.loadSharing ? [`ip cef load-sharing algorithm ${routing.loadSharing}`, `!`] : []),
      ...ctx.interfaces.flatMap((i) => [`interface ${i.name}`, ...(i.vrf ? [` vrf forwarding ${i.vrf}`] : []), i.ip ? ` ip address ${i.ip}` : " no ip address", " negotiation auto", `!`]),
      ...routing.routes
        .filter((r) => r.via)
        .map((r) => {
          const [net, len] = r.prefix.split("/");
          const l = Number(len);
          const mask = [24, 16, 8, 0].map((s) => ((l === 0 ? 0 : (0xffffffff << (32 - l)) >>> 0) >>> s) & 255).join(".");
          return `ip route ${r.vrf ? `vrf ${r.vrf} ` : ""}${net} ${mask} ${r.interface} ${r.via}`;
        }),
      `!`,
      `end`,
    ];
    return ["Building configuration...", "", `Current configuration : ${body.join("\n").length + 1} bytes`, "!", ...body, ""].join("\n");
  }

  return (words) => {
    if (words[0] !== "show") return undefined;
    const [, w1, w2, w3] = words;
    if (w1 === "ip" && w2 === "cef" && (w3 === "exact-route" || w3 === "vrf")) return exactRoute(words);
    if ((w1 === "interfaces" || w1 === "interface") && words.length === 3) {
      const name = resolveInterface(w2!);
      return name ? { output: showInterface(name) } : invalid(2);
    }
    if (w1 === "cdp" && w2 === "neighbors" && w3 === "detail" && words.length === 4) return { output: cdpDetail() };
    if (w1 === "ip" && w2 === "arp") {
      if (words.length === 3) return { output: arp(undefined) };
      if (w3 === "vrf" && words.length === 5) return { output: arp(words[4]) };
      return invalid(3);
    }
    if (w1 === "mac" && w2 === "address-table" && words.length === 3) return macTable();
    if ((w1 === "running-config" || w1 === "run") && words.length === 2) return { output: runningConfig() };
    return undefined;
  };
}
