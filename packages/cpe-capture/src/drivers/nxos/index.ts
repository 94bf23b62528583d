// The Cisco NX-OS vendor module: Nexus switches as `cpe-capture trace` hops — flowtracker's show
// commands over NX-API (SSH CLI as fallback), read by ./parse/ (./hop-client.ts). They take no
// capture in capsync yet: the capture driver probes and refuses (./driver.ts).
import type { VendorModule } from "../vendor.js";
import { NXOS_CAPABILITIES, NXOS_INTERFACE_RULES, NxosDriver, nxosCompiler } from "./driver.js";
import { NxosHopClient } from "./hop-client.js";

export const nxos = {
  vendor: "nxos",
  types: [
    {
      name: "nxos",
      label: "Cisco Nexus switch (NX-OS)",
      interfaces: NXOS_INTERFACE_RULES,
      capabilities: NXOS_CAPABILITIES,
      compiler: nxosCompiler,
      prompt: { interfaces: { kind: "type", message: "Interfaces (NX-OS switches are trace hops and take no capture)" } },
      driver: (opts) => new NxosDriver(opts),
      hop: (opts) => new NxosHopClient(opts),
    },
  ],
  configKeys: {},
  alarms: {},
} as const satisfies VendorModule;
