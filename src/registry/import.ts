/**
 * Streaming record readers for import files (`jpki registry import FILE`, and later change notices and
 * issuance batches): JSON Lines (https://jsonlines.org) and CSV with a header row (RFC 4180).
 * shared/spec/JPKI.md "The link between the two networks": the registry side receives records in bulk.
 *
 * The readers are record-agnostic: they yield plain objects and leave the meaning of fields to the caller
 * (e.g. `parseResidentRecord`). They never hold more than one record in memory, so a file of millions of
 * residents streams through; a record longer than `maxRecordChars` is reported and skipped rather than
 * buffered. Problems with one record are yielded as `{ line, error }` and reading goes on; only problems
 * with the file as a whole (unreadable, bad CSV header) are thrown, and those are met before the first
 * record is yielded. A caller that commits in batches therefore never stops half-way because of one bad
 * line: it applies the rest and reports the bad ones (issue 7 point 5).
 *
 * Bad lines, each an `ERR_IMPORT_FORMAT` whose `details.problem` says which kind:
 * - `invalid-utf8`: the line's bytes are not UTF-8 (each physical line is decoded on its own, so a broken
 *   byte costs one line, not the file);
 * - `bare-cr`: a CR not followed by LF outside a quoted CSV field, usually a file with CR-only (old Mac)
 *   line ends: such a file is one long bad line 1;
 * - `lone-surrogate`: a JSON string or key with an unpaired `\ud800`–`\udfff` escape (not Unicode text);
 * - `field-too-long`: a value longer than `maxFieldChars`, named by its field;
 * - `too-long`: a record longer than `maxRecordChars`;
 * - `too-deep`: a JSON record nesting objects and arrays more than {@link MAX_JSON_DEPTH} levels (none of our
 *   formats nests more than two levels; a deeper record would overflow the stack of whoever later serialises it, e.g.
 *   into a reject file or across a thread);
 * - `duplicate-key` (JSON Lines, with `rejectDuplicateKeys`): the record's object names a field twice. JSON.parse
 *   keeps the last; another reader (the sender's own tools) may keep the first, so the record is ambiguous;
 * - `malformed-json`, `not-an-object`, `csv-syntax`, `csv-unclosed-quote`, `csv-field-count`.
 *
 * Messages say which line and what is wrong, never the line's content: the content is personal data.
 */
import { createReadStream } from "node:fs";
import { extname } from "node:path";
import { JpkiError } from "../errors.js";

export type ImportFormat = "jsonl" | "csv";

export interface ReadRecordsOptions {
  /** "auto" (default): by file extension, else `{` as first non-blank character means JSON Lines. */
  readonly format?: ImportFormat | "auto";
  /** Longest record accepted, in UTF-16 code units; longer ones are reported and skipped. Default 1 MiB. */
  readonly maxRecordChars?: number;
  /** Longest field value (or JSON key) accepted, in UTF-16 code units; the record is reported. Default 4096. */
  readonly maxFieldChars?: number;
  /** Called with each chunk's size as it is read, for progress over a file of known size. */
  readonly onBytes?: (n: number) => void;
  /**
   * JSON Lines: refuse a record whose object names a field twice (`duplicate-key`) instead of keeping the last.
   * Costs one scan of each line; callers whose records decide who gets what (issuance batches) turn it on.
   */
  readonly rejectDuplicateKeys?: boolean;
}

/** One record, or why the record at that line could not be read. `line` is 1-based, physical. */
export type RecordResult =
  | {
      readonly line: number;
      readonly value: Record<string, unknown>;
      /** JSON Lines: the line the value was parsed from (it parses to the same value), so a record need not be re-serialised to be passed on as text */
      readonly text?: string;
    }
  | { readonly line: number; readonly error: JpkiError };

export const DEFAULT_MAX_RECORD_CHARS = 1 << 20;
export const DEFAULT_MAX_FIELD_CHARS = 4096;

const EXTENSIONS: ReadonlyMap<string, ImportFormat> = new Map<string, ImportFormat>([
  [".jsonl", "jsonl"], [".ndjson", "jsonl"], [".json", "jsonl"], [".csv", "csv"],
]);

/** The format a file name implies, or undefined when its extension says nothing. */
export function formatFromPath(path: string): ImportFormat | undefined {
  return EXTENSIONS.get(extname(path).toLowerCase());
}

/**
 * Reads records from a file path or a byte/string stream, one at a time.
 *
 * JSON Lines: one JSON object per line, blank lines skipped. CSV: a header row naming the fields, then one
 * record per row; fields may be quoted with `"` (containing commas, line breaks and `""` for a quote).
 * Both: UTF-8 with or without a BOM, LF or CRLF line ends.
 */
export async function* readRecords(
  input: NodeJS.ReadableStream | string,
  opts: ReadRecordsOptions = {},
): AsyncGenerator<RecordResult, void, undefined> {
  const limits: Limits = {
    record: positive(opts.maxRecordChars ?? DEFAULT_MAX_RECORD_CHARS, "maxRecordChars"),
    field: positive(opts.maxFieldChars ?? DEFAULT_MAX_FIELD_CHARS, "maxFieldChars"),
    duplicateKeys: opts.rejectDuplicateKeys === true,
  };
  const requested = opts.format ?? "auto";
  if (requested !== "auto" && requested !== "jsonl" && requested !== "csv") {
    throw new JpkiError("ERR_USAGE", `unknown import format ${JSON.stringify(String(requested))}: use jsonl, csv or auto`);
  }
  const path = typeof input === "string" ? input : undefined;
  const stream = typeof input === "string" ? createReadStream(input) : input;
  try {
    let lines = physicalLines(stream, path, limits.record, opts.onBytes);
    let format: ImportFormat | undefined = requested === "auto" ? (path ? formatFromPath(path) : undefined) : requested;
    if (!format) ({ format, lines } = await sniff(lines));
    yield* format === "jsonl" ? jsonLines(lines, limits) : csvRecords(lines, limits);
  } finally {
    // Stopping early (a `break` in the caller) must not leave the file open.
    if (typeof input === "string") (stream as ReturnType<typeof createReadStream>).destroy();
  }
}

interface Limits {
  readonly record: number;
  readonly field: number;
  /** JSON Lines: refuse a repeated field name (ReadRecordsOptions.rejectDuplicateKeys) */
  readonly duplicateKeys?: boolean;
}

function positive(n: number, name: string): number {
  if (!Number.isInteger(n) || n < 1) throw new JpkiError("ERR_CONFIG_INVALID", `${name} must be a positive integer`);
  return n;
}

// ---------------------------------------------------------------------------------------------------------
// Bytes → physical lines → text

interface PhysicalLine {
  readonly line: number;
  /** the line without its terminator (a CR before the LF belongs to the terminator) */
  readonly text: string;
  /** "\n", "\r\n", or "" for the last line of a file without a final line break */
  readonly eol: string;
  /**
   * Set when the line cannot be used. `too-long`: `text` is empty. `invalid-utf8`: `text` is the line
   * decoded with U+FFFD for the broken bytes, good only for finding CSV quotes and commas (which are ASCII
   * and survive), never for values.
   */
  readonly bad?: "too-long" | "invalid-utf8";
  /** the text holds a CR (not the one of a CRLF line end) */
  readonly cr?: true;
  /** the text holds a backslash followed by `u`: a JSON escape that may spell a lone surrogate */
  readonly escape?: true;
}

/**
 * Splits the bytes at LF, then decodes each physical line on its own with a fatal decoder, holding at most
 * one line (plus the chunk in hand). Since LF never occurs inside a UTF-8 sequence, the complete lines of a
 * chunk are first decoded together; only a chunk that fails is decoded again line by line.
 */
async function* physicalLines(
  stream: NodeJS.ReadableStream,
  path: string | undefined,
  maxChars: number,
  onBytes?: (n: number) => void,
): AsyncGenerator<PhysicalLine> {
  // fatal: a name with a broken byte must be rejected, not silently turned into U+FFFD.
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  // A UTF-16 code unit takes at most 3 UTF-8 bytes: a line of more bytes is too long whatever it holds.
  const maxBytes = maxChars * 3;
  let line = 0;
  let pending: Buffer[] = []; // bytes of the line not yet ended by a LF
  let pendingBytes = 0;
  let skipping = false; // inside an over-long line, already reported: drop bytes until its LF

  const decode = (bytes: Uint8Array): string | undefined => {
    try {
      return decoder.decode(bytes);
    } catch {
      return undefined;
    }
  };
  /**
   * `scan`: whether the line may hold a CR or a backslash at all. A block of bytes without byte 0x0D or
   * 0x5C (which in UTF-8 occur only as themselves) needs no search per line.
   */
  function make(text: string, eol: "\n" | "", scan: boolean, bad?: "invalid-utf8"): PhysicalLine {
    line++;
    let end = text.length;
    const crlf = eol === "\n" && scan && text.charCodeAt(end - 1) === 13;
    if (crlf) end--;
    const start = line === 1 && text.charCodeAt(0) === 0xfeff ? 1 : 0;
    if (end - start > maxChars) return { line, text: "", eol, bad: "too-long" };
    const t = start === 0 && end === text.length ? text : text.slice(start, end);
    const l: { -readonly [K in keyof PhysicalLine]: PhysicalLine[K] } = { line, text: t, eol: crlf ? "\r\n" : eol };
    if (scan) {
      if (t.includes("\r")) l.cr = true;
      if (t.includes("\\u")) l.escape = true;
    }
    if (bad) l.bad = bad;
    return l;
  }
  const mayScan = (bytes: Uint8Array): boolean => bytes.indexOf(13) >= 0 || bytes.indexOf(0x5c) >= 0;
  function one(bytes: Uint8Array, eol: "\n" | ""): PhysicalLine {
    if (bytes.length > maxBytes) {
      line++;
      return { line, text: "", eol, bad: "too-long" };
    }
    const decoded = decode(bytes);
    if (decoded !== undefined) return make(decoded, eol, mayScan(bytes));
    return make(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength).toString("utf8"), eol, true, "invalid-utf8");
  }
  /** The lines of `bytes`, which holds whole lines, each ending in LF (at most a chunk's worth). */
  function block(bytes: Buffer): PhysicalLine[] {
    const out: PhysicalLine[] = [];
    const text = decode(bytes);
    if (text !== undefined) {
      const scan = mayScan(bytes);
      for (let start = 0; start < text.length; ) {
        const nl = text.indexOf("\n", start);
        out.push(make(text.slice(start, nl), "\n", scan));
        start = nl + 1;
      }
    } else {
      for (let start = 0; start < bytes.length; ) {
        const nl = bytes.indexOf(10, start);
        out.push(one(bytes.subarray(start, nl), "\n"));
        start = nl + 1;
      }
    }
    return out;
  }

  const chunks = (stream as AsyncIterable<Buffer | string>)[Symbol.asyncIterator]();
  try {
    for (;;) {
      let next: IteratorResult<Buffer | string>;
      try {
        next = await chunks.next();
      } catch (e) {
        const code = (e as { code?: string }).code;
        throw new JpkiError("ERR_USAGE", `cannot read ${path ?? "the input"}${code ? ` (${code})` : ""}: check the path and permissions`, { cause: e });
      }
      if (next.done) break;
      const raw = next.value;
      onBytes?.(raw.length);
      let chunk = typeof raw === "string" ? Buffer.from(raw, "utf8") : Buffer.isBuffer(raw) ? raw : Buffer.from((raw as Uint8Array).buffer, (raw as Uint8Array).byteOffset, (raw as Uint8Array).byteLength);
      if (skipping) {
        const nl = chunk.indexOf(10);
        if (nl < 0) continue;
        skipping = false;
        chunk = chunk.subarray(nl + 1);
      }
      const last = chunk.lastIndexOf(10);
      if (last >= 0) {
        const whole = chunk.subarray(0, last + 1);
        if (pendingBytes === 0) for (const x of block(whole)) yield x;
        else {
          // The line carried over from earlier chunks ends at the first LF of this one.
          const first = chunk.indexOf(10);
          if (pendingBytes + first > maxBytes) {
            line++;
            yield { line, text: "", eol: "\n", bad: "too-long" };
          } else {
            for (const x of block(Buffer.concat([...pending, chunk.subarray(0, first + 1)]))) yield x;
          }
          if (first < last) for (const x of block(chunk.subarray(first + 1, last + 1))) yield x;
        }
        pending = [];
        pendingBytes = 0;
        chunk = chunk.subarray(last + 1);
      }
      if (chunk.length === 0) continue;
      pending.push(chunk);
      pendingBytes += chunk.length;
      if (pendingBytes > maxBytes) {
        line++;
        yield { line, text: "", eol: "", bad: "too-long" };
        skipping = true;
        pending = [];
        pendingBytes = 0;
      }
    }
    if (pendingBytes > 0) {
      yield one(Buffer.concat(pending), "");
    }
  } finally {
    await chunks.return?.();
  }
}

/**
 * Looks at the first non-blank line: `{` means JSON Lines, anything else CSV. A line that is not UTF-8 is
 * judged by the characters that did decode.
 */
async function sniff(lines: AsyncGenerator<PhysicalLine>): Promise<{ format: ImportFormat; lines: AsyncGenerator<PhysicalLine> }> {
  const head: PhysicalLine[] = [];
  let format: ImportFormat = "csv";
  let r = await lines.next();
  while (!r.done) {
    const start = r.value.text.trimStart();
    // Empty lines are skipped by both readers: no need to keep them.
    if (r.value.text !== "" || r.value.bad) head.push(r.value);
    if (start !== "") {
      format = start.startsWith("{") ? "jsonl" : "csv";
      break;
    }
    r = await lines.next();
  }
  const done = r.done;
  async function* replay(): AsyncGenerator<PhysicalLine> {
    try {
      yield* head;
      if (!done) yield* lines;
    } finally {
      await lines.return(undefined);
    }
  }
  return { format, lines: replay() };
}

function recordError(line: number, problem: string, message: string, details: Record<string, unknown> = {}): RecordResult {
  return { line, error: new JpkiError("ERR_IMPORT_FORMAT", `line ${line}: ${message}`, { details: { line, problem, ...details } }) };
}

function errorOf(r: RecordResult): JpkiError {
  return "error" in r ? r.error : new JpkiError("ERR_INTERNAL", "expected an error result");
}

const PROBLEMS = {
  "too-long": "record is longer than the limit (maxRecordChars) and was skipped",
  "invalid-utf8": "not valid UTF-8: save the file as UTF-8 (with or without BOM)",
  "bare-cr": "bare CR (CR-only line endings?): end lines with LF or CRLF",
} as const;

function badLine(line: number, problem: keyof typeof PROBLEMS): RecordResult {
  return recordError(line, problem, PROBLEMS[problem]);
}

/**
 * A field is named in a message only when its name looks like a column name of our formats; anything else
 * (a CSV file without its header row has personal data there) is named by position.
 */
const SAFE_NAME = /^[A-Za-z_][A-Za-z0-9_.-]{0,63}$/;

/** Where a bad field sits: its name (shown only when it looks like a column name; absent when it may be a value) and 1-based position. */
interface FieldAt {
  readonly name?: string;
  readonly position: number;
  readonly unit: "column" | "field";
}

function fieldProblem(line: number, problem: "field-too-long" | "lone-surrogate", at: FieldAt | "key", maxField: number): RecordResult {
  const safe = at !== "key" && at.name !== undefined && SAFE_NAME.test(at.name);
  const what = at === "key" ? "a field name" : safe ? `field ${JSON.stringify(at.name)}` : `${at.unit} ${at.position}`;
  const message = problem === "field-too-long"
    ? `${what} is longer than the limit (maxFieldChars, ${maxField} characters)`
    : `${what} is not well-formed Unicode (a lone surrogate, e.g. an unpaired \\ud800 escape)`;
  return recordError(line, problem, message, at === "key" ? {} : safe ? { field: at.name } : { [at.unit]: at.position });
}

// ---------------------------------------------------------------------------------------------------------
// JSON Lines

/**
 * A `\uD800`–`\uDFFF` escape: the only way valid UTF-8 JSON text can spell a lone surrogate (a pair, or an
 * escaped backslash before "ud800", also match; the walk then finds nothing).
 */
const SURROGATE_ESCAPE = /\\u[dD][89a-fA-F]/;

/**
 * Deepest nesting of objects and arrays a JSON Lines record may have. JSON.parse takes any depth, but
 * JSON.stringify and the structured clone of postMessage recurse, and run out of stack at a few thousand
 * levels (fewer deep in a call chain or on a thread's stack): a record of 100,000 nested `{"a":` on one line
 * crashed notice ingestion with a RangeError when its reject was written. Our records nest two levels.
 */
export const MAX_JSON_DEPTH = 512;

/**
 * Shorter lines are not walked for depth: each level costs at least two characters (`[` and `]`), so they
 * cannot nest deeper than the limit, and walking every line would cost the hot path of large feeds.
 */
const DEPTH_WALK_CHARS = 2 * MAX_JSON_DEPTH;

async function* jsonLines(lines: AsyncIterable<PhysicalLine>, limits: Limits): AsyncGenerator<RecordResult> {
  for await (const l of lines) {
    if (l.bad) {
      yield badLine(l.line, l.bad);
      continue;
    }
    if (l.text.trim() === "") continue;
    // A CR here is not part of a CRLF line end: a CR-only file, or a stray CR.
    if (l.cr) {
      yield badLine(l.line, "bare-cr");
      continue;
    }
    let value: unknown;
    try {
      value = JSON.parse(l.text);
    } catch (e) {
      yield recordError(l.line, "malformed-json", `malformed JSON: ${describeJsonError(e)}`);
      continue;
    }
    if (typeof value !== "object" || value === null || Array.isArray(value)) {
      const kind = value === null ? "null" : Array.isArray(value) ? "an array" : `a ${typeof value}`;
      yield recordError(l.line, "not-an-object", `expected a JSON object, found ${kind}`);
      continue;
    }
    // No string can be longer than the line it came from, nor hold a lone surrogate without an escape for
    // one: most lines need no walk.
    if ((l.escape && SURROGATE_ESCAPE.test(l.text)) || l.text.length > Math.min(limits.field, DEPTH_WALK_CHARS)) {
      const problem = checkStrings(l.line, value as Record<string, unknown>, limits.field);
      if (problem) {
        yield problem;
        continue;
      }
    }
    if (limits.duplicateKeys) {
      const twice = namesAFieldTwice(l.text, value as object) ? repeatedKey(l.text) : undefined;
      if (twice !== undefined) {
        const safe = SAFE_NAME.test(twice);
        yield recordError(l.line, "duplicate-key", `${safe ? `field ${JSON.stringify(twice)}` : "a field"} is given more than once: which one is meant is ambiguous`, safe ? { field: twice } : {});
        continue;
      }
    }
    yield { line: l.line, value: value as Record<string, unknown>, text: l.text };
  }
}

/**
 * The first field name the top-level object of `text` repeats (compared decoded, so `"a"` and `"\u0061"` are
 * the same), or undefined. `text` has parsed as a JSON object, so strings and brackets are well-formed here.
 */
export function repeatedKey(text: string): string | undefined {
  const seen = new Set<string>();
  let twice: string | undefined;
  topLevelKeys(text, (open, close, escaped) => {
    const key = escaped ? (JSON.parse(text.slice(open, close + 1)) as string) : text.slice(open + 1, close);
    if (seen.has(key)) twice = key;
    else seen.add(key);
    return twice === undefined;
  });
  return twice;
}

/**
 * Whether the top-level object of `text` names a field twice, given the object JSON.parse made of it: JSON.parse
 * keeps one field of each name, so it does when the text has more names than the object. Counting them costs
 * no string or set per name, which finding the name does (repeatedKey: ≈ 1.3 µs a notice line); that is done only
 * for a line that has one.
 */
export function namesAFieldTwice(text: string, parsed: object): boolean {
  let names = 0;
  topLevelKeys(text, () => (names++, true));
  return names !== Object.keys(parsed).length;
}

/**
 * Calls `onKey` with where each name of the top-level object of `text` is (its quotes, and whether it has an
 * escape), in order, until it returns false. Strings are jumped over with indexOf (one native search each) rather
 * than walked a character at a time, as a line is mostly strings; only a string with a backslash in it is walked.
 */
function topLevelKeys(text: string, onKey: (open: number, close: number, escaped: boolean) => boolean): void {
  let depth = 0;
  let expectKey = false;
  let backslash = text.indexOf("\\");
  for (let i = 0; ; ) {
    const open = text.indexOf('"', i);
    const end = open < 0 ? text.length : open;
    for (; i < end; i++) {
      const c = text.charCodeAt(i);
      if (c === 0x7b || c === 0x5b) {
        depth++;
        if (depth === 1) expectKey = true;
      } else if (c === 0x7d || c === 0x5d) depth--;
      else if (c === 0x2c && depth === 1) expectKey = true;
    }
    if (open < 0) return;
    if (backslash >= 0 && backslash < open) backslash = text.indexOf("\\", open);
    let close = text.indexOf('"', open + 1);
    const escaped = backslash >= 0 && backslash < close;
    if (escaped) {
      for (close = open + 1; ; close++) {
        const d = text.charCodeAt(close);
        if (d === 0x5c) close++;
        else if (d === 0x22) break;
      }
      backslash = text.indexOf("\\", close + 1);
    }
    if (depth === 1 && expectKey) {
      if (!onKey(open, close, escaped)) return;
      expectKey = false;
    }
    i = close + 1;
  }
}

const isWellFormed = (s: string): boolean => (s as unknown as { isWellFormed(): boolean }).isWellFormed();

/**
 * Every string and key of a parsed record, and how deep it nests, without recursion (a line may nest deeply):
 * the first problem.
 */
function checkStrings(line: number, record: Record<string, unknown>, maxField: number): RecordResult | undefined {
  const keys = Object.keys(record);
  // Keys of the record itself first: a bad key has no name to report.
  for (const key of keys) {
    if (!isWellFormed(key)) return fieldProblem(line, "lone-surrogate", "key", maxField);
    if (key.length > maxField) return fieldProblem(line, "field-too-long", "key", maxField);
  }
  // Popped last-in first-out: pushed in reverse so the first field is checked first. `depth`: the containers
  // around v, the record itself being 1.
  const stack: Array<{ v: unknown; at: FieldAt; depth: number }> = [];
  for (let k = keys.length - 1; k >= 0; k--) stack.push({ v: record[keys[k]!], at: { name: keys[k]!, position: k + 1, unit: "field" }, depth: 1 });
  while (stack.length) {
    const { v, at, depth } = stack.pop()!;
    if (typeof v === "string") {
      if (!isWellFormed(v)) return fieldProblem(line, "lone-surrogate", at, maxField);
      if (v.length > maxField) return fieldProblem(line, "field-too-long", at, maxField);
      continue;
    }
    if (typeof v !== "object" || v === null) continue;
    if (depth >= MAX_JSON_DEPTH) {
      const safe = at.name !== undefined && SAFE_NAME.test(at.name);
      const what = safe ? `field ${JSON.stringify(at.name)}` : `${at.unit} ${at.position}`;
      return recordError(line, "too-deep", `${what} nests objects and arrays more than ${MAX_JSON_DEPTH} levels deep`, safe ? { field: at.name } : { [at.unit]: at.position });
    }
    if (Array.isArray(v)) {
      for (const x of v) stack.push({ v: x, at, depth: depth + 1 });
    } else {
      for (const [key, x] of Object.entries(v)) {
        if (!isWellFormed(key)) return fieldProblem(line, "lone-surrogate", at, maxField);
        if (key.length > maxField) return fieldProblem(line, "field-too-long", at, maxField);
        stack.push({ v: x, at, depth: depth + 1 });
      }
    }
  }
  return undefined;
}

/**
 * V8's JSON.parse messages quote the offending input ("Unexpected token 'x', "{…}" is not valid JSON"),
 * which would put personal data in our message: keep only the grammar part and the position.
 */
export function describeJsonError(e: unknown): string {
  const msg = e instanceof Error ? e.message : "";
  if (/Unexpected end of JSON input/.test(msg)) return "the line ends in the middle of a value";
  const pos = /at position (\d+)/.exec(msg);
  const where = pos ? ` at character ${Number(pos[1]) + 1}` : "";
  // "… in JSON at position 6", and "Unexpected non-whitespace character after JSON at position 7".
  const grammar = /^(.*?)(?: in JSON)? at position \d+/.exec(msg)?.[1];
  // Only pass through phrases made of words and JSON punctuation, e.g. "Expected ',' or '}' after property value".
  if (grammar && /^[A-Za-z ,'{}[\]:-]+$/.test(grammar) && !/Unexpected token/.test(grammar)) return `${grammar}${where}`;
  if (/Unexpected token|Unexpected character|not valid JSON/.test(msg)) return `unexpected character${where}`;
  return `not valid JSON${where}`;
}

// ---------------------------------------------------------------------------------------------------------
// CSV (RFC 4180)

interface CsvRecord {
  readonly line: number;
  readonly fields?: string[];
  readonly error?: RecordResult;
}

/** Assembles CSV records from physical lines; a quoted field may span lines. */
async function* csvRows(lines: AsyncIterable<PhysicalLine>, maxChars: number): AsyncGenerator<CsvRecord> {
  let fields: string[] = [];
  let field = "";
  let inQuotes = false; // the current line started inside a quoted field continued from the previous line
  let startLine = 0;
  let size = 0;
  let broken = 0; // the first line of this record that is not UTF-8: the record is parsed, then rejected
  const reset = (): void => {
    fields = [];
    field = "";
    inQuotes = false;
    startLine = 0;
    size = 0;
    broken = 0;
  };
  const failed = (problem: string, message: string): CsvRecord => {
    // A broken byte is the likelier cause of whatever else went wrong: report it first.
    const r = broken
      ? recordError(startLine, "invalid-utf8", `${PROBLEMS["invalid-utf8"]}${broken !== startLine ? ` (at line ${broken}, inside a quoted field)` : ""}`)
      : recordError(startLine, problem, message);
    return { line: startLine, error: r };
  };
  const UNCLOSED = "a quoted field is not closed before the end of the file";

  for await (const l of lines) {
    if (l.bad === "too-long") {
      yield { line: startLine || l.line, error: badLine(startLine || l.line, "too-long") };
      reset();
      continue;
    }
    if (startLine === 0) {
      if (l.text === "" && !l.bad) continue; // blank line between records
      startLine = l.line;
    }
    // Quotes and commas are ASCII and survive the lossy decoding of a broken line: the record's extent is
    // still known, so only this record is lost.
    if (l.bad === "invalid-utf8" && !broken) broken = l.line;
    size += l.text.length + l.eol.length;
    if (size > maxChars) {
      // Most likely an unclosed quote swallowing the rest of the file: report it and start afresh on the next line.
      yield { line: startLine, error: badLine(startLine, "too-long") };
      reset();
      continue;
    }

    const text = l.text;
    const n = text.length;
    // A CR here is either data inside quotes or a line break the LF split did not see.
    const hasCr = l.cr === true;
    let i = 0;
    let problem: [string, string] | undefined;
    let done = false;
    while (!done && problem === undefined) {
      if (inQuotes) {
        const q = text.indexOf('"', i);
        if (q < 0) {
          // The quoted field goes on past this line: its line break is part of the value.
          field += text.slice(i);
          break;
        }
        field += text.slice(i, q);
        if (text.charCodeAt(q + 1) === 34) {
          field += '"';
          i = q + 2;
          continue;
        }
        inQuotes = false;
        i = q + 1;
        if (i === n) {
          fields.push(field);
          done = true;
        } else if (text.charCodeAt(i) === 44) {
          fields.push(field);
          field = "";
          i++;
          // fall through to the start of the next field
          if (text.charCodeAt(i) === 34) {
            inQuotes = true;
            i++;
          } else problem = unquoted();
        } else if (text.charCodeAt(i) === 13) {
          problem = ["bare-cr", PROBLEMS["bare-cr"]];
        } else {
          problem = ["csv-syntax", "a closing quote is followed by other characters (write \"\" for a quote inside a quoted field)"];
        }
      } else if (text.charCodeAt(i) === 34) {
        inQuotes = true;
        i++;
      } else {
        problem = unquoted();
      }
    }

    // Reads unquoted fields from i until a quoted field starts or the line ends; returns a problem, if any.
    function unquoted(): [string, string] | undefined {
      for (;;) {
        const c = text.indexOf(",", i);
        const end = c < 0 ? n : c;
        const raw = text.slice(i, end);
        if (hasCr && raw.includes("\r")) return ["bare-cr", PROBLEMS["bare-cr"]];
        if (raw.includes('"')) return ["csv-syntax", "a quote appears inside an unquoted field (quote the whole field and double the quote)"];
        fields.push(raw);
        if (c < 0) {
          done = true;
          return undefined;
        }
        i = c + 1;
        if (text.charCodeAt(i) === 34) {
          inQuotes = true;
          i++;
          return undefined;
        }
      }
    }

    if (problem !== undefined) {
      yield failed(...problem);
      reset();
      continue;
    }
    if (inQuotes) {
      if (l.eol === "") {
        yield failed("csv-unclosed-quote", UNCLOSED);
        reset();
      } else {
        field += l.eol;
      }
      continue;
    }
    yield broken ? failed("invalid-utf8", PROBLEMS["invalid-utf8"]) : { line: startLine, fields };
    reset();
  }
  if (startLine !== 0) yield failed("csv-unclosed-quote", UNCLOSED);
}

async function* csvRecords(lines: AsyncIterable<PhysicalLine>, limits: Limits): AsyncGenerator<RecordResult> {
  let header: string[] | undefined;
  // A column is named only when every name of the header row looks like one: a row of values (a file without its
  // header row) always holds one that does not (a resident code, a date), while its neighbours may look like
  // names and are a resident's data all the same (a name in Latin letters, "female").
  let namesQuotable = false;
  for await (const rec of csvRows(lines, limits.record)) {
    if (!header) {
      if (rec.error) throw new JpkiError("ERR_IMPORT_FORMAT", `the CSV header row cannot be read: ${errorOf(rec.error).message}`, { cause: errorOf(rec.error) });
      header = checkHeader(rec.fields!, rec.line, limits.field);
      namesQuotable = header.every((h) => SAFE_NAME.test(h));
      continue;
    }
    if (rec.error) {
      yield rec.error;
      continue;
    }
    const fields = rec.fields!;
    if (fields.length !== header.length) {
      yield recordError(rec.line, "csv-field-count", `has ${fields.length} field${fields.length === 1 ? "" : "s"}, the header has ${header.length}`);
      continue;
    }
    const long = fields.findIndex((f) => f.length > limits.field);
    if (long >= 0) {
      yield fieldProblem(rec.line, "field-too-long", { ...(namesQuotable ? { name: header[long]! } : {}), position: long + 1, unit: "column" }, limits.field);
      continue;
    }
    // fromEntries defines own properties, so a "__proto__" column cannot reach the prototype.
    yield { line: rec.line, value: Object.fromEntries(header.map((h, k) => [h, fields[k]])) };
  }
}

function checkHeader(names: string[], line: number, maxField: number): string[] {
  const out = names.map((s) => s.trim());
  // Column names are not quoted back: a file without a header row would have personal data in the first row.
  const seen = new Map<string, number>();
  out.forEach((name, k) => {
    if (name === "") throw new JpkiError("ERR_IMPORT_FORMAT", `line ${line}: CSV header column ${k + 1} has no name (is the header row missing?)`, { details: { line, problem: "csv-header" } });
    if (name.length > maxField) {
      throw new JpkiError("ERR_IMPORT_FORMAT", `line ${line}: CSV header column ${k + 1} is longer than the limit (maxFieldChars, ${maxField} characters)`, { details: { line, problem: "csv-header" } });
    }
    const prev = seen.get(name);
    if (prev !== undefined) {
      throw new JpkiError("ERR_IMPORT_FORMAT", `line ${line}: CSV header column ${k + 1} repeats the name of column ${prev + 1}`, { details: { line, problem: "csv-header" } });
    }
    seen.set(name, k);
  });
  return out;
}
