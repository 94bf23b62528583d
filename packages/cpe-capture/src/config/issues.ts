// How config problems are reported: a PathIssue per problem, values described without echoing
// secrets or control characters, "did you mean" suggestions for mistyped keys, and the Parsed
// result every field parser returns. A leaf: it imports nothing from config/.

/** A problem at a path inside the config value; loader.ts turns the path into file:line. */
export interface PathIssue {
  path: (string | number)[];
  message: string;
  /** Another place the message refers to; the loader appends "(line N)" of it. */
  related?: (string | number)[];
}

/** What every field parser returns: the normal form, or the problems with paths relative to the field. */
export type Parsed<T> = { ok: true; value: T } | { ok: false; issues: PathIssue[] };

export const ok = <T>(value: T): Parsed<T> => ({ ok: true, value });

export const fail = <T = never>(message: string, path: (string | number)[] = []): Parsed<T> => ({
  ok: false,
  issues: [{ path, message }],
});

/** How a value appears in a message: strings quoted and clipped, collections by kind. */
export function describeValue(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "an empty value";
  if (typeof v === "string") {
    const shown = v.length > 60 ? `${v.slice(0, 57)}...` : v;
    return `'${shown.replace(/[\u0000-\u001f\u007f\u2028\u2029]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`)}'`;
  }
  if (typeof v === "number" || typeof v === "boolean") return String(v);
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  return `a ${typeof v}`;
}

/** Kind only, for values that may be secrets. */
export function kindOf(v: unknown): string {
  if (v === null) return "an empty value";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return "a string";
  return `a ${typeof v}`;
}

/** `devices[2].type`; keys that are not identifiers are quoted: `agents["key file"]`. */
export function formatPath(path: readonly (string | number)[]): string {
  if (path.length === 0) return "(top level)";
  let out = "";
  for (const seg of path) {
    if (typeof seg === "number") out += `[${seg}]`;
    else if (/^[A-Za-z_$][\w$-]*$/.test(seg)) out += out === "" ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** The closest candidate for a mistyped key: "pasword" → "password", "key_file" → "keyFile". */
export function suggest(word: string, candidates: readonly string[]): string | undefined {
  const norm = (s: string) => s.toLowerCase().replace(/[-_\s]/g, "");
  const w = norm(word);
  let best: string | undefined;
  let bestDistance = Infinity;
  for (const c of candidates) {
    const d = editDistance(w, norm(c));
    if (d < bestDistance) {
      best = c;
      bestDistance = d;
    }
  }
  const allowed = Math.max(1, Math.floor(w.length / 3));
  return bestDistance <= allowed ? best : undefined;
}

/** Optimal string alignment distance: Levenshtein plus adjacent transpositions ("tpye" → "type" is 1). */
function editDistance(a: string, b: string): number {
  if (a.length > 64 || b.length > 64) return Infinity; // no typo of ours is that long
  const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) => [i]);
  for (let j = 1; j <= b.length; j++) d[0]![j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      let v = Math.min(d[i - 1]![j]! + 1, d[i]![j - 1]! + 1, d[i - 1]![j - 1]! + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) v = Math.min(v, d[i - 2]![j - 2]! + 1);
      d[i]![j] = v;
    }
  }
  return d[a.length]![b.length]!;
}

export function unknownKeyMessage(key: string, allowed: readonly string[]): string {
  const hint = suggest(key, allowed);
  // describeValue escapes control characters: a "\n" in a key must not split the one-line report.
  return hint === undefined ? `unknown key ${describeValue(key)}` : `unknown key ${describeValue(key)} (did you mean '${hint}'?)`;
}

/** One issue per key of `v` that is not in `allowed`, at that key. */
export function unknownKeys(v: Record<string, unknown>, allowed: readonly string[]): PathIssue[] {
  return Object.keys(v)
    .filter((k) => !allowed.includes(k))
    .map((k) => ({ path: [k], message: unknownKeyMessage(k, allowed) }));
}

/** The issues of a nested value, moved under `path`. */
export function prefix(path: (string | number)[], issues: PathIssue[]): PathIssue[] {
  return issues.map((i) => ({ path: [...path, ...i.path], message: i.message }));
}

/** The value of `r`, or undefined with its issues pushed under `path`. */
export function take<T>(r: Parsed<T>, path: (string | number)[], issues: PathIssue[]): T | undefined {
  if (r.ok) return r.value;
  issues.push(...prefix(path, r.issues));
  return undefined;
}

/** A single item where a list is expected is taken as a list of one. */
export function listOf<T>(parse: (v: unknown) => Parsed<T>) {
  return (v: unknown): Parsed<T[]> => {
    if (!Array.isArray(v)) {
      const one = parse(v);
      return one.ok ? ok([one.value]) : one;
    }
    const out: T[] = [];
    const issues: PathIssue[] = [];
    v.forEach((item, i) => {
      const r = parse(item);
      if (r.ok) out.push(r.value);
      else issues.push(...prefix([i], r.issues));
    });
    return issues.length === 0 ? ok(out) : { ok: false, issues };
  };
}

/** A mapping as YAML/JSON produce it (no class instances). */
export function isPlainObject(v: unknown): v is Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) return false;
  const proto = Object.getPrototypeOf(v);
  return proto === Object.prototype || proto === null;
}

/** Any non-list object: the storage and notify sections accept objects built in code, too. */
export function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}
