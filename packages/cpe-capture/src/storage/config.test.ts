// Golden cases for the run config's storage: and notify: sections (exact error lines, exact
// normalised values, what `validate` shows).
import { describe, expect, test } from "vitest";
import { ConfigFileError, parseConfigText } from "../config/loader.js";
import { normalisedForDisplay } from "../config/display.js";

const DEVICE = `devices:
  - address: 192.0.2.10
    type: msbr
    interfaces: [eth-wan]
    username: Admin
    password: { env: MSBR1_PASSWORD }
`;

function errorLines(input: string): string[] {
  try {
    parseConfigText(input, { file: "run.yaml", baseDir: "/cfg" });
  } catch (e) {
    expect(e).toBeInstanceOf(ConfigFileError);
    return (e as Error).message.split("\n");
  }
  throw new Error("expected the config to be rejected");
}

const golden: { name: string; input: string; expected: string[] }[] = [
  {
    name: "storage: bucket, prefix, endpoint, sizes and durations",
    input: `storage:
  bucket: My_Bucket
  prefix: /abs/
  endpoint: ftp://minio:9000
  partSize: 1MB
  presignExpires: 30d
  concurrency: 0
  colour: blue
${DEVICE}`,
    expected: [
      "run.yaml:2 storage.bucket: expected an S3 bucket name (3-63 of a-z 0-9 . -), got 'My_Bucket'",
      "run.yaml:3 storage.prefix: expected a key prefix like captures/site-1/ (no leading '/', no '..'), got '/abs/'",
      "run.yaml:4 storage.endpoint: expected an http(s) URL like https://minio.example.net:9000 (credentials never in the URL), got 'ftp://minio:9000'",
      "run.yaml:5 storage.partSize: expected a size from 5MB to 5GB (S3's part limits), got '1MB'",
      "run.yaml:6 storage.presignExpires: presigned links live 1s..7d (the S3 limit), got '30d'",
      "run.yaml:7 storage.concurrency: expected an integer 1..64, got 0",
      "run.yaml:8 storage.colour: unknown key 'colour'",
    ],
  },
  {
    name: "storage: credentials only by reference, and not with a profile",
    input: `storage:
  bucket: captures
  profile: lab
  credentials:
    accessKeyId: AKIAEXAMPLE
    secretAccessKey: { env: 1BAD }
${DEVICE}`,
    expected: [
      "run.yaml:3 storage.profile: use either profile or credentials, not both",
      "run.yaml:5 storage.credentials.accessKeyId: expected { env: NAME } or { file: PATH } (never the secret itself), got a string",
      "run.yaml:6 storage.credentials.secretAccessKey.env: expected an environment variable name, got '1BAD'",
    ],
  },
  {
    name: "storage without a bucket",
    input: `storage: { region: eu-west-1 }
${DEVICE}`,
    expected: ["run.yaml:1 storage.bucket: required"],
  },
  {
    name: "notify: kinds, events, webex needs a token and room, URLs never echoed",
    input: `notify:
  webhooks:
    - kind: teams
      url: https://example.net/hook
    - kind: webex
    - kind: slack
      url: gopher://hooks.example/T000/B000/SECRETPART
      events: [started, exploded]
    - kind: json
  timeout: 10m
${DEVICE}`,
    expected: [
      "run.yaml:3 notify.webhooks[0].kind: expected webex|slack|json, got 'teams'",
      "run.yaml:5 notify.webhooks[1]: the Webex messages API needs token (the bot's, by reference) and roomId; or give an incoming-webhook url",
      "run.yaml:7 notify.webhooks[2].url: expected an http(s) URL or { env: NAME } / { file: PATH }, got a gopher: URL",
      "run.yaml:8 notify.webhooks[2].events[1]: expected some of started, alarm, collected, failed, got 'exploded'",
      "run.yaml:9 notify.webhooks[3].url: required",
      "run.yaml:10 notify.timeout: expected 100ms..2m, got '10m'",
    ],
  },
];

describe("golden: storage and notify sections → exact error text", () => {
  for (const c of golden) test(c.name, () => expect(errorLines(c.input)).toEqual(c.expected));
  test("a webhook URL's secret path never appears in a message", () => {
    expect(errorLines(golden[3]!.input).join("\n")).not.toContain("SECRETPART");
  });
});

describe("good storage and notify sections", () => {
  const input = `storage:
  bucket: capsync-captures
  prefix: sites/branch-12
  endpoint: https://minio.example.net:9000/
  credentials: { accessKeyId: { env: S3_ID }, secretAccessKey: { file: secrets/s3 } }
  partSize: 16MB
  deleteLocal: true
notify:
  webhooks:
    - kind: webex
      token: { env: WEBEX_BOT_TOKEN }
      roomId: Y2lzY29zcGFyazovL3VzL1JPT00vYWJj
      events: [alarm, failed]
    - kind: slack
      url: https://hooks.slack.com/services/T000/B000/XXXX
    - url: { env: HOOK_URL }
      token: { file: /etc/capsync/hook.token }
${DEVICE}`;
  const { config } = parseConfigText(input, { file: "/etc/capsync/run.yaml", baseDir: "/etc/capsync" });

  test("normalised: defaults, prefix with '/', path style with an endpoint, file references absolute", () => {
    expect(config.storage).toEqual({
      bucket: "capsync-captures",
      prefix: "sites/branch-12/",
      region: undefined,
      endpoint: "https://minio.example.net:9000",
      forcePathStyle: true,
      profile: undefined,
      credentials: { accessKeyId: { kind: "env", env: "S3_ID" }, secretAccessKey: { kind: "file", file: "/etc/capsync/secrets/s3" } },
      partSizeBytes: 16 * 1024 * 1024,
      concurrency: 4,
      retries: 5,
      presignExpiresMs: 7 * 86_400_000,
      deleteLocal: true,
      required: true,
    });
    expect(config.notify).toEqual({
      timeoutMs: 5000,
      retries: 2,
      webhooks: [
        { kind: "webex", url: { kind: "url", url: "https://webexapis.com/v1/messages" }, token: { kind: "env", env: "WEBEX_BOT_TOKEN" }, roomId: "Y2lzY29zcGFyazovL3VzL1JPT00vYWJj", events: ["alarm", "failed"] },
        { kind: "slack", url: { kind: "url", url: "https://hooks.slack.com/services/T000/B000/XXXX" }, token: undefined, roomId: undefined, events: ["started", "alarm", "collected", "failed"] },
        { kind: "json", url: { kind: "env", env: "HOOK_URL" }, token: { kind: "file", file: "/etc/capsync/hook.token" }, roomId: undefined, events: ["started", "alarm", "collected", "failed"] },
      ],
    });
  });

  test("validate shows references as written and webhook URLs without their secret path", () => {
    const shown = normalisedForDisplay(config);
    expect(shown.storage).toMatchObject({ bucket: "capsync-captures", prefix: "sites/branch-12/", partSize: "16MB", presignExpires: "7d", credentials: { accessKeyId: { env: "S3_ID" }, secretAccessKey: { file: "/etc/capsync/secrets/s3" } } });
    const hooks = (shown.notify as { webhooks: { url: unknown }[] }).webhooks.map((w) => w.url);
    expect(hooks).toEqual(["https://webexapis.com/v1/messages", "https://hooks.slack.com/***", { env: "HOOK_URL" }]);
    expect(JSON.stringify(shown)).not.toContain("XXXX");
  });

  test("configs without the sections are unchanged (no keys added)", () => {
    const { config: plain } = parseConfigText(DEVICE, { file: "/x/run.yaml", baseDir: "/x" });
    expect("storage" in plain).toBe(false);
    expect("notify" in plain).toBe(false);
    expect("storage" in normalisedForDisplay(plain)).toBe(false);
  });
});
