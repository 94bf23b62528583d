// One self-signed TLS certificate shared by every emulated device in the process.
// Generating a key per device would dominate start-up of a 1000-device fleet; a device's real
// certificate is per box, which callers can still get by passing their own `tls` to a device.
import { generate } from "selfsigned";

export interface TlsMaterial {
  /** PEM private key. */
  key: string;
  /** PEM certificate; also the CA a client trusts for `tls: { ca }` (it is self-signed). */
  cert: string;
}

/**
 * Addresses the shared certificate is valid for: localhost, ::1 and 127.0.0.1–127.0.0.254.
 * Devices on other loopback addresses (large fleets) are reached with `tls: insecure`, or
 * given a certificate of their own.
 */
const SHARED_CERT_HOSTS: readonly string[] = [
  "localhost",
  "::1",
  ...Array.from({ length: 254 }, (_, i) => `127.0.0.${i + 1}`),
];

let cached: Promise<TlsMaterial> | undefined;

/** The process-wide emulator certificate (generated once, EC P-256, SHA-256, valid 2 years). */
export function sharedTlsCertificate(): Promise<TlsMaterial> {
  cached ??= (async () => {
    const notBeforeDate = new Date(Date.now() - 24 * 3600_000);
    const notAfterDate = new Date(notBeforeDate.getTime() + 2 * 365 * 24 * 3600_000);
    const pems = await generate([{ name: "commonName", value: "capsync-emulator" }], {
      keyType: "ec",
      curve: "P-256",
      algorithm: "sha256",
      notBeforeDate,
      notAfterDate,
      extensions: [
        { name: "basicConstraints", cA: false },
        { name: "keyUsage", digitalSignature: true, keyEncipherment: true },
        { name: "extKeyUsage", serverAuth: true },
        {
          name: "subjectAltName",
          altNames: SHARED_CERT_HOSTS.map((h) => (h === "localhost" ? { type: 2 as const, value: h } : { type: 7 as const, ip: h })),
        },
      ],
    });
    return { key: pems.private, cert: pems.cert };
  })();
  // A failed generation must not poison every later device start.
  cached.catch(() => {
    cached = undefined;
  });
  return cached;
}
