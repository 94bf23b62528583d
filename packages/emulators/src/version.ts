// The version of capsync-emulator, read from its package.json at run time for `--version`. The
// path is relative to this module, the same from src/ (tests) and dist/ (the built CLI).
import { createRequire } from "node:module";

export const VERSION: string = (createRequire(import.meta.url)("../package.json") as { version: string }).version;
