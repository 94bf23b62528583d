// The agent's SFTP server as an emulated device runs it: read-only, the process-wide host key, one
// username/password, on the device's own address.
import { passwordCheck, sharedHostKey, startSftpServer, type SftpServerHandle, type SftpServerOptions } from "@capsync/server-capture/sftp-server";

type DeviceSftpOptions = Pick<SftpServerOptions, "root" | "hooks" | "ident" | "maxAuthFailures" | "sftp">;

/** `device`: its login and SSH port (0 or absent: any free port); `address`: where it listens. */
export function startDeviceSftp(device: { username: string; password: string; sshPort?: number }, address: string, o: DeviceSftpOptions): Promise<SftpServerHandle> {
  return startSftpServer({ ...o, readOnly: true, hostKey: sharedHostKey().parsed, auth: { password: passwordCheck(device.username, device.password) }, host: address, port: device.sshPort ?? 0 });
}
