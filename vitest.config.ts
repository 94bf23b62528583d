import { readFileSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { defineConfig } from "vitest/config";

// Four lanes run side by side (tools/test-lanes.mjs starts one vitest per lane: vitest itself would
// queue all of them behind one worker), each one file at a time:
// - "system": every test that touches the machine's shared state — tcpdump, agents, network
//   namespaces, child processes, the process table (helpers such as tcpdumpsFor() look for
//   `host <ip>` across all processes, so two of these files at once could see each other's captures).
// - "unit": in-process tests of parsers, config, reports, layout and hostile input (CPU-bound, no
//   processes, sockets on 127.0.0.1 only, which no system test captures). A file in the unit globs that mentions anything
//   process- or capture-related is moved to "system" automatically, so a new test cannot land in the
//   wrong lane by forgetting a list.
// - "install": the packaging tests (npm run dist into a temp dir, a Debian root, a fresh clone):
//   minutes of building, no capture on this machine's interfaces.
// - "soak": the minutes-long soak, which mostly waits, on its own addresses (127.0.66.x).
// The emulators' own tests send traffic from 127.0.0.x device addresses that system tests capture.
const UNIT_DIRS = [
  ...readdirSync("packages").filter((p) => p !== "emulators").map((p) => join("packages", p, "src")),
  "test/hostile",
  "test/structure",
  "test/cli",
];
const SOAK_GLOBS = ["test/soak/**/*.test.ts"];
const INSTALL_GLOBS = ["test/install/packages.test.ts", "test/install/path.test.ts", "test/install/test-deps.test.ts"];
const SYSTEM_MARKERS = /tcpdump|netns|agent-proc|startAgent|child_process|spawn|execFile|helpers\/lab|helpers\/procs|@capsync\/lab/;

function testFiles(dir: string): string[] {
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return [];
  }
  return entries.flatMap((e) => {
    const path = join(dir, e.name);
    if (e.isDirectory()) return e.name === "node_modules" || e.name === "dist" ? [] : testFiles(path);
    return e.name.endsWith(".test.ts") ? [path] : [];
  });
}

const unitFiles = UNIT_DIRS.flatMap(testFiles)
  .filter((f) => !SYSTEM_MARKERS.test(readFileSync(f, "utf8")))
  .sort();

const shared = {
  testTimeout: 60_000,
  hookTimeout: 60_000,
  setupFiles: ["test/setup-ci.ts"],
  fileParallelism: false,
};

export default defineConfig({
  test: {
    reporters: ["default"],
    projects: [
      { test: { ...shared, name: "unit", include: unitFiles.length ? unitFiles : ["__none__"] } },
      { test: { ...shared, name: "soak", include: SOAK_GLOBS } },
      { test: { ...shared, name: "install", include: INSTALL_GLOBS } },
      {
        test: {
          ...shared,
          name: "system",
          include: ["packages/*/src/**/*.test.ts", "test/**/*.test.ts"],
          exclude: [...unitFiles, ...SOAK_GLOBS, ...INSTALL_GLOBS, "**/node_modules/**"],
        },
      },
    ],
  },
});
