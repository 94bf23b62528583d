// @capsync/lab: the demo lab behind `cpe-capture demo` (network namespaces, emulated devices and
// management server, a real agent; or the unprivileged loopback variant). Not part of the product:
// cpe-capture loads this package only for `demo`, and does not depend on it.
import type { DemoLab } from "@capsync/cpe-capture/commands/demo";
import { demoCommand as runDemo } from "./demo.js";

/** What cpe-capture's commands/demo.ts loads, with the type it expects. */
export const demoCommand: DemoLab["demoCommand"] = runDemo;
