// Cisco NX-OS against the NX-OS emulator: a trace hop that takes no capture. The suite probes it
// over NX-API (HTTP cases run: 401, 500, TLS, timeout), checks the capture refusal, and probes it
// again over the SSH CLI with NX-API switched off.
import { NXOS_MESSAGES, startNxosDevice, type NxosDevice } from "@capsync/emulators";
import { PASS, USER, type DriverHarness } from "./types.js";

export const nxosHarnesses = {
  nxos: [
    {
      name: "nxos (NX-API, SSH fallback)",
      type: "nxos",
      control: "http",
      captures: false,
      fallback: "ssh",
      tasks: { start: [], stop: [] },
      spec: { interfaces: ["Ethernet1/1"] },
      facts: { vendor: "Cisco", model: "Nexus9000 C93180YC-EX", version: "10.3(4a)", serial: "FDO2CONTR35" },
      descriptions: { auth: NXOS_MESSAGES.auth, busy: NXOS_MESSAGES.serverError, serverError: NXOS_MESSAGES.serverError },
      allowedCommand: /^(show version|terminal length 0)$/,
      async startTarget() {
        const dev: NxosDevice = await startNxosDevice({ address: "127.0.0.35", username: USER, password: PASS, version: "10.3(4a)", serial: "FDO2CONTR35" });
        return {
          address: dev.address,
          restPort: dev.restPort,
          sshPort: dev.sshPort,
          certificate: dev.certificate,
          show: async () => "inactive",
          commands: () => dev.commands(),
          servedFile: async () => undefined,
          apiOff: () => dev.setNxapi("404"),
          inject(f) {
            if (f.kind === "file-refused" || f.kind === "busy") throw new Error(`the NX-OS emulator has no ${f.kind} fault`);
            dev.setFault({ kind: f.kind, on: f.on === "capture" ? "show" : f.on, ...(f.times !== undefined ? { times: f.times } : {}) });
          },
          fileRefusals: () => 0,
          close: () => dev.close(),
        };
      },
    },
  ],
} satisfies Record<string, DriverHarness[]>;
