#!/usr/bin/env node
// The one list of what the test suite needs from the machine: root, and these commands from these
// Debian packages. tools/install-deps.sh installs the packages (README's set-up and .ci/run call
// it), `npm test` checks first (`--check`) and test/setup-ci.ts checks again for direct vitest runs,
// so a missing tool fails the suite by name instead of skipping tests.
//   node tools/test-deps.mjs --packages   the Debian packages, one line, for apt-get install
//   node tools/test-deps.mjs --check      exit 0, or 1 with what is missing and how to install it
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { fileURLToPath } from "node:url";

/** command → [Debian package, why the tests need it] */
export const TOOLS = {
  tcpdump: ["tcpdump", "the agent's capture engine"],
  ip: ["iproute2", "network-namespace test hosts (veth pairs)"],
  nft: ["nftables", "the demo lab's one-way path break"],
  sftp: ["openssh-client", "SFTP interop with OpenSSH's client"],
  "ssh-keygen": ["openssh-client", "OpenSSH key formats"],
  ps: ["procps", "process-table checks (no secrets in argv, no leftover tcpdumps)"],
  tmux: ["tmux", "the interactive mode's pseudo-terminal tests"],
  tshark: ["tshark", "reading back our pcap/pcapng"],
  capinfos: ["wireshark-common", "reading back merged.pcapng"],
  mergecap: ["wireshark-common", "comparing our merge with Wireshark's"],
  chromium: ["chromium", "rendering report.html"],
  rsyslogd: ["rsyslog", "real syslog relay tests"],
  setpriv: ["util-linux", "running the CLIs unprivileged"],
  unshare: ["util-linux", "running the one-file executables in a mount namespace without node"],
  ping: ["iputils-ping", "VERIFY's ICMP echo next to the system ping"],
  python3: ["python3", "raw-socket traffic senders of the trace capture tests (and node-gyp)"],
  rpmbuild: ["rpm", "building the agent's RPM and reading it back (rpm -qp)"],
  lintian: ["lintian", "checking the Debian packages"],
  "dpkg-shlibdeps": ["dpkg-dev", "the .deb packages' library dependencies (npm run dist)"],
  debootstrap: ["debootstrap", "a throwaway Debian 12 root for the .deb install/upgrade/purge lifecycle"],
  "systemd-analyze": ["systemd", "verifying the packaged service unit"],
  faketime: ["faketime", "stepping the wall clock of real agent and orchestrator processes (libfaketime)"],
  logrotate: ["logrotate", "rotating a running agent's log (copytruncate and create modes)"],
  strace: ["strace", "the agent's state file is fsynced (file and directory) before it is renamed into place"],
  cc: ["gcc", "the syslog storm's UDP sender (test/helpers/native/udp-storm.c, compiled by the test)"],
  perl: ["perl-base", "each tcpdump's own lifetime bound (an alarm armed before exec)"],
};

/**
 * Packages without a command the tests look for: CA roots for npm and HTTPS to the registries; the
 * compiler and make with which node-gyp (and python3, above) builds ssh2's native AES-GCM binding during
 * `npm ci` (package.json allowScripts; without them ssh2 falls back to slower Node crypto).
 */
const EXTRA_PACKAGES = ["ca-certificates", "g++", "make"];

export const PACKAGES = [...new Set([...Object.values(TOOLS).map(([pkg]) => pkg), ...EXTRA_PACKAGES])];

export const INSTALL_HINT = "tools/install-deps.sh (as root; it runs apt-get install for the packages in tools/test-deps.mjs)";

function onPath(cmd) {
  // sbin directories too: rsyslogd lives in /usr/sbin, which a login shell's PATH may lack.
  const dirs = [...(process.env.PATH ?? "").split(delimiter), "/usr/sbin", "/sbin"].filter(Boolean);
  return dirs.some((d) => {
    try {
      accessSync(join(d, cmd), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

/** Every problem that stops the suite from running whole on this machine; [] when none. */
export function testDepProblems() {
  const problems = [];
  if (process.getuid?.() !== 0) {
    problems.push("the tests must run as root (they start tcpdump, agents, SFTP servers and network namespaces): run `sudo npm test`");
  }
  const missing = Object.keys(TOOLS).filter((t) => !onPath(t));
  if (missing.length) {
    const pkgs = [...new Set(missing.map((t) => TOOLS[t][0]))];
    problems.push(`missing commands: ${missing.map((t) => `${t} (Debian package ${TOOLS[t][0]})`).join(", ")}; install them with ${INSTALL_HINT}, or: apt-get install -y ${pkgs.join(" ")}`);
  }
  return problems;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const arg = process.argv[2];
  if (arg === "--packages") {
    process.stdout.write(`${PACKAGES.join(" ")}\n`);
  } else if (arg === "--check") {
    const problems = testDepProblems();
    for (const p of problems) process.stderr.write(`npm test: ${p}\n`);
    process.exitCode = problems.length ? 1 : 0;
  } else {
    process.stderr.write("usage: node tools/test-deps.mjs --packages | --check\n");
    process.exitCode = 2;
  }
}
