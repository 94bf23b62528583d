// The protocol floor of one device lifecycle, done by bare Node (node:https, ssh2, node:dgram and
// @capsync/protocol's CSYNC/1 encoding) with nothing of capsync's orchestration around it: no
// journal, manifest, events, retries beyond a lost datagram, hashing or logging. bench/floor.mjs
// runs each piece over the fleet and charges its process CPU per device.
//   rest        one TLS handshake, then GET /api/v1/status, PUT start script, PUT stop script on
//               that one keep-alive connection (the AudioCodes driver's probe + start + stop)
//   deviceSftp  one ssh2 connection (password), stat + read of the device's capture file
//   udp         REGISTER, CAPTURE, STOP to the agent, authenticated, each to its final answer
//   agentSftp   stat + read of the agent's file for the device over one SSH connection per
//               agent shared by every device (as the orchestrator's pool does)
import { createSocket } from "node:dgram";
import https from "node:https";
import { join } from "node:path";
import { statSync } from "node:fs";
import ssh2 from "ssh2";
import { formatRequest, newRequestId, parseAnswer } from "@capsync/protocol";

const PREFIX = { msbr: "debug capture data physical", gwsbc: "debug capture voip physical" };
const CAPTURE_FILE = "/debug-capture/debug-capture-data.pcap";
/** The orchestrator's resend period once the agent said 100 Trying (agents/options.ts). */
const TRYING_RESEND_MS = 2000;
const RESEND_WINDOW_MS = 25_000;
const DEADLINE_MS = 120_000;
/** The driver's SFTP read size. */
const CHUNK = 64 * 1024;

/** The driver's start and stop CLI scripts, each ending with the `show` that confirms it. */
export function scripts(type) {
  const p = PREFIX[type];
  const iface = type === "msbr" ? "eth-wan" : "eth-lan";
  const start = type === "msbr" ? [`${p} stop`, `${p} ${iface}`, `${p} start`, `${p} show`] : [`${p} ${iface}`, `${p} start`, `${p} show`];
  return { start, stop: [`${p} stop`, `${p} show`] };
}

function multipart(lines) {
  const boundary = `floor${Math.random().toString(16).slice(2)}`;
  const body = Buffer.from(
    `--${boundary}\r\nContent-Disposition: form-data; name="file"; filename="cli.txt"\r\nContent-Type: text/plain\r\n\r\n${lines.join("\n")}\n\r\n--${boundary}--\r\n`,
  );
  return { body, type: `multipart/form-data; boundary=${boundary}` };
}

/** One HTTPS exchange on `agent` (keep-alive); resolves to {status, json, reused}. */
function exchange(agent, d, auth, method, path, body, contentType) {
  return new Promise((resolve, reject) => {
    const headers = { authorization: auth, accept: "application/json" };
    if (body) Object.assign(headers, { "content-type": contentType, "content-length": body.length });
    const req = https.request({ host: d.address, port: d.restPort, method, path, agent, headers, rejectUnauthorized: false }, (res) => {
      const chunks = [];
      res.on("data", (c) => chunks.push(c));
      res.on("end", () => {
        try {
          resolve({ status: res.statusCode, json: JSON.parse(Buffer.concat(chunks).toString("utf8")), reused: req.reusedSocket });
        } catch (e) {
          reject(e);
        }
      });
      res.on("error", reject);
    });
    req.setTimeout(30_000, () => req.destroy(new Error(`${method} ${path} to ${d.address}: no answer in 30 s`)));
    req.on("error", reject);
    req.end(body);
  });
}

/** rest: resolves to the number of TLS connections it needed (1 unless the device closed it). */
export async function restLifecycle(d, { username, password }) {
  const agent = new https.Agent({ keepAlive: true, maxSockets: 1, rejectUnauthorized: false });
  const auth = `Basic ${Buffer.from(`${username}:${password}`).toString("base64")}`;
  const s = scripts(d.type);
  let connections = 0;
  try {
    const status = await exchange(agent, d, auth, "GET", "/api/v1/status");
    connections += status.reused ? 0 : 1;
    if (status.status !== 200 || typeof status.json.productType !== "string") throw new Error(`${d.address}: status answered ${status.status}`);
    for (const [name, lines, want] of [["start", s.start, /physical is active/], ["stop", s.stop, /physical is not active/]]) {
      const m = multipart(lines);
      const a = await exchange(agent, d, auth, "PUT", "/api/v1/files/cliScript/incremental", m.body, m.type);
      connections += a.reused ? 0 : 1;
      if (a.status !== 200 || a.json.status !== "success" || !want.test(a.json.output)) throw new Error(`${d.address}: ${name} answered ${a.status} ${JSON.stringify(a.json).slice(0, 200)}`);
    }
  } finally {
    agent.destroy();
  }
  return connections;
}

function sftpGet(sftp, remote, local) {
  return new Promise((resolve, reject) =>
    sftp.stat(remote, (err, st) => {
      if (err) return reject(err);
      sftp.fastGet(remote, local, { chunkSize: CHUNK }, (err2) => {
        if (err2) return reject(err2);
        const got = statSync(local).size;
        if (got !== st.size) return reject(new Error(`${remote}: got ${got} of ${st.size} bytes`));
        resolve(got);
      });
    }),
  );
}

/** deviceSftp: one connection of its own per device, closed after; resolves to the bytes read. */
export function deviceSftp(d, { username, password, dir }) {
  return new Promise((resolve, reject) => {
    const c = new ssh2.Client();
    const fail = (e) => {
      c.end();
      reject(new Error(`SFTP ${d.address}:${d.sshPort}: ${e.message}`));
    };
    c.once("error", fail);
    c.once("ready", () =>
      c.sftp((err, sftp) => {
        if (err) return fail(err);
        sftpGet(sftp, CAPTURE_FILE, join(dir, `${d.address}.pcap`)).then((n) => {
          c.end();
          resolve(n);
        }, fail);
      }),
    );
    c.connect({ host: d.address, port: d.sshPort, username, password, readyTimeout: 30_000, tryKeyboard: false });
  });
}

/** One SSH+SFTP connection to an agent, shared: get(name, local) per device, close() at the end. */
export function agentSftp({ host, port, privateKey }) {
  const c = new ssh2.Client();
  const ready = new Promise((resolve, reject) => {
    c.once("ready", () => c.sftp((err, sftp) => (err ? reject(err) : resolve(sftp))));
    c.once("error", reject);
  });
  c.on("error", () => {});
  c.connect({ host, port, username: "capsync", privateKey, readyTimeout: 30_000 });
  return {
    get: async (name, local) => sftpGet(await ready, `/${name}`, local),
    close: () => c.end(),
  };
}

/**
 * A CSYNC/1 client on one UDP socket (as the orchestrator has one): exchange(agent, req) sends a request and
 * resolves to the first authentic final answer, resending the same datagram after 250 ms doubling
 * (capped at 2 s) while nothing came, every 2 s after a 100 Trying, for 25 s; gives up after 120 s.
 */
export async function udpClient({ key }) {
  const sock = createSocket("udp4");
  const pending = new Map();
  sock.on("message", (buf) => {
    const a = parseAnswer(buf, [key]);
    if (!a.ok) return;
    const p = pending.get(a.value.id);
    if (!p) return;
    if (a.value.code === 100) {
      // As the orchestrator: a 100 stretches the wait; the next resend only after TRYING_RESEND_MS.
      clearTimeout(p.timer);
      p.timer = setTimeout(p.send, TRYING_RESEND_MS);
      return;
    }
    pending.delete(a.value.id);
    clearTimeout(p.timer);
    p.resolve(a.value);
  });
  await new Promise((r) => sock.bind(0, "127.0.0.1", r));
  // An agent whose intake runs over 30 s behind answers "stale" to a datagram it read too late; as a
  // new attempt of the work, the request is made again with a fresh id and timestamp (at most 3 times).
  const exchange = async (agent, req) => {
    for (let attempt = 1; ; attempt++) {
      const a = await once(agent, req);
      if (a.code !== 400 || a.details.reason !== "stale" || attempt >= 3) return a;
      stale++;
    }
  };
  let stale = 0;
  const once = ({ host, port }, req) =>
    new Promise((resolve, reject) => {
      const id = newRequestId();
      const dgram = formatRequest({ id, ts: Date.now(), ...req }, key);
      let wait = 250;
      const first = Date.now();
      const send = () => {
        const age = Date.now() - first;
        if (age > DEADLINE_MS) {
          pending.delete(id);
          return reject(new Error(`${req.verb} ${req.device}: no final answer within ${DEADLINE_MS} ms`));
        }
        // The same datagram keeps its first timestamp: past the agent's 30 s window a resend would be
        // answered "stale", so (as the orchestrator) resend only within RESEND_WINDOW_MS, then wait.
        if (age <= RESEND_WINDOW_MS) sock.send(dgram, port, host);
        p.timer = setTimeout(send, wait);
        wait = Math.min(wait * 2, 2000);
      };
      const p = { resolve, timer: undefined, send };
      pending.set(id, p);
      send();
    });
  return { exchange, stale: () => stale, close: () => sock.close() };
}

/** udp: REGISTER, CAPTURE, STOP for one device; resolves to the agent's file name for it. */
export async function udpLifecycle(d, client, agent, name) {
  const reg = await client.exchange(agent, { verb: "REGISTER", device: d.address });
  if (reg.code !== 200) throw new Error(`REGISTER ${d.address}: ${reg.code} ${JSON.stringify(reg.details)}`);
  const cap = await client.exchange(agent, { verb: "CAPTURE", device: d.address });
  if (cap.code !== 200) throw new Error(`CAPTURE ${d.address}: ${cap.code} ${JSON.stringify(cap.details)}`);
  const stop = await client.exchange(agent, { verb: "STOP", device: d.address, filename: name });
  if (stop.code !== 200) throw new Error(`STOP ${d.address}: ${stop.code} ${JSON.stringify(stop.details)}`);
  const files = (stop.details.files ?? "").split(",").filter(Boolean);
  if (files.length !== 1) throw new Error(`STOP ${d.address}: expected one file, got '${stop.details.files ?? ""}'`);
  return files[0];
}

/** Runs fn over items, at most `concurrency` at a time; rejects on the first failure. */
export async function pool(items, concurrency, fn) {
  let next = 0;
  const out = new Array(items.length);
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i], i);
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, items.length) }, worker));
  return out;
}
