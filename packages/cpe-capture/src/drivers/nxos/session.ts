// How capsync talks to one NX-OS switch: show commands over NX-API (./nxapi.ts), and over the SSH
// CLI (../common/ssh-cli.ts) when NX-API is off — the connection is refused or /ins answers 404 —
// as flowtracker falls back from NX-API to SSH. One call is one attempt for DeviceCalls: a value
// (each command's text) or a typed Failure; an untrusted certificate or a 401 never falls back.
import type { HttpsTrust } from "@capsync/common";
import { DeviceAuthError, DeviceProtocolError, DeviceUnreachableError } from "@capsync/protocol";
import { normaliseTls, type RestAnswer } from "../common/http.js";
import type { DriverTls } from "../driver.js";
import { RETRYABLE_HTTP, type Attempt, type Failure } from "../common/retry.js";
import { DeviceSsh, cliErrors, type DeviceLogin } from "../common/ssh-cli.js";
import { NxApiClient, describeAnswer, parseInsApi } from "./nxapi.js";

export interface NxosSessionOptions extends DeviceLogin {
  /** "<type> <address>", the start of every message. */
  label: string;
}

export type NxosVia = "nxapi" | "ssh";

/** A session from driver or hop options: ports 443/22 and trust "verify" unless set, labelled "nxos <address>". */
export function nxosSession(o: { address: string; restPort?: number | undefined; sshPort?: number | undefined; username: string; password: string; tls?: DriverTls | HttpsTrust | undefined; sshHostKeySha256?: string | undefined }): NxosSession {
  return new NxosSession({ ...o, restPort: o.restPort ?? 443, sshPort: o.sshPort ?? 22, tls: normaliseTls(o.tls), label: `nxos ${o.address}` });
}

/** NX-API is off on this switch: nothing listens on its port, or nginx has no /ins. */
function apiIsOff(err: unknown): boolean {
  const code = (err as { cause?: { code?: unknown } } | undefined)?.cause?.code;
  return err instanceof DeviceUnreachableError && code === "ECONNREFUSED";
}

export class NxosSession {
  /** How the last answer came; undefined before the first. */
  via: NxosVia | undefined;
  private readonly api: NxApiClient;
  private readonly ssh: DeviceSsh;

  constructor(private readonly o: NxosSessionOptions) {
    this.api = new NxApiClient(o);
    this.ssh = new DeviceSsh({ address: o.address, sshPort: o.sshPort, username: o.username, password: o.password, sshHostKeySha256: o.sshHostKeySha256 });
  }

  scrub(text: string): string {
    return this.ssh.scrub(this.api.scrub(text));
  }

  /** One attempt at `commands`; resolves to their outputs in order, or a Failure. */
  async run(commands: readonly string[], ms: number): Promise<Attempt<string[]>> {
    if (this.via !== "ssh") {
      let ans: RestAnswer | undefined;
      try {
        ans = await this.api.show(commands, ms);
      } catch (err) {
        if (!apiIsOff(err)) throw err;
      }
      if (ans && ans.httpStatus !== 404) {
        this.via = "nxapi";
        return this.readApi(commands, ans);
      }
      this.via = "ssh";
    }
    return this.runSsh(commands, ms);
  }

  private readApi(commands: readonly string[], ans: RestAnswer): Attempt<string[]> {
    const s = ans.httpStatus;
    const what = `${this.o.label}: NX-API`;
    const fail = (f: Failure, output: string) => ({ ...f, httpStatus: s, output: this.scrub(output) });
    if (s === 401 || s === 403) {
      const d = this.scrub(describeAnswer(ans.text));
      return fail({ error: new DeviceAuthError(`${what}: HTTP ${s} ${d} (user ${this.o.username})`), retry: false }, d);
    }
    const ins = parseInsApi(ans.text);
    if (ins.ok) {
      const bad = ins.outputs.findIndex((x) => x.code !== "200");
      if (bad >= 0) {
        const x = ins.outputs[bad]!;
        const why = [x.msg, x.clierror?.trim()].filter(Boolean).join(": ");
        const code = Number(x.code);
        const busy = RETRYABLE_HTTP.has(code);
        const error = new DeviceProtocolError(this.scrub(`${what}: '${commands[bad] ?? x.input ?? "?"}': ${x.code} ${why}`), { httpStatus: s, code: code >= 500 && busy ? "device-error" : "device-rejected" });
        return fail({ error, retry: busy }, why);
      }
      if (ins.outputs.length !== commands.length) return fail(this.unreadable(s, `${ins.outputs.length} outputs for ${commands.length} commands`), ans.text.slice(0, 500));
      return { value: ins.outputs.map((x) => x.body), httpStatus: s, output: `NX-API ${commands.join(" ;")}` };
    }
    if (s >= 400) {
      const d = this.scrub(describeAnswer(ans.text));
      const error = new DeviceProtocolError(`${what}: HTTP ${s} ${d}`, { httpStatus: s, code: s >= 500 ? "device-error" : "device-rejected" });
      return fail({ error, retry: RETRYABLE_HTTP.has(s) }, d);
    }
    return fail(this.unreadable(s, ins.field ? `${ins.code} (${ins.field})` : ins.code), ans.text.slice(0, 500));
  }

  private unreadable(httpStatus: number, why: string): Failure {
    return { error: new DeviceProtocolError(`${this.o.label}: NX-API: unreadable answer: ${why}`, { httpStatus, code: "device-bad-answer" }), retry: true };
  }

  private async runSsh(commands: readonly string[], ms: number): Promise<Attempt<string[]>> {
    const ex = await this.ssh.runCli(commands, ms);
    const output = `SSH ${commands.join(" ;")}`;
    for (const e of ex) {
      const errors = cliErrors(e.output);
      if (errors.length > 0) {
        return { output: errors.join(" | "), error: new DeviceProtocolError(this.scrub(`${this.o.label}: CLI: '${e.command}': ${errors.join(" | ")}`), { code: "device-rejected" }), retry: false };
      }
    }
    return { value: ex.map((e) => e.output), output };
  }

  async close(): Promise<void> {
    await Promise.all([this.api.close(), this.ssh.close()]);
  }
}
