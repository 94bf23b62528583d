// The contract harnesses by device type. Keyed by the registry's DEVICE_TYPES: a registered type
// without an entry here fails to compile and fails the suite's first test.
import type { DeviceType } from "../../../packages/cpe-capture/src/drivers/index.js";
import { audiocodesHarnesses } from "./audiocodes.js";
import { iosxeHarnesses } from "./iosxe.js";
import { nxosHarnesses } from "./nxos.js";
import type { DriverHarness } from "./types.js";

export const HARNESSES: Readonly<Partial<Record<string, readonly DriverHarness[]>>> = {
  ...audiocodesHarnesses,
  ...iosxeHarnesses,
  ...nxosHarnesses,
} satisfies Record<DeviceType, readonly DriverHarness[]>;

export type { ContractFault, DriverHarness, EmulatedTarget } from "./types.js";
export { PASS, USER } from "./types.js";
