// pcapng block types, the byte-order magic and option framing shared by the reader and the encoder.

export const BT_SHB = 0x0a0d0d0a; // Section Header Block
export const BT_IDB = 0x00000001; // Interface Description Block
export const BT_PB = 0x00000002; // Packet Block (obsolete)
export const BT_SPB = 0x00000003; // Simple Packet Block
export const BT_NRB = 0x00000004; // Name Resolution Block
export const BT_ISB = 0x00000005; // Interface Statistics Block
export const BT_EPB = 0x00000006; // Enhanced Packet Block
export const BYTE_ORDER_MAGIC = 0x1a2b3c4d; // in the SHB, read in the file's byte order

export const OPT_ENDOFOPT = 0;
export const OPT_COMMENT = 1;

/** Block bodies, option values and name records are padded to 32 bits. */
export const pad4 = (n: number) => (n + 3) & ~3;
