export * from "./audiocodes.js";
export * from "./pcap-synth.js";
export * from "@capsync/server-capture/sftp-server";
export * from "./tls.js";
export * from "./syslog-sender.js";
export * from "./iosxe.js";
export * from "./ovoc.js";
