// Fleets of emulated AudioCodes devices in one process, on consecutive loopback addresses.
import { promises as fsp } from "node:fs";
import { isIPv4 } from "node:net";
import { tmpdir } from "node:os";
import path from "node:path";
import { startAudioCodesDevice } from "./device.js";
import type { AudioCodesDevice, AudioCodesDeviceOptions, AudioCodesType } from "./types.js";

export interface AudioCodesFleetOptions extends Omit<AudioCodesDeviceOptions, "address" | "type" | "dataDir"> {
  /** First device address (default 127.0.1.1); the next ones count up, skipping .0 and .255. */
  firstAddress?: string;
  /** Device type for all, or per index (default: alternate msbr, gwsbc). */
  type?: AudioCodesType | ((index: number) => AudioCodesType);
  /** Devices started at once (default 50). */
  concurrency?: number;
}

export interface AudioCodesFleet {
  readonly devices: readonly AudioCodesDevice[];
  close(): Promise<void>;
}

/** Consecutive usable host addresses from `first` (IPv4). */
export function fleetAddresses(first: string, n: number): string[] {
  if (!isIPv4(first)) throw new TypeError(`firstAddress must be IPv4: ${first}`);
  let v = first.split(".").reduce((a, o) => a * 256 + Number(o), 0);
  const out: string[] = [];
  while (out.length < n) {
    const last = v & 0xff;
    if (last !== 0 && last !== 255) out.push([v >>> 24, (v >>> 16) & 0xff, (v >>> 8) & 0xff, last].join("."));
    v++;
    if (v > 0x7fffffff) throw new RangeError("ran out of 127.0.0.0/8 addresses");
  }
  return out;
}

/** `n` emulated devices in this process, sharing one TLS certificate, one host key and one temp directory. */
export async function startAudioCodesFleet(n: number, opts: AudioCodesFleetOptions): Promise<AudioCodesFleet> {
  const addresses = fleetAddresses(opts.firstAddress ?? "127.0.1.1", n);
  const typeOf = typeof opts.type === "function" ? opts.type : (i: number) => (opts.type as AudioCodesType | undefined) ?? (i % 2 === 0 ? "msbr" : "gwsbc");
  const root = await fsp.mkdtemp(path.join(tmpdir(), "capsync-audiocodes-fleet-"));
  const devices: AudioCodesDevice[] = new Array(n);
  const { firstAddress: _f, type: _t, concurrency, ...deviceOpts } = opts;
  const close = async (): Promise<void> => {
    await Promise.all(devices.filter(Boolean).map((d) => d.close()));
    await fsp.rm(root, { recursive: true, force: true });
  };
  try {
    const step = concurrency ?? 50;
    for (let i = 0; i < n; i += step) {
      await Promise.all(
        addresses.slice(i, i + step).map(async (address, j) => {
          const dataDir = path.join(root, address);
          devices[i + j] = await startAudioCodesDevice({ ...deviceOpts, address, type: typeOf(i + j), dataDir });
        }),
      );
    }
  } catch (err) {
    await close();
    throw err;
  }
  return { devices, close };
}
