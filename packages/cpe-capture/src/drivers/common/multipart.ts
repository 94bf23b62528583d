// A multipart/form-data body of one file part (RFC 7578), framed byte for byte as device REST APIs
// have been sent it: boundary line, Content-Disposition with name and filename, Content-Type, the
// content, CRLF, closing boundary.
import { randomBytes } from "node:crypto";

/** Quotes that would end the header value and line breaks that would end the header are escaped. */
function escapeName(name: string): string {
  return name.replace(/[\r\n"]/g, (c) => (c === "\r" ? "%0D" : c === "\n" ? "%0A" : "%22"));
}

/** `capsync-boundary-` and 25 random characters from [A-Za-z0-9_-], never found in the content. */
function boundaryFor(content: Buffer): string {
  for (;;) {
    const b = `capsync-boundary-${randomBytes(19).toString("base64url").slice(0, 25)}`;
    if (!content.includes(b)) return b;
  }
}

export function multipartFile(field: string, filename: string, type: string, content: string): { contentType: string; body: Buffer } {
  const data = Buffer.from(content, "utf8");
  const boundary = boundaryFor(data);
  const head = `--${boundary}\r\nContent-Disposition: form-data; name="${escapeName(field)}"; filename="${escapeName(filename)}"\r\nContent-Type: ${type.replace(/[\r\n]/g, "")}\r\n\r\n`;
  return {
    contentType: `multipart/form-data; boundary=${boundary}`,
    body: Buffer.concat([Buffer.from(head), data, Buffer.from(`\r\n--${boundary}--\r\n`)]),
  };
}
