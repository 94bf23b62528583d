// What every driver checks and does with a downloaded capture before it counts as fetched: the size
// the device announced, pcap/pcapng magic, then a SHA-256 and a link to its final name that never
// replaces an existing file. Not here: the transfer itself (SFTP, SCP), or reading the packets.
import { promises as fsp } from "node:fs";
import path from "node:path";
import { sha256File } from "@capsync/common";
import { CapsyncError, ConfigError, DeviceProtocolError } from "@capsync/protocol";
import type { LocalFile } from "../driver.js";
import type { DeviceCalls, Failure } from "./retry.js";

/** The local path of a fetch into `localDir`; ConfigError for a name that is not one plain file name. */
export function localCapturePath(label: string, localDir: string, fileName: string): string {
  if (fileName !== path.basename(fileName) || fileName === "." || fileName === ".." || fileName === "") throw new ConfigError(`${label}: bad local file name ${JSON.stringify(fileName)}`);
  return path.join(localDir, fileName);
}

export interface VerifiedFetch {
  /** "<type> <address>", for messages. */
  label: string;
  calls: DeviceCalls;
  /** Download retries after the first attempt, and the time limit of one attempt. */
  retries: number;
  attemptMs: number;
  remotePath: string;
  /** From localCapturePath. */
  final: string;
  /** Runs before the first attempt, e.g. a refusal to download over an existing file. */
  before?: () => Promise<void>;
  /** One attempt of the transfer into `part`. */
  download(part: string, ms: number): Promise<{ bytes: number; remoteSize: number }>;
  /** The task output of a good attempt. */
  describe(got: { bytes: number }): string;
}

/**
 * The task `fetch-capture`: downloads through `<final>.part`, retrying short or corrupt files, and
 * links the checked file to `final`; errors are wrapped, the partial file is always removed.
 */
export async function fetchVerified(f: VerifiedFetch): Promise<LocalFile> {
  const part = `${f.final}.part`;
  const removePart = () => fsp.rm(part, { force: true }).catch(() => {});
  try {
    await fsp.mkdir(path.dirname(f.final), { recursive: true });
    await f.before?.();
    await f.calls.run<{ bytes: number; remoteSize: number }>(
      "fetch-capture",
      f.retries,
      async (ms) => {
        await removePart();
        const r = await f.download(part, ms);
        return (await checkDownload(f.label, f.remotePath, part, r)) ?? { value: r, output: f.describe(r) };
      },
      f.attemptMs,
    );
    const { bytes, sha256 } = await keepDownload(f.label, part, f.final);
    return { path: f.final, fileName: path.basename(f.final), bytes, sha256 };
  } catch (err) {
    throw f.calls.wrap("fetch-capture", err);
  } finally {
    await removePart();
  }
}

/** First bytes of a pcap (µs or ns, either byte order) or pcapng file. */
export function hasCaptureMagic(head: Buffer): boolean {
  if (head.length < 4) return false;
  const m = head.readUInt32BE(0);
  return [0xa1b2c3d4, 0xd4c3b2a1, 0xa1b23c4d, 0x4d3cb2a1, 0x0a0d0d0a].includes(m);
}

/**
 * A download at `part` that is short or not a capture is a Failure worth another attempt
 * (`capture-size-mismatch`, `capture-bad-magic`); undefined when it is whole.
 */
async function checkDownload(label: string, remotePath: string, part: string, got: { bytes: number; remoteSize: number }): Promise<Failure | undefined> {
  if (got.bytes !== got.remoteSize) {
    return { error: new DeviceProtocolError(`${label}: fetch-capture: got ${got.bytes} of ${got.remoteSize} bytes of ${remotePath}`, { code: "capture-size-mismatch" }), retry: true };
  }
  const head = Buffer.alloc(4);
  const fh = await fsp.open(part, "r");
  try {
    await fh.read(head, 0, 4, 0);
  } finally {
    await fh.close();
  }
  if (!hasCaptureMagic(head)) {
    return { error: new DeviceProtocolError(`${label}: fetch-capture: ${remotePath} is not a pcap/pcapng file (starts with ${head.toString("hex")})`, { code: "capture-bad-magic" }), retry: true };
  }
  return undefined;
}

/** Hashes the checked download and links it to `final`; an existing capture is never overwritten (`file-exists`). */
async function keepDownload(label: string, part: string, final: string): Promise<{ bytes: number; sha256: string }> {
  const sha256 = await sha256File(part);
  // link() fails with EEXIST instead of replacing: an existing capture is never overwritten.
  try {
    await fsp.link(part, final);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === "EEXIST") throw new CapsyncError("file-exists", `${label}: ${final} already exists; not overwritten`, { cause: err });
    throw err;
  }
  return { bytes: (await fsp.stat(final)).size, sha256 };
}
