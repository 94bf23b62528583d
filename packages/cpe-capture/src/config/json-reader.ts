// A small JSON reader of our own that keeps the source offset of every key and value, because
// JSON.parse gives no positions for values and Node 20's error messages carry no line numbers
// (and quote the input, which may hold a password). loader.ts turns the offsets into lines.

export type JsonNode =
  | { kind: "object"; start: number; entries: Map<string, { keyStart: number; value: JsonNode }> }
  | { kind: "array"; start: number; items: JsonNode[] }
  | { kind: "scalar"; start: number };

export class JsonSyntax extends Error {
  constructor(
    readonly offset: number,
    message: string,
  ) {
    super(message);
  }
}

const MAX_JSON_DEPTH = 64;

export function parseJson(text: string): { value: unknown; node: JsonNode } {
  let pos = 0;
  const ws = () => {
    while (pos < text.length && (text[pos] === " " || text[pos] === "\t" || text[pos] === "\n" || text[pos] === "\r")) pos++;
  };
  /** Skips white space, then consumes `c` when it comes next. */
  const eat = (c: string): boolean => {
    ws();
    if (text[pos] !== c) return false;
    pos++;
    return true;
  };
  const describeHere = () => (pos >= text.length ? "the end of the file" : `'${text[pos] === "'" ? "\\'" : text[pos]}'`);
  const str = (): string => {
    const start = pos;
    pos++; // opening quote
    for (;;) {
      if (pos >= text.length) throw new JsonSyntax(start, "unterminated string");
      const c = text.charCodeAt(pos);
      if (c === 0x22) break;
      if (c < 0x20) throw new JsonSyntax(pos, "control character in a string (write it as an escape)");
      if (c === 0x5c) {
        const esc = text[pos + 1];
        if (esc === "u") {
          if (!/^[0-9a-fA-F]{4}$/.test(text.slice(pos + 2, pos + 6))) throw new JsonSyntax(pos, "bad \\u escape");
          pos += 6;
          continue;
        }
        if (esc === undefined || !'"\\/bfnrt'.includes(esc)) throw new JsonSyntax(pos, "bad escape in a string");
        pos += 2;
        continue;
      }
      pos++;
    }
    pos++; // closing quote
    return JSON.parse(text.slice(start, pos)) as string;
  };
  const value = (depth: number): { value: unknown; node: JsonNode } => {
    ws();
    const start = pos;
    const c = text[pos];
    if (depth > MAX_JSON_DEPTH) throw new JsonSyntax(start, "nested too deeply");
    if (c === "{") {
      pos++;
      const obj: Record<string, unknown> = {};
      const entries = new Map<string, { keyStart: number; value: JsonNode }>();
      const done = { value: obj, node: { kind: "object", start, entries } as JsonNode };
      if (eat("}")) return done;
      for (;;) {
        ws();
        const keyStart = pos;
        if (text[pos] !== '"') throw new JsonSyntax(pos, `expected a property name in double quotes, found ${describeHere()}`);
        const key = str();
        if (entries.has(key)) throw new JsonSyntax(keyStart, `duplicate key ${JSON.stringify(key)}`);
        if (!eat(":")) throw new JsonSyntax(pos, `expected ':' after a property name, found ${describeHere()}`);
        const v = value(depth + 1);
        // defineProperty, so a "__proto__" key is an ordinary (and later rejected) key.
        Object.defineProperty(obj, key, { value: v.value, enumerable: true, writable: true, configurable: true });
        entries.set(key, { keyStart, value: v.node });
        if (eat(",")) continue;
        if (eat("}")) return done;
        throw new JsonSyntax(pos, `expected ',' or '}' after a property value, found ${describeHere()}`);
      }
    }
    if (c === "[") {
      pos++;
      const arr: unknown[] = [];
      const items: JsonNode[] = [];
      const done = { value: arr, node: { kind: "array", start, items } as JsonNode };
      if (eat("]")) return done;
      for (;;) {
        const v = value(depth + 1);
        arr.push(v.value);
        items.push(v.node);
        if (eat(",")) continue;
        if (eat("]")) return done;
        throw new JsonSyntax(pos, `expected ',' or ']' after an array element, found ${describeHere()}`);
      }
    }
    if (c === '"') return { value: str(), node: { kind: "scalar", start } };
    const num = /-?(?:0|[1-9]\d*)(?:\.\d+)?(?:[eE][+-]?\d+)?/y;
    num.lastIndex = pos;
    const m = num.exec(text);
    if (m) {
      pos = num.lastIndex;
      return { value: Number(m[0]), node: { kind: "scalar", start } };
    }
    for (const [word, v] of [["true", true], ["false", false], ["null", null]] as const) {
      if (text.startsWith(word, pos)) {
        pos += word.length;
        return { value: v, node: { kind: "scalar", start } };
      }
    }
    throw new JsonSyntax(pos, `expected a value, found ${describeHere()}`);
  };
  const root = value(0);
  ws();
  if (pos < text.length) throw new JsonSyntax(pos, `unexpected ${describeHere()} after the end of the document`);
  return root;
}

export function locateJson(root: JsonNode, path: readonly (string | number)[]): number {
  let node = root;
  let offset = root.start;
  for (const seg of path) {
    if (node.kind === "object") {
      const entry = node.entries.get(String(seg));
      if (!entry) break;
      offset = entry.keyStart;
      node = entry.value;
    } else if (node.kind === "array" && typeof seg === "number" && node.items[seg]) {
      node = node.items[seg];
      offset = node.start;
    } else {
      break;
    }
  }
  return offset;
}
