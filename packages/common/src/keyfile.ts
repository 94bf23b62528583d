// The v1 pre-shared key file (PROTOCOL.md "Key"): one line of >= 32 printable ASCII characters,
// owned by the running user, not readable by group or others. Read by the agent and the orchestrator;
// the key's use (the HMAC) is the wire format's, in @capsync/protocol.
import { CapsyncError } from "@capsync/protocol";
import { readSecretFile } from "./secret-file.js";

class KeyFileError extends CapsyncError {
  constructor(message: string) {
    super("key-file", message);
  }
}

export function loadKeyFile(path: string): Buffer {
  const key = readSecretFile(path, "key file", "latin1", (m) => new KeyFileError(m)).trim();
  // Never echo the key itself, not even a prefix.
  if (key.length < 32) throw new KeyFileError(`key file ${path}: key is ${key.length} characters, at least 32 required`);
  if (!/^[\x20-\x7e]+$/.test(key)) throw new KeyFileError(`key file ${path}: key must be one line of printable ASCII`);
  return Buffer.from(key, "latin1");
}
