// Driver wiring: the registry (with a caller's overrides, e.g. a test's fake driver) and the
// options one device's driver is built with: its config, its password, the run's timeouts and
// retries, and where its tasks are reported.
import type { DeviceConfig, RunConfig } from "../config/schema.js";
import type { CaptureDriver, DriverFactory, DriverTask } from "../drivers/driver.js";
import { drivers as defaultDrivers, vendorOptions } from "../drivers/index.js";

export type DriverFactories = Partial<Record<string, DriverFactory>>;

/** The registry's factories, a caller's taking precedence. */
export function driverFactories(overrides?: DriverFactories): DriverFactories {
  return { ...defaultDrivers, ...(overrides ?? {}) };
}

export function wireDriver(factories: DriverFactories, cfg: DeviceConfig, password: string, config: RunConfig, onTask: (t: DriverTask) => void): CaptureDriver {
  const factory = factories[cfg.type];
  // A resumed run's config is read back from its folder, not validated again.
  if (!factory) throw new Error(`no driver for device type '${cfg.type}'`);
  return factory({
    address: cfg.address,
    type: cfg.type,
    username: cfg.username,
    password,
    restPort: cfg.restPort,
    sshPort: cfg.sshPort,
    tls: cfg.tls,
    ...vendorOptions({ ...cfg }),
    timeouts: { restMs: config.timeouts.restMs, sftpMs: config.timeouts.sftpMs },
    retries: config.retries,
    onTask,
  });
}
