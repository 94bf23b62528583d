// Capture spec → tcpdump filter and options. The compiler lives in @capsync/protocol because the
// server-capture agent runs it too; re-exported here beside the device compilers.
export { type BpfOptions, type BpfProgram, type BpfResult, bpfOptions, compileBpf } from "@capsync/protocol";
