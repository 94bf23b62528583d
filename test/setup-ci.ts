// In CI (CI=true, set by .ci/run) every test must run: tests that need root or a Debian tool
// skip themselves only on developer machines without them. Fail loudly here instead.
import { execFileSync } from "node:child_process";

const TOOLS = ["tcpdump", "tshark", "capinfos", "mergecap", "chromium", "sftp", "ssh-keygen", "tmux", "rsyslogd", "nft", "ip", "setpriv", "ping"];

if (process.env.CI) {
  if (process.getuid?.() !== 0) throw new Error("CI runs the tests as root (network namespaces, tcpdump); it is not root");
  const missing = TOOLS.filter((t) => {
    try {
      execFileSync("sh", ["-c", 'command -v "$1"', "sh", t], { stdio: "ignore" });
      return false;
    } catch {
      return true;
    }
  });
  if (missing.length) throw new Error(`CI needs these tools installed (see .ci/run): ${missing.join(", ")}`);
}
