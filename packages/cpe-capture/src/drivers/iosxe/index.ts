// The Cisco IOS-XE vendor module: routers captured with Embedded Packet Capture over RESTCONF or
// the SSH CLI, the file fetched by SCP or SFTP (./driver.ts); link and line-protocol down alarms.
import type { VendorModule } from "../vendor.js";
import { IOSXE_ALARMS } from "./alarms.js";
import { IOSXE_CONFIG_KEYS, IosXeDriver } from "./driver.js";
import { IOSXE_CAPABILITIES, IOSXE_INTERFACE_RULES, epcCompiler } from "./epc.js";
import { IosXeHop } from "./route.js";

export const iosxe = {
  vendor: "iosxe",
  types: [
    {
      name: "iosxe",
      label: "Cisco IOS-XE router",
      interfaces: IOSXE_INTERFACE_RULES,
      capabilities: IOSXE_CAPABILITIES,
      compiler: epcCompiler,
      prompt: { interfaces: { kind: "type", message: "Interfaces to capture (comma-separated, e.g. GigabitEthernet1)" } },
      driver: (opts) => new IosXeDriver({ ...opts, type: "iosxe" }),
      hop: (opts) => new IosXeHop(opts),
    },
  ],
  configKeys: IOSXE_CONFIG_KEYS,
  alarms: IOSXE_ALARMS,
} as const satisfies VendorModule;
