// Reads run.yaml / run.json and reports every problem as `<file>:<line> <path>: <message>`
// (syntax errors as `<file>:<line>:<col> <message>`), sorted by line, before anything starts.

import { open } from "node:fs/promises";
import { dirname, extname } from "node:path";
import { ConfigError, redact } from "@capsync/protocol";
import { isAlias, isMap, isScalar, isSeq, LineCounter, parseDocument, visit, type Document, type Node as YamlNode, type Pair, type YAMLError, type YAMLMap } from "yaml";
import { captureNotes } from "./capture.js";
import { checkConfig } from "./check.js";
import { formatPath, isPlainObject, type PathIssue } from "./issues.js";
import { JsonSyntax, locateJson, parseJson } from "./json-reader.js";
import type { RunConfig } from "./run-config.js";

export interface ConfigIssue {
  /** The file as the user named it; undefined for configs built from objects. */
  file: string | undefined;
  /** 1-based; 0 when there is no position (object input, unreadable file). */
  line: number;
  /** Set for syntax errors only. */
  col?: number;
  /** `devices[2].type`; "" for syntax errors and whole-file problems. */
  path: string;
  message: string;
}

/** A config that cannot be used. `message` holds every issue, one formatted line each. */
export class ConfigFileError extends ConfigError {
  readonly issues: readonly ConfigIssue[];
  constructor(issues: readonly ConfigIssue[], options?: { cause?: unknown }) {
    super(issues.map(formatIssue).join("\n"), options);
    this.issues = issues;
  }
}

export interface LoadedConfig {
  config: RunConfig;
  /** Formatted like errors; worth logging, not worth stopping for. */
  warnings: string[];
  /** Values rewritten to their canonical form, formatted like errors: `run.yaml:9 capture.direction: ingress → in`. */
  notes: string[];
}

export type ConfigFormat = "yaml" | "json";

/** `run.yaml:14 devices[2].type: expected ...`, `run.yaml:3:7 YAML: ...`, `devices[0].password: ...`. */
export function formatIssue(i: ConfigIssue): string {
  const col = i.col === undefined ? "" : `:${i.col}`;
  const where = i.file === undefined ? "" : i.line > 0 ? `${i.file}:${i.line}${col}` : i.file;
  // After a bare file name a colon reads better ("run.yaml: cannot read"); after file:line, a space.
  const sep = i.line > 0 ? " " : ": ";
  const what = i.path === "" ? i.message : `${i.path}: ${i.message}`;
  return where === "" ? what : `${where}${sep}${what}`;
}

/**
 * Config files beyond this are a mistake (a capture file passed by accident), not a config. Sized for
 * a site's whole fleet in one file: a device entry is ~170 bytes, so 16 MiB holds ~100,000 devices.
 */
export const MAX_CONFIG_BYTES = 16 << 20;

/**
 * Load and validate a config file. Relative paths inside it are resolved against its folder.
 * @throws ConfigFileError (a ConfigError) listing every problem; nothing else.
 */
export async function loadConfig(path: string, opts: { format?: ConfigFormat } = {}): Promise<LoadedConfig> {
  let bytes: Buffer;
  try {
    bytes = await readBounded(path, MAX_CONFIG_BYTES);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why =
      code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a folder, not a file" : code === "EACCES" ? "permission denied" : String((e as Error).message);
    throw new ConfigFileError([{ file: path, line: 0, path: "", message: `cannot read the config: ${why}` }], { cause: e });
  }
  if (bytes.length > MAX_CONFIG_BYTES) {
    throw new ConfigFileError([{ file: path, line: 0, path: "", message: `too large for a config file (over ${MAX_CONFIG_BYTES} bytes)` }]);
  }
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true }).decode(bytes);
  } catch (e) {
    throw new ConfigFileError([{ file: path, line: 0, path: "", message: "not UTF-8 text" }], { cause: e });
  }
  return parseConfigText(text, { file: path, baseDir: dirname(path), format: opts.format });
}

/** At most `limit + 1` bytes, so a huge file or an endless device (`/dev/zero`) is refused cheaply. */
async function readBounded(path: string, limit: number): Promise<Buffer> {
  const handle = await open(path, "r");
  try {
    const chunks: Buffer[] = [];
    let total = 0;
    while (total <= limit) {
      const chunk = Buffer.alloc(Math.min(64 * 1024, limit + 1 - total));
      const { bytesRead } = await handle.read(chunk, 0, chunk.length, null);
      if (bytesRead === 0) break;
      chunks.push(chunk.subarray(0, bytesRead));
      total += bytesRead;
    }
    return Buffer.concat(chunks);
  } finally {
    await handle.close();
  }
}

/** Validate config text (already read). `file` is only used in messages and for `configFile`. */
export function parseConfigText(
  text: string,
  opts: { file: string; baseDir: string; format?: ConfigFormat | undefined },
): LoadedConfig {
  const format = opts.format ?? (extname(opts.file).toLowerCase() === ".json" ? "json" : "yaml");
  const source = text.startsWith("\uFEFF") ? text.slice(1) : text;
  const lines = new LineCounter();
  const parsed = format === "json" ? readJson(source, lines) : readYaml(source, lines);
  const at = (offset: number) => {
    const pos = lines.linePos(offset);
    // line 0 means "before the first recorded line start": an empty or one-line source.
    return pos.line > 0 ? pos : { line: 1, col: offset + 1 };
  };
  // Plain passwords are also found by a line scan of the text: a file that does not parse still has
  // them, and YAML can move one out of its field (a `? ` complex key is stringified whole into a key).
  const secrets = [...(parsed.ok ? plainSecrets(parsed.value) : []), ...looseSecrets(source)];
  const syntaxIssue = (s: SyntaxProblem): Located => {
    const pos = at(s.offset);
    return { offset: s.offset, issue: { file: opts.file, line: pos.line, col: pos.col, path: "", message: s.message } };
  };
  const syntaxWarnings = sorted(parsed.warnings.map(syntaxIssue), secrets).map(formatIssue);
  if (!parsed.ok) throw new ConfigFileError(sorted(parsed.errors.map(syntaxIssue), secrets));

  const result = checkConfig(parsed.value, { baseDir: opts.baseDir, configFile: opts.file });
  const locate = (p: PathIssue): Located => {
    const offset = parsed.locate(p.path);
    const message = p.related ? `${p.message} (line ${at(parsed.locate(p.related)).line})` : p.message;
    return { offset, issue: { file: opts.file, line: at(offset).line, path: formatPath(p.path), message } };
  };
  if (result.config === undefined) throw new ConfigFileError(sorted(result.issues.map(locate), secrets));
  return {
    config: result.config,
    warnings: [...syntaxWarnings, ...sorted(result.warnings.map(locate), secrets).map(formatIssue)],
    notes: sorted(captureNotes(parsed.value).map(locate), secrets).map(formatIssue),
  };
}

interface Located {
  issue: ConfigIssue;
  /** Source offset: orders issues on one line (items of a flow list) as they appear. */
  offset: number;
}

/** In file order (stable for one position), duplicates dropped, plain passwords masked. */
function sorted(located: Located[], secrets: string[]): ConfigIssue[] {
  const seen = new Set<string>();
  return [...located]
    .sort((a, b) => a.offset - b.offset)
    .map(({ issue }) => ({ ...issue, path: redact(issue.path, secrets), message: redact(issue.message, secrets) }))
    .filter((i) => {
      const k = formatIssue(i);
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    });
}

/** Validate a config built in code (interactive mode, tests): same checks, messages without lines. */
export function configFromObject(raw: unknown, opts: { baseDir: string }): LoadedConfig {
  const result = checkConfig(raw, { baseDir: opts.baseDir });
  const secrets = plainSecrets(raw);
  const plain = (p: PathIssue, i: number): Located => ({
    offset: i,
    issue: { file: undefined, line: 0, path: formatPath(p.path), message: p.message },
  });
  if (result.config === undefined) throw new ConfigFileError(sorted(result.issues.map(plain), secrets));
  return { config: result.config, warnings: sorted(result.warnings.map(plain), secrets).map(formatIssue), notes: sorted(captureNotes(raw).map(plain), secrets).map(formatIssue) };
}

/**
 * Plain-string passwords found in the raw value. Messages are built so they never contain one;
 * this is the second lock, for messages from code that did not know a value was a secret.
 */
function plainSecrets(raw: unknown): string[] {
  if (!isPlainObject(raw) || !Array.isArray(raw.devices)) return [];
  return raw.devices.flatMap((d) => (isPlainObject(d) && typeof d.password === "string" ? [d.password] : []));
}

/** Values of `password:` keys as written on their line (quoted or not, comment or not), for files that do not parse. */
function looseSecrets(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/["']?password["']?[ \t]*:[ \t]*(.*)$/gim)) {
    const raw = m[1]!.trim();
    const noComment = raw.replace(/\s+#.*$/, "").replace(/[,}\]\s]+$/, "");
    const unquoted = noComment.replace(/^(["'])(.*)\1$/, "$2");
    // Booleans, numbers, null and collections are not plain-string passwords (and redacting "false"
    // would garble "expected true or false").
    if (unquoted === noComment && /^(true|false|null|~|[-+]?[\d.][\d._]*([eE][-+]?\d+)?|0x[\da-f]+|0o[0-7]+|[-+]?\.inf|\.nan|[[{|>&*!].*)$/i.test(unquoted)) continue;
    out.push(raw, noComment, unquoted);
  }
  return out;
}

// ---------------------------------------------------------------------------------------------
// Parsing with positions. Both readers give the value plus `locate(path)` → source offset.

interface SyntaxProblem {
  offset: number;
  message: string;
}
type Read =
  | { ok: true; value: unknown; locate: (path: readonly (string | number)[]) => number; warnings: SyntaxProblem[] }
  | { ok: false; errors: SyntaxProblem[]; warnings: SyntaxProblem[] };

function readYaml(text: string, lines: LineCounter): Read {
  let doc: Document.Parsed;
  try {
    doc = parseDocument(text, {
      lineCounter: lines,
      prettyErrors: false,
      uniqueKeys: true,
      merge: true, // `<<: *defaults` is the YAML way to share device settings
      // JSON-like values only: no dates, binary or sets even under `%YAML 1.1` or explicit tags.
      schema: "core",
      resolveKnownTags: false,
    });
  } catch (e) {
    // The parser reports problems in doc.errors; a throw is something like a stack overflow on
    // absurd nesting. Still a bad config, not a crash.
    return { ok: false, errors: [{ offset: 0, message: `YAML: cannot parse (${(e as Error).message})` }], warnings: [] };
  }
  // The library quotes the offending source text in some messages; that text may be a password,
  // so keep what went wrong and where (line:col), never the text.
  const first = (m: string) => m.split("\n")[0]!.replace(/^(.*? token in YAML stream|Not a YAML token|Block scalar header includes extra characters)\b.*$/, "$1");
  const warnings = doc.warnings.map((w) => ({ offset: w.pos[0], message: `YAML: ${first(w.message)}` }));
  if (doc.errors.length > 0) {
    const message = (e: YAMLError) =>
      // The library's own text suggests calling parseAllDocuments(); say what the user can do.
      e.code === "MULTIPLE_DOCS" ? "only one document is allowed; remove the second '---'" : first(e.message);
    return { ok: false, errors: doc.errors.map((e) => ({ offset: e.pos[0], message: `YAML: ${message(e)}` })), warnings };
  }
  // toJS() would throw on these, naming the alias; a mistyped `password: *secret` would then
  // print the secret. Report them here, by position only.
  const unresolved: SyntaxProblem[] = [];
  visit(doc, {
    Alias(_key, node) {
      if (node.resolve(doc) === undefined) {
        unresolved.push({ offset: node.range?.[0] ?? 0, message: "YAML: alias (*name) without an anchor (&name) before it" });
      }
    },
  });
  if (unresolved.length > 0) return { ok: false, errors: unresolved, warnings };
  let value: unknown;
  try {
    // maxAliasCount bounds "billion laughs" alias expansion.
    value = doc.toJS({ maxAliasCount: 100 });
  } catch (e) {
    return { ok: false, errors: [{ offset: 0, message: `YAML: ${first((e as Error).message)}` }], warnings };
  }
  return { ok: true, value: value ?? null, locate: (path) => locateYaml(doc, path), warnings };
}

/**
 * Offset of the thing a path names: the key of the last mapping entry (where a reader looks, also
 * when the value is a block on the next lines), or the start of the last list item. When the path
 * goes further than the file (a missing key), the deepest part that exists.
 */
function locateYaml(doc: Document.Parsed, path: readonly (string | number)[]): number {
  let node: unknown = doc.contents;
  let offset = (doc.contents as YamlNode | null)?.range?.[0] ?? 0;
  for (const seg of path) {
    node = deref(doc, node);
    if (isMap(node)) {
      const pair = findPair(doc, node, String(seg), 0);
      if (!pair) break;
      const keyOffset = (pair.key as YamlNode | null)?.range?.[0];
      if (keyOffset !== undefined) offset = keyOffset;
      node = pair.value;
    } else if (isSeq(node) && typeof seg === "number") {
      const item = node.items[seg] as YamlNode | undefined;
      if (!item) break;
      offset = deref(doc, item)?.range?.[0] ?? offset;
      node = item;
    } else {
      break;
    }
  }
  return offset;
}

function deref(doc: Document.Parsed, node: unknown): YamlNode | undefined {
  let n = node;
  for (let i = 0; i < 8 && isAlias(n); i++) n = n.resolve(doc);
  return (n ?? undefined) as YamlNode | undefined;
}

/** The entry for `key`, looking into `<<` merge sources when the map itself lacks it. */
function findPair(doc: Document.Parsed, map: YAMLMap<unknown, unknown>, key: string, depth: number): Pair<unknown, unknown> | undefined {
  const own = map.items.find((p) => isScalar(p.key) && typeof p.key.value !== "symbol" && String(p.key.value) === key);
  if (own || depth > 4) return own;
  for (const p of map.items) {
    if (!isScalar(p.key) || typeof p.key.value !== "symbol") continue; // only merge keys (`<<`)
    const sources = isSeq(p.value) ? p.value.items : [p.value];
    for (const s of sources) {
      const target = deref(doc, s);
      if (isMap(target)) {
        const found = findPair(doc, target, key, depth + 1);
        if (found) return found;
      }
    }
  }
  return undefined;
}

/** JSON through json-reader.ts, with the same result shape as readYaml. */
function readJson(text: string, lines: LineCounter): Read {
  // The YAML lexer fills a LineCounter as it goes; for JSON we do it ourselves.
  lines.addNewLine(0);
  for (let i = text.indexOf("\n"); i >= 0; i = text.indexOf("\n", i + 1)) lines.addNewLine(i + 1);
  try {
    const { value, node } = parseJson(text);
    return { ok: true, value, locate: (path) => locateJson(node, path), warnings: [] };
  } catch (e) {
    if (e instanceof JsonSyntax) return { ok: false, errors: [{ offset: e.offset, message: `JSON: ${e.message}` }], warnings: [] };
    throw e;
  }
}
