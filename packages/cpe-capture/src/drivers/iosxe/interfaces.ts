// IOS-XE interface names as the CLI accepts them: the interface types EPC attaches to, the
// abbreviations IOS takes for them, and the canonical full name. No imports, so the device
// emulator can share them.
//
// IOS's rule: any prefix of a type's full name names that type, case-insensitively ("g", "gi",
// "giga" → GigabitEthernet); where a prefix fits several types, the first in IOS's own order wins
// ("t" → TenGigabitEthernet, "tw" → TwoGigabitEthernet, "twe" → TwentyFiveGigE, "f" → FastEthernet,
// "fo" → FortyGigabitEthernet). A few short names IOS prints are not prefixes ("Vpg", "Vt") and are
// listed explicitly.

/** Interface types EPC attaches to, in IOS's order, each with the non-prefix short names IOS prints. */
export const IOSXE_INTERFACE_TYPES: ReadonlyArray<readonly [full: string, ...abbrev: string[]]> = [
  ["GigabitEthernet"],
  ["TenGigabitEthernet"],
  ["TwoGigabitEthernet"],
  ["TwentyFiveGigE"],
  ["TwoHundredGigE"],
  ["FastEthernet"],
  ["FortyGigabitEthernet"],
  ["FiveGigabitEthernet"],
  ["FourHundredGigE"],
  ["HundredGigE"],
  ["AppGigabitEthernet"],
  ["Ethernet"],
  ["Port-channel"],
  ["Vlan"],
  ["Virtual-Access"],
  ["Virtual-Template", "Vt"],
  ["VirtualPortGroup", "Vpg"],
  ["Loopback"],
  ["Tunnel"],
  ["Dialer"],
  ["Cellular"],
  ["Serial"],
  ["Multilink"],
  ["BDI"],
  ["BVI"],
];
const INTERFACE_NUMBER = /^(\d{1,4}(?:\/\d{1,4}){0,3}(?:\.\d{1,10})?(?::\d{1,4})?)$/;

/** The full type name a typed (possibly abbreviated) type resolves to, e.g. "te" → "TenGigabitEthernet". */
export function iosXeInterfaceType(typed: string): string | undefined {
  const t = typed.toLowerCase();
  if (!t) return undefined;
  for (const [full, ...abbrev] of IOSXE_INTERFACE_TYPES) if (abbrev.some((a) => a.toLowerCase() === t)) return full;
  for (const [full] of IOSXE_INTERFACE_TYPES) if (full.toLowerCase().startsWith(t)) return full;
  return undefined;
}

/** "Gi0/0/1" → "GigabitEthernet0/0/1", "g1" → "GigabitEthernet1"; undefined when it is not an IOS-XE interface name. */
export function canonicalIosXeInterface(name: string): string | undefined {
  const m = /^([A-Za-z][A-Za-z-]*?)\s?(\d.*)$/.exec(name);
  if (!m || !INTERFACE_NUMBER.test(m[2]!)) return undefined;
  const full = iosXeInterfaceType(m[1]!);
  return full ? `${full}${m[2]}` : undefined;
}
