import { defineConfig } from "vitest/config";

// Root/netns/tcpdump tests share the machine's process table and namespaces, so test files run
// one at a time; tests inside a file may still use concurrency where they are independent.
export default defineConfig({
  test: {
    include: ["packages/*/src/**/*.test.ts", "test/**/*.test.ts"],
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    reporters: ["default"],
    setupFiles: ["test/setup-ci.ts"],
  },
});
