// IOS-XE's SSH transport is the Cisco-style CLI client every such vendor shares (../common/ssh-cli.ts):
// the exec CLI for EPC, SCP or SFTP of bootflash:. Named here for the IOS-XE driver and its tests.
export { DeviceSsh as IosXeSsh, cliErrors, type CliExchange, type DownloadResult, type SshTarget } from "../common/ssh-cli.js";
