// Webhooks on run events: Webex (messages API with a bot token, or an incoming-webhook URL),
// Slack-compatible incoming webhooks (Slack, Mattermost, Rocket.Chat take `{ text }`) and a
// generic JSON POST. Sending is in the background, bounded (timeout, retries) and never throws:
// a notification that cannot be delivered is logged, and the run goes on exactly as without it.
import { resolveSecret } from "../config/secrets.js";
import type { EventRow } from "../artifacts/events.js";
import type { NotifyConfig, NotifyEvent, WebhookConfig, WebhookKind } from "./config.js";

export interface DeviceSummary {
  device: string;
  name?: string;
  type?: string;
  status?: string;
  /** idle | starting | capturing | stopping | collecting | done | failed */
  state?: string;
  stopReason?: string;
  description?: string;
}

/** What every webhook receives (the generic JSON body is exactly this plus `text`). */
export interface NotifyMessage {
  event: NotifyEvent;
  runId: string;
  at: string;
  /** The device the event is about (alarm), or undefined for run-wide events. */
  device?: string;
  deviceName?: string;
  stopReason?: string;
  /** The alarm text (alarm). */
  alarm?: string;
  /** Run status at the end: done | partial | failed. */
  status?: string;
  devices?: DeviceSummary[];
  /** The loss/delay summary line of the run report. */
  loss?: string;
  /** The presigned link to the uploaded run (index.html). */
  storageLink?: string;
  storageError?: string;
  folder?: string;
}

export interface NotifyDelivery {
  kind: WebhookKind;
  event: NotifyEvent;
  ok: boolean;
  status?: number;
  attempts: number;
  error?: string;
}

interface Target {
  cfg: WebhookConfig;
  url: string;
  token: string | undefined;
}

export interface NotifierOptions {
  log?: (level: "info" | "warn" | "error", message: string) => void;
  env?: NodeJS.ProcessEnv;
  /** Every delivery's outcome (tests, the serve API). */
  onDelivery?: (d: NotifyDelivery) => void;
  fetch?: typeof fetch;
}

export class Notifier {
  private readonly pending = new Set<Promise<void>>();
  readonly secrets: string[];
  private constructor(
    private readonly cfg: NotifyConfig,
    private readonly targets: Target[],
    private readonly o: NotifierOptions,
  ) {
    this.secrets = targets.flatMap((t) => [t.token ?? "", t.cfg.url.kind === "url" ? "" : t.url]).filter(Boolean);
  }

  /** Resolve URLs and tokens; a webhook whose reference cannot be resolved is dropped with a warning. */
  static async create(cfg: NotifyConfig, o: NotifierOptions = {}): Promise<Notifier> {
    const targets: Target[] = [];
    const ro = o.env ? { env: o.env } : {};
    for (const [i, w] of cfg.webhooks.entries()) {
      try {
        const url = w.url.kind === "url" ? w.url.url : (await resolveSecret(w.url, `notify.webhooks[${i}].url`, ro)).value;
        const token = w.token ? (await resolveSecret(w.token, `notify.webhooks[${i}].token`, ro)).value : undefined;
        new URL(url);
        targets.push({ cfg: w, url, token });
      } catch (e) {
        o.log?.("warn", `notify: webhook ${i} (${w.kind}) disabled: ${(e as Error).message}`);
      }
    }
    return new Notifier(cfg, targets, o);
  }

  get size(): number {
    return this.targets.length;
  }

  /** Queue a message for every webhook that wants this event; returns at once. */
  send(msg: NotifyMessage): void {
    for (const t of this.targets) {
      if (!t.cfg.events.includes(msg.event)) continue;
      const p = this.deliver(t, msg).finally(() => this.pending.delete(p));
      this.pending.add(p);
    }
  }

  /** The run events that are notifications: the run's start and each device's stop alarm. */
  onEventRow(row: EventRow, ctx: { runId: string; devices: DeviceSummary[] }): void {
    if (row.source === "run" && row.event === "start") {
      this.send({ event: "started", runId: ctx.runId, at: row.timestamp, devices: ctx.devices });
    } else if (row.source === "trigger" && row.status === "stop") {
      const d = ctx.devices.find((x) => x.device === row.device);
      this.send({
        event: "alarm",
        runId: ctx.runId,
        at: row.timestamp,
        device: row.device,
        ...(d?.name && d.name !== row.device ? { deviceName: d.name } : {}),
        stopReason: "alarm",
        ...(row.detail ? { alarm: row.detail } : {}),
      });
    }
  }

  /** Wait for what is in flight, at most `ms`. */
  async flush(ms = 15_000): Promise<void> {
    let t: NodeJS.Timeout | undefined;
    await Promise.race([Promise.allSettled([...this.pending]), new Promise<void>((r) => (t = setTimeout(r, ms)))]);
    clearTimeout(t);
  }

  private async deliver(t: Target, msg: NotifyMessage): Promise<void> {
    const doFetch = this.o.fetch ?? fetch;
    const body = JSON.stringify(payload(t.cfg, msg));
    const headers: Record<string, string> = { "content-type": "application/json", "user-agent": "capsync-notify/0.1" };
    if (t.token) headers.authorization = `Bearer ${t.token}`;
    let last: NotifyDelivery = { kind: t.cfg.kind, event: msg.event, ok: false, attempts: 0 };
    for (let attempt = 1; attempt <= this.cfg.retries + 1; attempt++) {
      try {
        const res = await doFetch(t.url, { method: "POST", headers, body, signal: AbortSignal.timeout(this.cfg.timeoutMs) });
        await res.arrayBuffer().catch(() => undefined);
        last = { kind: t.cfg.kind, event: msg.event, ok: res.ok, status: res.status, attempts: attempt, ...(res.ok ? {} : { error: `HTTP ${res.status}` }) };
        // 4xx other than 408/429 will not change on a retry (bad token, unknown room).
        if (res.ok || (res.status < 500 && res.status !== 408 && res.status !== 429)) break;
      } catch (e) {
        last = { kind: t.cfg.kind, event: msg.event, ok: false, attempts: attempt, error: (e as Error).name === "TimeoutError" ? `timed out after ${this.cfg.timeoutMs} ms` : (e as Error).message };
      }
      if (attempt <= this.cfg.retries) await new Promise((r) => setTimeout(r, Math.min(4000, 300 * 2 ** (attempt - 1))));
    }
    const where = safeHost(t.url);
    if (last.ok) this.o.log?.("info", `notify: ${msg.event} sent to ${t.cfg.kind} ${where} (HTTP ${last.status})`);
    else this.o.log?.("warn", `notify: ${msg.event} to ${t.cfg.kind} ${where} not delivered after ${last.attempts} attempt(s): ${last.error}`);
    try {
      this.o.onDelivery?.(last);
    } catch {
      /* a listener's problem is not the run's */
    }
  }
}

/** scheme://host only: webhook paths are secrets. */
function safeHost(url: string): string {
  try {
    const u = new URL(url);
    return `${u.protocol}//${u.host}`;
  } catch {
    return "(bad url)";
  }
}

const TITLES: Record<NotifyEvent, string> = { started: "started", alarm: "alarm", collected: "collected", failed: "FAILED" };

/** The one text rendering; `link` formats a link in the receiver's markup. */
export function messageText(m: NotifyMessage, link: (url: string, label: string) => string = (u) => u, bold: (s: string) => string = (s) => s): string {
  const lines: string[] = [];
  const dev = (d: { device: string; name?: string | undefined }) => (d.name && d.name !== d.device ? `${d.name} (${d.device})` : d.device);
  switch (m.event) {
    case "started":
      lines.push(`${bold(`capsync run ${m.runId} started`)}: ${m.devices?.length ?? 0} device(s)${m.devices?.length ? `: ${m.devices.map((d) => `${dev(d)}${d.type ? ` ${d.type}` : ""}`).join(", ")}` : ""}`);
      break;
    case "alarm":
      lines.push(`${bold(`capsync run ${m.runId}: alarm for device ${dev({ device: m.device ?? "?", name: m.deviceName })}`)}; stopping its captures and collecting them`);
      if (m.alarm) lines.push(`alarm: ${m.alarm.slice(0, 300)}`);
      break;
    case "collected":
    case "failed":
      lines.push(`${bold(`capsync run ${m.runId} ${TITLES[m.event]}`)}${m.status ? ` (${m.status})` : ""}`);
      for (const d of m.devices ?? []) lines.push(`- ${dev(d)}: ${d.status ?? "?"}${d.stopReason ? `, stopped by ${d.stopReason}` : ""}${d.status !== "collected" && d.description ? ` (${d.description.slice(0, 200)})` : ""}`);
      break;
  }
  if (m.loss) lines.push(`loss: ${m.loss}`);
  if (m.storageLink) lines.push(`files: ${link(m.storageLink, "all captures and reports")}`);
  if (m.storageError) lines.push(`upload failed: ${m.storageError}`);
  return lines.join("\n");
}

export function payload(w: WebhookConfig, m: NotifyMessage): Record<string, unknown> {
  switch (w.kind) {
    case "webex": {
      const markdown = messageText(m, (u, l) => `[${l}](${u})`, (s) => `**${s}**`);
      return { ...(w.roomId ? { roomId: w.roomId } : {}), markdown, text: messageText(m) };
    }
    case "slack":
      // Slack mrkdwn: <url|label>, *bold*; `text` alone works with every Slack-compatible receiver.
      return { text: messageText(m, (u, l) => `<${u}|${l}>`, (s) => `*${s}*`) };
    case "json":
      return { ...m, text: messageText(m) };
  }
}
