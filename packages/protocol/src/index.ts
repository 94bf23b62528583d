// The wire format both sides must agree on byte for byte: legacy text and CSYNC/1 datagrams, answer
// codes, device addresses and capture file names, the capture spec and its BPF compilation; besides
// them only the error tree and the duration syntax every package shares. No I/O: logging, HTTPS, key
// files and the VERIFY probes are in @capsync/common.
export * from "./errors.js";
export * from "./address.js";
export * from "./filename.js";
export * from "./codes.js";
export * from "./legacy.js";
export * from "./v1.js";
export * from "./duration.js";
export * from "./spec.js";
export * from "./bpf.js";
export * from "./skew.js";
