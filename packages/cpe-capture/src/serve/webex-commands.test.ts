import { createHmac } from "node:crypto";
import { describe, expect, test } from "vitest";
import type { PathIssue } from "../config/issues.js";
import { validSparkSignature } from "./webex.js";
import { commandText, HELP_TEXT, parseWebexCommand, REPLY, type WebexCommand } from "./webex-commands.js";
import { parseWebexConfig } from "./webex-config.js";

const cap = (device: string, iface: string, proto: string, src: string, dst: string, duration: string): WebexCommand => ({ kind: "capture", device, iface, proto, src, dst, duration });

// Golden table: what a user types → what pcap-sparkbot understood.
const GOLDEN: [string, WebexCommand][] = [
  ["capture device 192.168.0.1 interface Gi1 proto tcp src any dst any duration 10", cap("192.168.0.1", "Gi1", "tcp", "any", "any", "10")],
  ["capture device rtr1.example.com interface GigabitEthernet1 proto udp src 10.0.0.1 dst 10.0.0.2 duration 3", cap("rtr1.example.com", "GigabitEthernet1", "udp", "10.0.0.1", "10.0.0.2", "3")],
  ["Capture Device 10.1.1.1 Interface Gi0/0/1 PROTO ip SRC any DST 2001:db8::1 Duration 5", cap("10.1.1.1", "Gi0/0/1", "ip", "any", "2001:db8::1", "5")],
  ["  capture   device 10.1.1.1\ninterface g1 proto ip src any dst any duration 5  ", cap("10.1.1.1", "g1", "ip", "any", "any", "5")],
  // Values are checked later, like a /pcap_json body: the grammar only takes them.
  ["capture device 10.1.1.1 interface g1 proto sctp src any dst any duration ten", cap("10.1.1.1", "g1", "sctp", "any", "any", "ten")],
  ["help", { kind: "help" }],
  ["HELP me", { kind: "help" }],
  ["can you help?", { kind: "help" }],
  // A capture missing a keyword is not a capture; with "help" nowhere in it, the apology.
  ["capture device 10.1.1.1 interface g1 proto ip src any dst any", { kind: "unknown" }],
  ["capture device 10.1.1.1 interface g1 proto ip src any dst any duration 5 extra", { kind: "unknown" }],
  ["start a capture please", { kind: "unknown" }],
  ["", { kind: "unknown" }],
];

describe("pcap-sparkbot command grammar", () => {
  test.each(GOLDEN)("%j", (text, want) => {
    expect(parseWebexCommand(text)).toEqual(want);
  });

  test("the bot's reply texts, word for word", () => {
    expect(REPLY.started("123456", "10.1.1.1")).toBe("Started capture job 123456 on device 10.1.1.1");
    expect(REPLY.completed("123456", "http://x/y.pcap")).toBe("Job 123456 completed successfully.  Capture is at http://x/y.pcap");
    expect(REPLY.failed("123456")).toBe("Job 123456 failed.");
    expect(REPLY.connecting("rtr1")).toBe("Connecting to device rtr1");
    expect(REPLY.unknown).toBe("I'm sorry, I did not understand your request.  Try asking me for help using the **help** command.");
    expect(HELP_TEXT.startsWith("Hello!  I am a bot that can assist with launching packet captures on Cisco IOS-XE devices.  ")).toBe(true);
    expect(HELP_TEXT).toContain("**capture device** 192.168.0.1 **interface** Gi1 **proto** tcp **src** any **dst** any **duration** 10\n\n");
  });

  test("a group-room mention of the bot is cut from the command", () => {
    const bot = { id: "Y2lzY29zcGFyazovL3VzL1BFT1BMRS9ib3Q", displayName: "capbot" };
    expect(commandText({ text: "capbot help", html: `<p><spark-mention data-object-type="person" data-object-id="${bot.id}">capbot</spark-mention> help</p>` }, bot)).toBe("help");
    expect(commandText({ text: "capbot capture device 10.1.1.1 interface g1 proto ip src any dst any duration 5" }, bot)).toBe("capture device 10.1.1.1 interface g1 proto ip src any dst any duration 5");
    expect(commandText({ text: "help" }, bot)).toBe("help");
    expect(commandText({ text: "x &amp; y", html: `<spark-mention data-object-id="${bot.id}">capbot</spark-mention> a &amp; b` }, bot)).toBe("a & b");
  });
});

describe("webhook signature and the webex: config key", () => {
  test("X-Spark-Signature: hex HMAC-SHA1 of the raw body; anything else refused", () => {
    const raw = Buffer.from('{"resource":"messages","event":"created"}');
    expect(validSparkSignature(raw, "220f639ec8b97ef3a15353fde15b66c6f8d4faaa", "somesupersecretphrase")).toBe(true);
    expect(validSparkSignature(raw, "220F639EC8B97EF3A15353FDE15B66C6F8D4FAAA", "somesupersecretphrase")).toBe(true);
    expect(validSparkSignature(raw, "220f639ec8b97ef3a15353fde15b66c6f8d4faab", "somesupersecretphrase")).toBe(false);
    expect(validSparkSignature(raw, createHmac("sha256", "somesupersecretphrase").update(raw).digest("hex"), "somesupersecretphrase")).toBe(false);
    expect(validSparkSignature(raw, undefined, "somesupersecretphrase")).toBe(false);
    expect(validSparkSignature(raw, ["220f639ec8b97ef3a15353fde15b66c6f8d4faaa"], "somesupersecretphrase")).toBe(false);
    expect(validSparkSignature(Buffer.from(raw.toString() + " "), "220f639ec8b97ef3a15353fde15b66c6f8d4faaa", "somesupersecretphrase")).toBe(false);
  });

  test("config: defaults, and each bad field named", () => {
    const abs = (p: string) => `/etc/capsync/${p}`;
    const issues: PathIssue[] = [];
    expect(parseWebexConfig({ token: { env: "WEBEX_BOT_TOKEN" }, secret: { file: "webhook.secret" } }, abs, issues)).toEqual({
      token: { kind: "env", env: "WEBEX_BOT_TOKEN" },
      secret: { kind: "file", file: "/etc/capsync/webhook.secret" },
      apiUrl: "https://webexapis.com/v1",
      path: "/webex/webhook",
      allowedRooms: [],
      allowedPersons: [],
      bucket: undefined,
    });
    expect(issues).toEqual([]);
    const bad: PathIssue[] = [];
    expect(parseWebexConfig({ token: "NjM0Y2-plain-token", apiUrl: "http://webexapis.com/v1", path: "/api/x", allowedPersons: ["A@Example.com", 3], colour: 1 }, abs, bad)).toBeUndefined();
    expect(bad.map((i) => `${i.path.join(".")}: ${i.message}`)).toEqual([
      "webex.colour: unknown key; expected token, secret, apiUrl, path, allowedRooms, allowedPersons, bucket",
      "webex.token: expected { env: NAME } or { file: PATH } (never the secret itself), got a string",
      "webex.secret: required: { env: NAME } or { file: PATH } (the webhook secret)",
      "webex.apiUrl: expected an https:// URL (http:// only on loopback) like https://webexapis.com/v1, got 'http://webexapis.com/v1'",
      "webex.path: expected a URL path like /webex/webhook outside /api, /pcap_json, /status_json and /captures, got '/api/x'",
      "webex.allowedPersons.1: expected a person id or e-mail address, got 3",
    ]);
    expect(JSON.stringify(bad)).not.toContain("NjM0Y2-plain-token");
    const ok: PathIssue[] = [];
    expect(parseWebexConfig({ token: { env: "T" }, secret: { env: "S" }, apiUrl: "http://127.0.0.1:9/v1/", allowedPersons: ["A@Example.com"] }, abs, ok)).toMatchObject({ apiUrl: "http://127.0.0.1:9/v1", allowedPersons: ["a@example.com"] });
  });
});
