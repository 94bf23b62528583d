// One configured device while the run drives it: its config, its manifest record, its driver, and
// where its start and stop are.
import type { DeviceConfig } from "../config/schema.js";
import type { CaptureDriver, CaptureHandle } from "../drivers/driver.js";
import type { SyslogEvent } from "../triggers/matchers.js";
import type { DeviceRecord, StopReason } from "./model.js";

export interface DeviceRun {
  cfg: DeviceConfig;
  rec: DeviceRecord;
  driver: CaptureDriver;
  handle?: CaptureHandle;
  starting?: Promise<void>;
  stopRequested?: { reason: StopReason; detail: string; event?: SyslogEvent };
  stopping?: Promise<void>;
  /** performance.now() when the trigger arrived, for alarm→STOP latency. */
  triggerAt?: number;
  /** The file segment being captured (1 until the filter is changed: segments.ts). */
  segment?: number;
  /** A filter change under way: stops wait for it to hand over (segments.ts). */
  changing?: Promise<unknown>;
}
