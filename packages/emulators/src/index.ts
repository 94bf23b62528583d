export * from "./audiocodes/index.js";
export * from "./iosxe/index.js";
export * from "./nxos/index.js";
export { generateSshKeyPair, sharedHostKey } from "@capsync/server-capture/sftp-keys";
export * from "./tls.js";
export * from "./syslog-sender.js";
export * from "./ovoc.js";
export * from "./webex/index.js";
