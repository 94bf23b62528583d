// The version of server-capture, read from its package.json at run time: the one source for
// `--version` (the release files' names take it from the same file). The path is relative to
// this module, the same from src/ (tests) and dist/ (the built CLI).
import { createRequire } from "node:module";

export const VERSION: string = (createRequire(import.meta.url)("../package.json") as { version: string }).version;
