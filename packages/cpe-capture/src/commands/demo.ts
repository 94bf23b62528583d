// `cpe-capture demo`: the lab lives in its own package, @capsync/lab, which depends on this one and
// on the emulators. It is loaded here, only for `demo`, so the product itself never loads it and a
// machine without it still runs every other command.
import type { Io } from "./run.js";

export interface DemoOptions {
  devices?: string;
  duration?: string;
  breakAfter?: string;
  output?: string;
  keep?: boolean;
  loopback?: boolean;
  clean?: boolean;
  json?: boolean;
  /** An emulated IOS-XE router, an S3 store and serve in xepacketcap compatibility mode, until Ctrl-C. */
  xepacketcap?: boolean;
  /** --xepacketcap: serve's port (default 5000). */
  port?: string;
  /** --xepacketcap: the addresses that need no token (default: serve's compat default). */
  allow?: string;
  /** Routed namespaces with emulated switches answering from their kernel routes: trace, break a hop, trace again. */
  trace?: boolean;
}

/** What @capsync/lab exports for this command. */
export interface DemoLab {
  demoCommand(o: DemoOptions, io: Io): Promise<number>;
}

/** Held in a variable so that the compiler does not resolve it: the lab is built after this package. */
const LAB_PACKAGE = "@capsync/lab";

export const LAB_MISSING = `the demo lab is not installed: it is the package ${LAB_PACKAGE} (in a capsync checkout: npm install && npm run build)`;

export async function demoCommand(o: DemoOptions, io: Io, load: () => Promise<unknown> = () => import(LAB_PACKAGE)): Promise<number> {
  let lab: DemoLab;
  try {
    lab = (await load()) as DemoLab;
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    const missing = err.code === "ERR_MODULE_NOT_FOUND" && err.message.includes(`'${LAB_PACKAGE}'`);
    io.stderr.write(`cpe-capture demo: ${missing ? LAB_MISSING : `cannot load ${LAB_PACKAGE}: ${err.message}`}\n`);
    return 2;
  }
  return lab.demoCommand(o, io);
}
