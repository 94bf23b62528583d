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

export type JsonStringsResult<K extends string> =
  | { ok: true; value: Partial<Record<K, string>> }
  | { ok: false; code: "not-json" | "not-object" | "bad-field"; field?: K };

/**
 * The named string fields of a JSON object answer. `required`: each must be a non-empty string;
 * otherwise each is a string or absent. The first field that is not names the failure.
 * @example jsonStrings('{"status":"success"}', ["status", "output"], false) → { ok: true, value: { status: "success" } }
 */
export function jsonStrings<K extends string>(text: string, fields: readonly K[], required: boolean): JsonStringsResult<K> {
  const j = jsonObject(text);
  if (!j.ok) return j;
  const value: Partial<Record<K, string>> = {};
  for (const f of fields) {
    const v = j.value[f];
    if (v === undefined && !required) continue;
    if (typeof v !== "string" || (required && v === "")) return { ok: false, code: "bad-field", field: f };
    value[f] = v;
  }
  return { ok: true, value };
}
