// The OpenAPI 3.1 description of `cpe-capture serve`, served at /api/v1/openapi.json.
import { VERSION } from "../version.js";

const JOB_STATUS = { type: "string", enum: ["WAITING", "STARTED", "STOPPED", "UPLOADING", "UPLOADED", "ERROR"] };
const ERROR = { type: "object", required: ["error"], properties: { error: { type: "string" }, issues: { type: "array", items: { type: "string" } } } };
const err = (description: string) => ({ description, content: { "application/json": { schema: { $ref: "#/components/schemas/Error" } } } });
const COMMON = { "401": err("missing or wrong token"), "400": err("invalid request (every problem listed in issues)") };

export const OPENAPI = {
  openapi: "3.1.0",
  info: {
    title: "capsync cpe-capture serve",
    version: VERSION,
    description:
      "Start synchronised captures without a terminal. Every request needs `Authorization: Bearer <token>` (or `X-Auth-Token: <token>`). Jobs run concurrently and survive restarts of the server.",
  },
  security: [{ bearer: [] }],
  components: {
    securitySchemes: { bearer: { type: "http", scheme: "bearer" }, header: { type: "apiKey", in: "header", name: "X-Auth-Token" } },
    schemas: {
      Error: ERROR,
      JobStatus: JOB_STATUS,
      PcapJsonRequest: {
        type: "object",
        required: ["iface", "proto", "src", "dst", "duration"],
        additionalProperties: false,
        properties: {
          iface: { type: "string", example: "GigabitEthernet1" },
          proto: { type: "string", enum: ["ip", "tcp", "udp"] },
          src: { type: "string", description: '"any" or one host address', example: "any" },
          dst: { type: "string", description: '"any" or one host address', example: "192.0.2.10" },
          duration: { type: "integer", minimum: 1, maximum: 86400, description: "seconds" },
          bucket: { type: "string", description: "S3 bucket (the serve config's storage: gives endpoint, region, credentials)" },
          device: { type: "string", description: "a router of the serve config's run.devices (name or address); default pcapJson.devices" },
        },
      },
      StatusJsonResponse: {
        type: "object",
        properties: {
          job_id: { type: "integer", description: "a number here, as xepacketcap answers (its /pcap_json gives it as a string)" },
          iface: { type: "string", description: "as the request gave it, e.g. g1" },
          proto: { type: "string" },
          src: { type: "string" },
          dst: { type: "string" },
          duration: { type: "integer" },
          url: { type: ["string", "null"], description: "once UPLOADED: the capture file itself — a presigned link to the object <epoch ms>.pcap in the job's bucket, or /captures/<job>/<file> on this server when it has no storage" },
          status: JOB_STATUS,
          error: { type: "string", description: "only with status ERROR" },
        },
      },
      Run: {
        type: "object",
        required: ["id", "kind", "status", "createdAt"],
        properties: {
          id: { type: "string" },
          kind: { type: "string", enum: ["run", "pcap_json"] },
          status: JOB_STATUS,
          createdAt: { type: "string", format: "date-time" },
          updatedAt: { type: "string", format: "date-time" },
          startedAt: { type: "string", format: "date-time" },
          endedAt: { type: "string", format: "date-time" },
          runId: { type: "string" },
          url: { type: "string" },
          error: { type: "string" },
          exitCode: { type: "integer" },
          runStatus: { type: "string", enum: ["running", "done", "partial", "failed"] },
          report: { type: "string", description: "the loss/delay summary line" },
          devices: { type: "array", items: { type: "object" } },
          resumed: { type: "integer", description: "server restarts the job survived" },
        },
      },
      Artifact: { type: "object", properties: { name: { type: "string" }, bytes: { type: "integer" } } },
    },
  },
  paths: {
    "/pcap_json": {
      post: {
        summary: "Start a capture on an IOS-XE router (xepacketcap-compatible)",
        requestBody: { required: true, content: { "application/json": { schema: { $ref: "#/components/schemas/PcapJsonRequest" } } } },
        responses: { "200": { description: "queued", content: { "application/json": { schema: { type: "object", properties: { job_id: { type: "string" } } } } } }, ...COMMON },
      },
    },
    "/captures/{job}/{file}": {
      get: {
        summary: "A /pcap_json job's capture file, for jobs without storage (the url /status_json gives)",
        parameters: [
          { name: "job", in: "path", required: true, schema: { type: "string" } },
          { name: "file", in: "path", required: true, schema: { type: "string", example: "1733450000000.pcap" } },
        ],
        responses: { "200": { description: "the pcap", content: { "application/vnd.tcpdump.pcap": {} } }, "404": err("no such job or file"), ...COMMON },
      },
    },
    "/status_json": {
      post: {
        summary: "A job's status (xepacketcap-compatible)",
        requestBody: { required: true, content: { "application/json": { schema: { type: "object", required: ["job_id"], properties: { job_id: { type: ["string", "integer"] } } } } } },
        responses: { "200": { description: "the job", content: { "application/json": { schema: { $ref: "#/components/schemas/StatusJsonResponse" } } } }, "404": err("no such job"), ...COMMON },
      },
    },
    "/api/v1/runs": {
      get: { summary: "List runs", responses: { "200": { description: "every job", content: { "application/json": { schema: { type: "object", properties: { runs: { type: "array", items: { $ref: "#/components/schemas/Run" } } } } } } }, "401": COMMON["401"] } },
      post: {
        summary: "Start a run from a run config document (the shape of run.yaml)",
        description: "JSON, or YAML with Content-Type application/yaml. `output` is the server's; passwords only as { env } / { file } references the server can resolve. storage/notify/syslog default to the serve config's run: section.",
        requestBody: { required: true, content: { "application/json": { schema: { type: "object" } }, "application/yaml": { schema: { type: "string" } } } },
        responses: { "201": { description: "queued", content: { "application/json": { schema: { $ref: "#/components/schemas/Run" } } } }, ...COMMON },
      },
    },
    "/api/v1/runs/{id}": {
      parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
      get: { summary: "One run", responses: { "200": { description: "the run", content: { "application/json": { schema: { $ref: "#/components/schemas/Run" } } } }, "404": err("no such run"), "401": COMMON["401"] } },
    },
    "/api/v1/runs/{id}/stop": {
      parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
      post: { summary: "Stop every capture of the run now and collect (and upload) it", responses: { "202": { description: "stopping", content: { "application/json": { schema: { $ref: "#/components/schemas/Run" } } } }, "404": err("no such run"), "401": COMMON["401"] } },
    },
    "/api/v1/runs/{id}/filter": {
      parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
      post: {
        summary: "Change the filter of the running capture: device and agents restart into a new file segment, the earlier one is kept (body: filter, direction, snaplen as in a config's capture section; devices: names or addresses, default every capturing device)",
        requestBody: { required: true, content: { "application/json": { schema: { type: "object", properties: { filter: { type: "object" }, direction: { type: "string" }, snaplen: { type: "integer" }, devices: { type: "array", items: { type: "string" } } } } } } },
        responses: { "200": { description: "every device captures its new segment", content: { "application/json": { schema: { type: "object" } } } }, "409": err("not capturing"), "502": err("a device did not restart (reported failed, earlier segment kept)"), "404": err("no such run"), ...COMMON },
      },
    },
    "/api/v1/runs/{id}/artifacts": {
      parameters: [{ name: "id", in: "path", required: true, schema: { type: "string" } }],
      get: { summary: "Files of the run folder", responses: { "200": { description: "files", content: { "application/json": { schema: { type: "object", properties: { artifacts: { type: "array", items: { $ref: "#/components/schemas/Artifact" } } } } } } }, "404": err("no such run or no folder yet"), "401": COMMON["401"] } },
    },
    "/api/v1/runs/{id}/artifacts/{name}": {
      parameters: [
        { name: "id", in: "path", required: true, schema: { type: "string" } },
        { name: "name", in: "path", required: true, schema: { type: "string" } },
      ],
      get: { summary: "Download one file", responses: { "200": { description: "the file", content: { "application/octet-stream": {} } }, "404": err("no such file"), "401": COMMON["401"] } },
    },
    "/api/v1/openapi.json": { get: { summary: "This description", responses: { "200": { description: "OpenAPI 3.1" } } } },
  },
} as const;
