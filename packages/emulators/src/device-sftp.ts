// The agent's SFTP server as an emulated device runs it: its files under a root jail, read-only, the
// process-wide host key, one username/password, on the device's own address.
import { sharedHostKey } from "@capsync/server-capture/sftp-keys";
import { passwordCheck, startSftpServer, type SftpServerHandle, type SftpServerOptions } from "@capsync/server-capture/sftp-jail";

type DeviceSftpOptions = Pick<SftpServerOptions, "root" | "hooks" | "ident" | "maxAuthFailures" | "sftp">;

/** `device`: its login and SSH port (0 or absent: any free port); `address`: where it listens. */
export function startDeviceSftp(device: { username: string; password: string; sshPort?: number }, address: string, o: DeviceSftpOptions): Promise<SftpServerHandle> {
  return startSftpServer({ ...o, readOnly: true, hostKey: sharedHostKey().parsed, auth: { password: passwordCheck(device.username, device.password) }, host: address, port: device.sshPort ?? 0 });
}

/** A device's file fault on what one READ returns: "truncate" ends the file at `at`, "bad-magic" overwrites its first 4 bytes. */
export function corruptRead(fault: { kind: "truncate" | "bad-magic"; at: number }, position: number, data: Buffer): Buffer {
  if (fault.kind === "truncate") return position >= fault.at ? Buffer.alloc(0) : data.subarray(0, fault.at - position);
  if (position > 0) return data;
  const out = Buffer.from(data);
  out.write("XXXX", 0, Math.min(4, out.length), "latin1");
  return out;
}
