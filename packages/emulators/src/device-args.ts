// The command-line options every emulated device subcommand takes for its login and ports, and the
// check of --address and --password-env (the password comes from that environment variable, never
// from argv). Each subcommand parses its own ports and options beyond these.
import { isIP } from "node:net";
import { parseArgs, type ParseArgsConfig } from "node:util";

/** parseArgs options of a device's login and listening ports. */
export const DEVICE_LOGIN_OPTIONS = {
  address: { type: "string" },
  username: { type: "string" },
  "password-env": { type: "string" },
  "rest-port": { type: "string" },
  "ssh-port": { type: "string" },
} as const;

/** Strict parse of a device subcommand's arguments: the login options and its own `options`. */
export function parseDeviceArgs<O extends NonNullable<ParseArgsConfig["options"]>>(
  args: string[],
  options: O,
): ReturnType<typeof parseArgs<{ args: string[]; strict: true; options: typeof DEVICE_LOGIN_OPTIONS & O }>>["values"] {
  return parseArgs({ args, strict: true, options: { ...DEVICE_LOGIN_OPTIONS, ...options } }).values;
}

/** --address as an IP address and the password from the variable --password-env names; `usage` makes the error. */
export function deviceLogin(v: { address?: string | undefined; "password-env"?: string | undefined }, usage: (message: string) => Error): { address: string; password: string } {
  if (!v.address || !isIP(v.address)) throw usage(`--address must be an IP address, got '${v.address ?? ""}'`);
  const pwVar = v["password-env"];
  if (!pwVar) throw usage("--password-env <VAR> is required (the password itself never goes on the command line)");
  const password = process.env[pwVar];
  if (!password) throw usage(`environment variable ${pwVar} (from --password-env) is not set`);
  return { address: v.address, password };
}
