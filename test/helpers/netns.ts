// Network namespaces for tests: each test creates its own, with a veth pair to the root namespace,
// and removes it afterwards. Addresses only from the documentation ranges.
import { execFileSync } from "node:child_process";

function ip(...args: string[]): string {
  return execFileSync("ip", args, { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
}

export interface TestHost {
  ns: string;
  hostIf: string;
  nsIf: string;
  hostAddr: string;
  nsAddr: string;
  remove(): void;
}

/** A namespace `ns` reachable from the root namespace over veth: hostAddr (root side) <-> nsAddr. */
export function createTestHost(name: string, hostAddr: string, nsAddr: string, prefix = 24): TestHost {
  const ns = `csync-${name}`.slice(0, 15);
  const hostIf = `cs${name}h`.slice(0, 15);
  const nsIf = `cs${name}n`.slice(0, 15);
  removeNs(ns, hostIf);
  ip("netns", "add", ns);
  ip("link", "add", hostIf, "type", "veth", "peer", "name", nsIf);
  ip("link", "set", nsIf, "netns", ns);
  ip("addr", "add", `${hostAddr}/${prefix}`, "dev", hostIf);
  ip("link", "set", hostIf, "up");
  ip("-n", ns, "addr", "add", `${nsAddr}/${prefix}`, "dev", nsIf);
  ip("-n", ns, "link", "set", nsIf, "up");
  ip("-n", ns, "link", "set", "lo", "up");
  return { ns, hostIf, nsIf, hostAddr, nsAddr, remove: () => removeNs(ns, hostIf) };
}

export function removeNs(ns: string, hostIf?: string): void {
  try {
    ip("netns", "del", ns);
  } catch {
    /* not there */
  }
  if (hostIf) {
    try {
      ip("link", "del", hostIf);
    } catch {
      /* removed with the namespace */
    }
  }
}

export function nsExists(ns: string): boolean {
  return ip("netns", "list").split("\n").some((l) => l.split(" ")[0] === ns);
}
export function linkExists(name: string): boolean {
  try {
    ip("link", "show", name);
    return true;
  } catch {
    return false;
  }
}
