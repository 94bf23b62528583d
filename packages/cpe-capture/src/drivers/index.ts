// The static driver registry: one entry per device type, checked against the contract by `satisfies`.
import { ConfigError } from "@capsync/protocol";
import { AudioCodesDriver } from "./audiocodes/driver.js";
import { IosXeDriver } from "./iosxe/driver.js";
import type { DeviceType, DriverFactory } from "./driver.js";

export const drivers = {
  msbr: (opts) => new AudioCodesDriver({ ...opts, type: "msbr" }),
  gwsbc: (opts) => new AudioCodesDriver({ ...opts, type: "gwsbc" }),
  iosxe: (opts) => new IosXeDriver({ ...opts, type: "iosxe" }),
} satisfies Record<DeviceType, DriverFactory>;

/** The factory for a configured device type; ConfigError for a type without a driver yet. */
export function driverFor(type: DeviceType): DriverFactory {
  const f = (drivers as Partial<Record<DeviceType, DriverFactory>>)[type];
  if (!f) throw new ConfigError(`no capture driver for device type ${JSON.stringify(type)} yet`);
  return f;
}

export type { CaptureDriver, CaptureHandle, DeviceFacts, DeviceType, DriverCapabilities, DriverFactory, DriverOptions, DriverTask, LocalFile, RemoteFile } from "./driver.js";
export { cpeCaptureFileName } from "./driver.js";
export type { CaptureSpec } from "./capture-spec.js";
