export * from "./audiocodes.js";
export * from "./pcap-synth.js";
export * from "./sftp-server.js";
export * from "./tls.js";
