// IOS-XE interface names as the CLI accepts them: the interface types EPC attaches to, their
// abbreviations, and the canonical full name. No imports, so the device emulator can share them.

/** Interface types EPC attaches to, with the abbreviations IOS accepts (matched case-insensitively). */
export const IOSXE_INTERFACE_TYPES: ReadonlyArray<readonly [full: string, ...abbrev: string[]]> = [
  ["GigabitEthernet", "Gi", "Gig"],
  ["TenGigabitEthernet", "Te", "Ten"],
  ["TwentyFiveGigE", "Twe"],
  ["FortyGigabitEthernet", "Fo"],
  ["HundredGigE", "Hu"],
  ["AppGigabitEthernet", "Ap"],
  ["FastEthernet", "Fa"],
  ["Ethernet", "Eth", "Et"],
  ["Port-channel", "Po"],
  ["Vlan", "Vl"],
  ["Loopback", "Lo"],
  ["Tunnel", "Tu"],
  ["Dialer", "Di"],
  ["Cellular", "Ce"],
  ["Serial", "Se"],
  ["Multilink", "Mu"],
  ["Virtual-Access", "Vi"],
  ["Virtual-Template", "Vt"],
  ["VirtualPortGroup", "Vpg"],
  ["BDI"],
  ["BVI"],
];
const INTERFACE_NUMBER = /^(\d{1,4}(?:\/\d{1,4}){0,3}(?:\.\d{1,10})?(?::\d{1,4})?)$/;

/** "Gi0/0/1" → "GigabitEthernet0/0/1"; undefined when it is not an IOS-XE interface name. */
export function canonicalIosXeInterface(name: string): string | undefined {
  const m = /^([A-Za-z][A-Za-z-]*?)\s?(\d.*)$/.exec(name);
  if (!m || !INTERFACE_NUMBER.test(m[2]!)) return undefined;
  const typed = m[1]!.toLowerCase();
  for (const [full, ...abbrev] of IOSXE_INTERFACE_TYPES) {
    if (full.toLowerCase() === typed || abbrev.some((a) => a.toLowerCase() === typed)) return `${full}${m[2]}`;
  }
  return undefined;
}
