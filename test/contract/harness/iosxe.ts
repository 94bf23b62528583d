// Cisco IOS-XE against the IOS-XE emulator, once per transport: RESTCONF (HTTP cases run, files by
// SFTP) and the SSH CLI (files by SCP).
import { IOSXE_MESSAGES, startIosXeDevice, type IosXeDevice } from "@capsync/emulators";
import { PASS, USER, type DriverHarness } from "./types.js";

/** IOS-XE EPC over RESTCONF (files by SFTP) or over the SSH CLI (files by SCP). */
function iosxeHarness(transport: "restconf" | "ssh-cli", address: string, serial: string): DriverHarness {
  const ssh = transport === "ssh-cli";
  return {
    name: `iosxe (${transport})`,
    type: "iosxe",
    options: { transport, fileTransfer: ssh ? "scp" : "sftp" },
    control: ssh ? "ssh" : "http",
    tasks: ssh ? { start: ["start-capture"], stop: ["stop-capture"] } : { start: ["define-capture", "start-capture"], stop: ["stop-capture", "export-capture"] },
    spec: { interfaces: ["GigabitEthernet1"], filter: { protocol: "udp", dport: 5060 }, limits: { bufferMb: 10 } },
    facts: { vendor: "Cisco", model: "C8000V", version: ssh ? "17.09.04a" : "17.9", serial },
    descriptions: { auth: IOSXE_MESSAGES.auth, busy: IOSXE_MESSAGES.busy, serverError: IOSXE_MESSAGES.serverError },
    allowedCommand:
      /^(terminal length 0|show version|show monitor capture CS[A-Z0-9]+|monitor capture CS[A-Z0-9]+ (interface|match|buffer|limit|start|stop|export)( [A-Za-z0-9./:_-]+)*|no monitor capture CS[A-Z0-9]+|delete \/force bootflash:CS[A-Z0-9]+\.pcap)$/,
    async startTarget() {
      const dev: IosXeDevice = await startIosXeDevice({ address, username: USER, password: PASS, serial, packetsPerSecond: 400 });
      return {
        address: dev.address,
        restPort: dev.restPort,
        sshPort: dev.sshPort,
        certificate: dev.certificate,
        show: async () => (dev.state().capturePoints.some((c) => c.state === "active") ? "active" : "inactive"),
        commands: () => dev.state().commands,
        servedFile: async () => dev.lastExport()?.data,
        inject(f) {
          const times = f.times !== undefined ? { times: f.times } : {};
          if (f.kind === "file-refused") return dev.setFault({ file: { kind: "refuse", ...times } });
          if (ssh) {
            if (f.kind !== "timeout") throw new Error(`the SSH CLI has no ${f.kind} fault`);
            return dev.setFault({ cli: { kind: "timeout", on: f.on, ...times } });
          }
          dev.setFault({ rest: { kind: f.kind, on: f.on === "capture" ? "rpc" : f.on, ...times } });
        },
        fileRefusals: () => dev.state().fileRefusals,
        close: () => dev.close(),
      };
    },
  };
}

export const iosxeHarnesses = {
  iosxe: [iosxeHarness("restconf", "127.0.0.33", "9CONTRACT33"), iosxeHarness("ssh-cli", "127.0.0.34", "9CONTRACT34")],
};
