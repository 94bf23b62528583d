// What the parts of one emulated IOS-XE device (exec CLI, RESTCONF, SSH) share: its facts, its EPC
// state, its counters and its fault switches. Built once by startIosXeDevice.
import type { Epc } from "./epc.js";
import type { IosXeDeviceOptions, IosXeFaults, IosXeInterface, RpcRecord } from "./types.js";

export interface DeviceContext {
  opts: IosXeDeviceOptions;
  hostname: string;
  model: string;
  version: string;
  serial: string;
  interfaces: IosXeInterface[];
  epc: Epc;
  st: { requests: number; rpcs: RpcRecord[]; commands: string[]; sshConnections: number; fileRefusals: number; closed: boolean };
  /** Appends a CLI line to the command history (last 500). */
  record(line: string): void;
  /** The active fault of `key` if `match` accepts it, using up one of its `times`. */
  takeFault<K extends keyof IosXeFaults>(key: K, match: (f: NonNullable<IosXeFaults[K]>) => boolean): NonNullable<IosXeFaults[K]> | undefined;
}
