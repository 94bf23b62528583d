// What every capsync HTTPS client shares (the device REST APIs in cpe-capture, the OVOC API in
// server-capture): the trust policy, Basic credentials and their secrets, and the HTTP client
// settings that return any answer as text (for an axios client), and one exchange under a hard time
// limit. Not here: the HTTP library itself (each caller owns its own), paths and bodies, and what a
// status or an error means to each caller.
import { Agent as HttpsAgent } from "node:https";
import { createSecureContext, type SecureContext } from "node:tls";

/** verify: the system CAs; insecure: any certificate (a self-signed device); ca: these PEM certificates. */
export type HttpsTrust = { mode: "verify" } | { mode: "insecure" } | { mode: "ca"; ca: string };

/** Node's error codes for a server certificate the client does not trust: no retry cures them. */
export const TLS_TRUST_CODES: ReadonlySet<string> = new Set([
  "DEPTH_ZERO_SELF_SIGNED_CERT",
  "SELF_SIGNED_CERT_IN_CHAIN",
  "UNABLE_TO_VERIFY_LEAF_SIGNATURE",
  "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
  "UNABLE_TO_GET_ISSUER_CERT",
  "CERT_HAS_EXPIRED",
  "CERT_NOT_YET_VALID",
  "ERR_TLS_CERT_ALTNAME_INVALID",
  "CERT_UNTRUSTED",
  "CERT_SIGNATURE_FAILURE",
]);

/** The code of a failed request: the error's own, else its cause's (axios wraps the socket error), else "". */
export function transportErrorCode(err: unknown): string {
  const e = err as { code?: string; cause?: { code?: string } };
  return e.code ?? e.cause?.code ?? "";
}

/** The Basic token: base64 of `username:password`. */
function basicToken(username: string, password: string): string {
  return Buffer.from(`${username}:${password}`).toString("base64");
}

/** The Authorization header value of Basic credentials. */
export function basicAuthorization(username: string, password: string): string {
  return `Basic ${basicToken(username, password)}`;
}

/** The password and its Basic form: what `redact` must take out of any text that leaves a client. */
export function basicSecrets(username: string, password: string): string[] {
  return [password, basicToken(username, password)];
}

/**
 * One TLS context per set of trusted CAs (the system's, or a config's PEM text), shared by every
 * connection. Without it Node builds a context, CA store included, for each connection: a fleet of a
 * thousand devices would build a thousand of them on every start and again on every stop.
 */
const secureContexts = new Map<string, SecureContext>();
function sharedSecureContext(ca: string | undefined): SecureContext {
  let c = secureContexts.get(ca ?? "");
  if (!c) {
    c = createSecureContext(ca === undefined ? {} : { ca });
    secureContexts.set(ca ?? "", c);
  }
  return c;
}

/** The agent for one server; `trust.ca` is PEM text here (reading a file is the caller's). */
export function httpsAgent(trust: HttpsTrust, opts: { keepAlive: boolean; maxSockets?: number }): HttpsAgent {
  return new HttpsAgent({
    keepAlive: opts.keepAlive,
    ...(opts.maxSockets !== undefined ? { maxSockets: opts.maxSockets } : {}),
    // A certificate that is not trusted is accepted only when the configuration says so
    // (a connection option: the shared context holds only the CAs).
    rejectUnauthorized: trust.mode !== "insecure",
    secureContext: sharedSecureContext(trust.mode === "ca" ? trust.ca : undefined),
  });
}

/**
 * axios settings for a client that reads every answer itself: no proxy (an HTTPS_PROXY in the
 * environment must neither divert the traffic nor see the Basic credentials), no redirects, bodies
 * up to 4 MiB returned as raw text, and no status treated as an error.
 */
function textClientSettings() {
  return {
    proxy: false as const,
    maxRedirects: 0,
    maxContentLength: 4 * 1024 * 1024,
    validateStatus: () => true,
    responseType: "text" as const,
    transformResponse: [(d: unknown) => d],
  };
}

/** The `axios.create` settings of a Basic-auth client of one server: text answers, the given agent, `headers` after Authorization. */
export function basicClientSettings(o: { baseURL: string; agent: HttpsAgent; username: string; password: string; headers: Record<string, string> }) {
  return {
    baseURL: o.baseURL,
    httpsAgent: o.agent,
    ...textClientSettings(),
    headers: { Authorization: basicAuthorization(o.username, o.password), ...o.headers },
  };
}

/**
 * One exchange under a hard time limit: `send` gets a signal aborted after `timeoutMs`; whatever it
 * throws goes through `failure`, told whether the limit had passed, and its error is thrown instead.
 */
export async function requestWithin<T>(timeoutMs: number, send: (signal: AbortSignal) => Promise<T>, failure: (err: unknown, timedOut: boolean) => Error): Promise<T> {
  const ctl = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    ctl.abort();
  }, timeoutMs);
  try {
    return await send(ctl.signal);
  } catch (err) {
    throw failure(err, timedOut);
  } finally {
    clearTimeout(timer);
  }
}
