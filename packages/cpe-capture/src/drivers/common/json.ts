// Reading a REST answer body as one JSON object (RFC 8259), the first step of every driver's answer
// parser. Device input: never throws. Not here: what the fields mean (each vendor's parser).

export type JsonObjectResult = { ok: true; value: Record<string, unknown> } | { ok: false; code: "not-json" | "not-object" };

/** @example jsonObject('{"status":"success"}') → { ok: true, value: { status: "success" } }; jsonObject("[]") → { ok: false, code: "not-object" } */
export function jsonObject(text: string): JsonObjectResult {
  let v: unknown;
  try {
    v = JSON.parse(text);
  } catch {
    return { ok: false, code: "not-json" };
  }
  if (typeof v !== "object" || v === null || Array.isArray(v)) return { ok: false, code: "not-object" };
  return { ok: true, value: v as Record<string, unknown> };
}
