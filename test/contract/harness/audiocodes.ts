// AudioCodes MSBR and Mediant gateway/SBC against the AudioCodes emulator: REST control (so the HTTP
// cases run), files over SFTP.
import { request } from "node:https";
import { DESCRIPTIONS, startAudioCodesDevice, type AudioCodesDevice } from "@capsync/emulators";
import type { CaptureSpec } from "../../../packages/cpe-capture/src/drivers/driver.js";
import { PASS, USER, type DriverHarness } from "./types.js";

function audiocodesHarness(type: "msbr" | "gwsbc", address: string, spec: CaptureSpec, facts: DriverHarness["facts"]): DriverHarness {
  const prefix = type === "msbr" ? "debug capture data physical" : "debug capture voip physical";
  return {
    name: type,
    type,
    control: "http",
    tasks: { start: ["start-capture"], stop: ["stop-capture"] },
    spec,
    facts,
    descriptions: { auth: DESCRIPTIONS.auth, busy: DESCRIPTIONS.busy, serverError: DESCRIPTIONS["server-error"] },
    allowedCommand: new RegExp(`^${prefix} [a-z0-9-]+$`),
    async startTarget() {
      const dev: AudioCodesDevice = await startAudioCodesDevice({ address, type, username: USER, password: PASS, capture: { kind: "synthetic", packetsPerSecond: 400 } });
      return {
        address: dev.address,
        restPort: dev.restPort,
        sshPort: dev.sshPort,
        certificate: dev.certificate,
        show: () => cliShow(dev, `${prefix} show`),
        commands: () => dev.state().scripts.flatMap((s) => s.lines),
        servedFile: () => dev.capturedFile(),
        inject(f) {
          if (f.kind === "file-refused") dev.setFault({ sftp: { kind: "refuse", ...(f.times !== undefined ? { times: f.times } : {}) } });
          else dev.setFault({ rest: { kind: f.kind, on: f.on === "probe" ? "status" : f.on === "capture" ? "cli" : "any", ...(f.times !== undefined ? { times: f.times } : {}) } });
        },
        fileRefusals: () => dev.state().sftpRefusals,
        close: () => dev.close(),
      };
    },
  };
}

/** A `show` sent straight to the emulator (multipart `file` = cli.txt), verifying its certificate. */
async function cliShow(dev: AudioCodesDevice, line: string): Promise<"active" | "inactive"> {
  const fd = new FormData();
  fd.append("file", new Blob([`${line}\n`]), "cli.txt");
  const r = new Response(fd);
  const body = Buffer.from(await r.arrayBuffer());
  const text = await new Promise<string>((resolve, reject) => {
    const req = request(
      {
        host: dev.address,
        port: dev.restPort,
        method: "PUT",
        path: "/api/v1/files/cliScript/incremental",
        ca: dev.certificate,
        agent: false,
        auth: `${USER}:${PASS}`,
        headers: { "content-type": r.headers.get("content-type")! },
      },
      (res) => {
        let t = "";
        res.on("data", (c: Buffer) => (t += c.toString()));
        res.on("end", () => resolve(t));
      },
    );
    req.on("error", reject);
    req.end(body);
  });
  const output = String((JSON.parse(text) as { output?: string }).output);
  if (output.includes("physical is not active")) return "inactive";
  if (output.includes("physical is active")) return "active";
  throw new Error(`no show verdict in ${output}`);
}

export const audiocodesHarnesses = {
  msbr: [
    audiocodesHarness("msbr", "127.0.0.31", { interfaces: ["eth-wan", "cellular-wan"] }, {
      vendor: "AudioCodes",
      model: "Mediant 500L MSBR",
      version: "7.24A.356.353",
      serial: "EMU7F00001F",
    }),
  ],
  gwsbc: [audiocodesHarness("gwsbc", "127.0.0.32", {}, { vendor: "AudioCodes", model: "Mediant 800 Gateway & E-SBC", version: "7.40A.500.786", serial: "EMU7F000020" })],
};
