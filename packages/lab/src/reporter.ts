// The demo's running commentary: "[+ 6.0 s] ..." lines for people, or JSON lines with --json
// ({"demo": "<step>", "t": <seconds since start>, "at": <ISO time>, ...details}).
import type { Writable } from "node:stream";

export class DemoReporter {
  constructor(
    private readonly out: Writable,
    readonly json: boolean,
    readonly t0: number,
  ) {}

  step(step: string, text: string, data: Record<string, unknown> = {}): void {
    const now = Date.now();
    const t = (now - this.t0) / 1000;
    if (this.json) this.out.write(JSON.stringify({ demo: step, t: Number(t.toFixed(3)), at: new Date(now).toISOString(), ...data }) + "\n");
    else this.out.write(`[+${t.toFixed(1).padStart(5)} s] ${text}\n`);
  }
}
