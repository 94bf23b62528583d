// AudioCodes debug-capture facts that the driver and the device emulator share, with no imports so
// both can use them: the capture points of `debug capture data|voip physical <iface>` per device
// type (firmware 7.2/7.4) and the command prefix of each.

export type AudioCodesType = "msbr" | "gwsbc";

/** MSBR: any of its physical interfaces, several at once. */
export const MSBR_INTERFACES = ["cellular-wan", "fiber-wan", "xdsl-wan", "shdsl-wan", "t1-e1-wan", "eth-wan", "eth-lan"] as const;
/** Mediant gateway/SBC: eth-lan only. */
const GWSBC_INTERFACES = ["eth-lan"] as const;

export const AUDIOCODES_CAPTURE_INTERFACES = { msbr: MSBR_INTERFACES, gwsbc: GWSBC_INTERFACES } as const satisfies Record<AudioCodesType, readonly string[]>;

/** MSBR captures data-plane traffic, the gateway/SBC its VoIP interface. */
export const AUDIOCODES_CAPTURE_PREFIX = {
  msbr: "debug capture data physical",
  gwsbc: "debug capture voip physical",
} as const satisfies Record<AudioCodesType, string>;
