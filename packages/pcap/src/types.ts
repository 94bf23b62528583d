// Shapes shared by the format readers, the writer, merge and match.
import type { Decoded } from "./decode.js";

/** One packet as read from a capture file. */
export interface CapturedPacket {
  /** Index into the reader's `interfaces` (global across pcapng sections; always 0 for pcap). */
  interfaceId: number;
  /** LINKTYPE_* value of the interface (1 Ethernet, 113 Linux SLL, 276 SLL2, 101 raw IP, ...). */
  linktype: number;
  /** Nanoseconds since the Unix epoch (file's clock; pcapng if_tsoffset applied). */
  tsNanos: bigint;
  capturedLength: number;
  originalLength: number;
  /** The captured bytes: a view into the read chunk (see Cursor). */
  data: Buffer;
  /** Byte offset of the record/block in the file. */
  offset: number;
  /** pcapng opt_comment, when present. */
  comment?: string;
  /** pcapng epb_flags (direction in bits 0-1), when present. */
  flags?: number;
  /** Simple Packet Blocks carry no time: tsNanos then repeats the previous packet's time. */
  noTimestamp?: true;
  /** Filled when the reader was opened with `decode: true`. */
  decoded?: Decoded;
}

export interface TsResolution {
  /** 10 (units of 10^-exp s) or 2 (units of 2^-exp s). */
  base: 10 | 2;
  exp: number;
}

export interface InterfaceInfo {
  /** Global index (what CapturedPacket.interfaceId refers to). */
  id: number;
  /** pcapng section number (0-based); 0 for pcap. */
  section: number;
  linktype: number;
  snaplen: number;
  name?: string;
  description?: string;
  comment?: string;
  os?: string;
  filter?: string;
  tsresol: TsResolution;
  /** if_tsoffset, seconds added to every timestamp of the interface. */
  tsOffsetSeconds: bigint;
  fcsLength?: number;
}

/** pcapng Interface Statistics Block. Counters are absent when the block omits them. */
export interface InterfaceStatistics {
  interfaceId: number;
  tsNanos: bigint;
  startNanos?: bigint;
  endNanos?: bigint;
  ifRecv?: bigint;
  ifDrop?: bigint;
  filterAccept?: bigint;
  osDrop?: bigint;
  usrDeliv?: bigint;
  comment?: string;
}

/** pcapng Name Resolution Block entry. */
export interface NameRecord {
  address: string;
  names: string[];
}

export interface SectionInfo {
  offset: number;
  littleEndian: boolean;
  versionMajor: number;
  versionMinor: number;
  hardware?: string;
  os?: string;
  userAppl?: string;
  comment?: string;
}

/** Where reader-level metadata goes while a format parser walks the file. */
export interface CaptureMeta {
  interfaces: InterfaceInfo[];
  statistics: InterfaceStatistics[];
  names: NameRecord[];
  sections: SectionInfo[];
}

