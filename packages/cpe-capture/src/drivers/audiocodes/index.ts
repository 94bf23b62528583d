// The AudioCodes vendor module: MSBR routers and Mediant gateways/SBCs, captured with the physical
// debug capture over the REST CLI-script call and fetched over SFTP (./driver.ts).
import type { DriverOptions } from "../driver.js";
import type { InterfacePrompt, VendorModule } from "../vendor.js";
import { AUDIOCODES_INTERFACE_RULES, audioCodesCapabilities, audioCodesCompiler, type AudioCodesType } from "./capture.js";
import { AudioCodesDriver } from "./driver.js";

/** The two types differ only in their interfaces, the debug-capture prefix and what the prompts say. */
function audioCodesType<N extends AudioCodesType>(name: N, label: string, interfacePrompt: InterfacePrompt) {
  return {
    name,
    label,
    interfaces: AUDIOCODES_INTERFACE_RULES[name],
    capabilities: audioCodesCapabilities(name),
    compiler: audioCodesCompiler(name),
    prompt: { interfaces: interfacePrompt },
    driver: (opts: DriverOptions) => new AudioCodesDriver({ ...opts, type: name }),
  } as const;
}

export const audiocodes = {
  vendor: "audiocodes",
  types: [
    audioCodesType("msbr", "AudioCodes MSBR router", { kind: "choose", message: "MSBR interfaces to capture (space selects; several allowed)" }),
    audioCodesType("gwsbc", "AudioCodes Mediant gateway / SBC", { kind: "fixed", note: "  interfaces: eth-lan (the only capture point of a gateway/SBC)" }),
  ],
  // One transport each: REST for commands, SFTP for the file.
  configKeys: {},
  // Their alarms reach capsync through OVOC, whose connection-lost matcher is vendor-neutral (triggers/ovoc-alarm.ts).
  alarms: {},
} as const satisfies VendorModule;
