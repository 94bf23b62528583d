#!/usr/bin/env node
// ssh2's optional native binding, measured: SSH handshake (connect + password auth, median of 20)
// and one SIZE_MB SFTP download (ssh2-sftp-client fastGet) from the agent's SFTP server
// (server-capture's startSftpServer) in a second process, with CPU time of both sides. Run it once
// with the binding built (npm ci, package.json allowScripts) and once with
// node_modules/ssh2/lib/protocol/crypto/build moved away; the result says which it was.
// Loopback only; files in /dev/shm. Usage: npm run build && node bench/sftp-binding.mjs
import { spawn } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createRequire } from "node:module";
import { fileURLToPath } from "node:url";

const SIZE_MB = Number(process.env.SIZE_MB ?? 500);

if (process.argv[2] === "--server") {
  const { startSftpServer, passwordCheck } = await import("@capsync/server-capture/sftp-jail");
  const { sharedHostKey } = await import("@capsync/server-capture/sftp-keys");
  const srv = await startSftpServer({ root: process.argv[3], readOnly: true, hostKey: sharedHostKey().private, auth: { password: passwordCheck("op", "pw") } });
  process.stdout.write(`${srv.port}\n`);
  process.on("SIGTERM", () => {
    const c = process.cpuUsage();
    process.stdout.write(`cpu ${(c.user + c.system) / 1e6}\n`);
    process.exit(0);
  });
} else {
  const { default: SftpClient } = await import("ssh2-sftp-client");
  const binding = createRequire(import.meta.url)("ssh2/lib/protocol/crypto.js").bindingAvailable;
  const root = `/dev/shm/capsync-sftp-binding-${process.pid}`;
  mkdirSync(root, { recursive: true });
  writeFileSync(`${root}/f.bin`, Buffer.alloc(SIZE_MB * 1e6, 7));
  const srv = spawn(process.execPath, [fileURLToPath(import.meta.url), "--server", root], { stdio: ["ignore", "pipe", "inherit"] });
  let out = "";
  srv.stdout.on("data", (d) => (out += d));
  while (!out.includes("\n")) await new Promise((r) => setTimeout(r, 20));
  const port = Number(out.trim());
  const login = { host: "127.0.0.1", port, username: "op", password: "pw" };
  const hs = [];
  for (let i = 0; i < 20; i++) {
    const c = new SftpClient();
    const t = performance.now();
    await c.connect(login);
    hs.push(performance.now() - t);
    await c.end();
  }
  hs.sort((a, b) => a - b);
  const c = new SftpClient();
  await c.connect(login);
  const c0 = process.cpuUsage();
  const t0 = performance.now();
  await c.fastGet("/f.bin", `${root}/out.bin`);
  const s = (performance.now() - t0) / 1000;
  const cu = process.cpuUsage(c0);
  await c.end();
  srv.kill("SIGTERM");
  await new Promise((r) => srv.once("exit", r));
  rmSync(root, { recursive: true, force: true });
  const result = { binding, handshakeMedianMs: +hs[10].toFixed(1), MBps: +(SIZE_MB / s).toFixed(1), clientCpuS: +((cu.user + cu.system) / 1e6).toFixed(2), serverCpuS: Number(/cpu ([\d.]+)/.exec(out)?.[1]) };
  console.log(`RESULT ${JSON.stringify(result)}`);
}
