// The IOS-XE exec-mode CLI as the emulated device answers it: `show version`, `show running-config
// interface`, `show monitor capture`, `monitor capture`, `no monitor capture`, `delete /force`, `dir`,
// `terminal length|width`, and `| include|exclude`; the path-trace commands come from routing.ts.
// Interface names resolve with IOS abbreviations.
// Not handled: configuration mode, `delete` without /force (it prompts), any other command.
import { parseMonitor, NAME } from "./monitor-command.js";
import { canonicalIosXeInterface } from "@capsync/cpe-capture/drivers/iosxe/interfaces";
import type { DeviceContext } from "./context.js";
import { createRoutingCli } from "./routing.js";

export type CliResult = { output: string } | { invalidAt: number; message: string };

export interface ExecCli {
  /** One exec-mode CLI line. */
  execCli(line: string): CliResult;
  /** Which CLI fault a line is subject to. */
  cliClass(line: string): "probe" | "capture" | "other";
  /** Typed names (case-insensitive, IOS abbreviations) → the device's interface, if it has it. */
  resolveInterface(typed: string): string | undefined;
}

export function createExecCli(ctx: DeviceContext): ExecCli {
  const { hostname, model, version, serial, interfaces, epc } = ctx;

  function resolveInterface(typed: string): string | undefined {
    const full = canonicalIosXeInterface(typed) ?? typed;
    return interfaces.find((i) => i.name.toLowerCase() === full.toLowerCase())?.name;
  }
  const routingCli = createRoutingCli(ctx, resolveInterface);

  function showVersion(): string {
    return [
      `Cisco IOS XE Software, Version ${version}`,
      `Cisco IOS Software [Cupertino], Virtual XE Software (X86_64_LINUX_IOSD-UNIVERSALK9-M), Version ${version.replace(/\.0(\d)/g, ".$1")}, RELEASE SOFTWARE (fc3)`,
      `Technical Support: http://www.cisco.com/techsupport`,
      `Copyright (c) 1986-2023 by Cisco Systems, Inc.`,
      `Compiled Fri 20-Oct-23 10:44 by mcpre`,
      ``,
      `ROM: IOS-XE ROMMON`,
      ``,
      `${hostname} uptime is 1 hour, 2 minutes`,
      `Uptime for this control processor is 1 hour, 4 minutes`,
      `System returned to ROM by reload`,
      `System image file is "bootflash:packages.conf"`,
      `Last reload reason: reload`,
      ``,
      `This product contains cryptographic features and is subject to United`,
      `States and local country laws governing import, export, transfer and use.`,
      ``,
      `License Level: network-advantage`,
      `License Type: Perpetual`,
      `Next reload license Level: network-advantage`,
      ``,
      `cisco ${model} (VXE) processor (revision VXE) with 2028465K/3075K bytes of memory.`,
      `Processor board ID ${serial}`,
      `Router operating mode: Autonomous`,
      `${interfaces.length} Gigabit Ethernet interfaces`,
      `32768K bytes of non-volatile configuration memory.`,
      `3965112K bytes of physical memory.`,
      `11526144K bytes of virtual hard disk at bootflash:.`,
      ``,
      `Configuration register is 0x2102`,
      ``,
    ].join("\n");
  }

  function runningConfigInterface(name: string): string {
    const i = interfaces.find((x) => x.name === name)!;
    const body = [`interface ${i.name}`, ...(i.vrf ? [` vrf forwarding ${i.vrf}`] : []), i.ip ? ` ip address ${i.ip}` : " no ip address", " negotiation auto", "end"];
    return ["Building configuration...", "", `Current configuration : ${body.join("\n").length + 1} bytes`, "!", ...body, ""].join("\n");
  }

  /** One exec-mode CLI line. */
  function execCli(line: string): CliResult {
    const [cmdPart, ...pipe] = line.split("|");
    const words = cmdPart!.trim().split(/\s+/).filter(Boolean);
    if (words.length === 0) return { output: "" };
    const invalid = (at: number, message = "invalid input"): CliResult => ({ invalidAt: at, message });
    let out: CliResult;
    const w0 = words[0]!;
    if (w0 === "terminal" && (words[1] === "length" || words[1] === "width") && /^\d+$/.test(words[2] ?? "") && words.length === 3) {
      out = { output: "" };
    } else if (w0 === "show" && words[1] === "version" && words.length === 2) {
      out = { output: showVersion() };
    } else if (w0 === "show" && (words[1] === "running-config" || words[1] === "run") && words[2] === "interface") {
      const name = words[3] === undefined ? undefined : resolveInterface(words[3]);
      out = name && words.length === 4 ? { output: runningConfigInterface(name) } : invalid(3);
    } else if (w0 === "show" && words[1] === "monitor" && words[2] === "capture") {
      if (words.length === 3) out = { output: [...epc.points.values()].map((cp) => epc.show(cp)).join("\n") };
      else if (words.length === 4) {
        const cp = epc.points.get(words[3]!);
        out = { output: cp ? epc.show(cp) : `Capture point ${words[3]} does not exist\n` };
      } else out = invalid(4);
    } else if (w0 === "monitor" && words[1] === "capture") {
      const p = parseMonitor(words.slice(2), resolveInterface);
      out = p.ok ? { output: epc.run(p.value) } : invalid(p.at + 2, p.message);
    } else if (w0 === "no" && words[1] === "monitor" && words[2] === "capture") {
      out = words.length === 4 && NAME.test(words[3]!) ? { output: epc.remove(words[3]!) } : invalid(4);
    } else if (w0 === "delete") {
      const force = words[1] === "/force";
      const path = words[force ? 2 : 1];
      // Without /force IOS asks "Delete filename [...]?" interactively; only /force is emulated.
      out = force && path && words.length === 3 ? { output: epc.delete(path) } : invalid(force ? 2 : 1);
    } else if (w0 === "dir" && (words[1] === "bootflash:" || words[1] === undefined) && words.length <= 2) {
      const rows = [...epc.bootflash].map(([n, f], i) => `${String(i + 11).padStart(6)}  -rw-  ${String(f.data.length).padStart(12)}  ${f.mtime.toUTCString()}  ${n}`);
      out = { output: ["Directory of bootflash:/", "", ...rows, "", "11526144000 bytes total (10000000000 bytes free)", ""].join("\n") };
    } else {
      out = routingCli(words) ?? invalid(0);
    }
    if ("output" in out && pipe.length > 0) {
      const m = /^\s*(include|exclude|i|e)\s+(.+?)\s*$/.exec(pipe.join("|"));
      if (!m) return invalid(words.length);
      let re: RegExp;
      try {
        re = new RegExp(m[2]!);
      } catch {
        return invalid(words.length);
      }
      const keep = m[1]!.startsWith("i");
      out = { output: out.output.split("\n").filter((l) => re.test(l) === keep).join("\n") + "\n" };
    }
    return out;
  }

  function cliClass(line: string): "probe" | "capture" | "other" {
    if (/^\s*show\s+version/.test(line)) return "probe";
    if (/^\s*(no\s+)?monitor\s+capture|^\s*show\s+monitor|^\s*delete\s/.test(line)) return "capture";
    return "other";
  }

  return { execCli, cliClass, resolveInterface };
}
