/**
 * Streaming record readers for import files (`jpki registry import FILE`, and later change notices and
 * issuance batches): JSON Lines (https://jsonlines.org) and CSV with a header row (RFC 4180).
 * shared/spec/JPKI.md "The link between the two networks": the registry side receives records in bulk.
 *
 * The readers are record-agnostic: they yield plain objects and leave the meaning of fields to the caller
 * (e.g. `parseResidentRecord`). They never hold more than one record in memory, so a file of millions of
 * residents streams through; a record longer than `maxRecordChars` is reported and skipped rather than
 * buffered. Problems with one record are yielded as `{ line, error }` and reading goes on; only problems
 * with the file as a whole (unreadable, not UTF-8, bad CSV header) are thrown.
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
  /** Called with each chunk's size as it is read, for progress over a file of known size. */
  readonly onBytes?: (n: number) => void;
}

/** One record, or why the record at that line could not be read. `line` is 1-based, physical. */
export type RecordResult =
  | { readonly line: number; readonly value: Record<string, unknown> }
  | { readonly line: number; readonly error: JpkiError };

export const DEFAULT_MAX_RECORD_CHARS = 1 << 20;

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
  const maxChars = opts.maxRecordChars ?? DEFAULT_MAX_RECORD_CHARS;
  if (!Number.isInteger(maxChars) || maxChars < 1) {
    throw new JpkiError("ERR_CONFIG_INVALID", "maxRecordChars must be a positive integer");
  }
  const requested = opts.format ?? "auto";
  if (requested !== "auto" && requested !== "jsonl" && requested !== "csv") {
    throw new JpkiError("ERR_USAGE", `unknown import format ${JSON.stringify(String(requested))}: use jsonl, csv or auto`);
  }
  const path = typeof input === "string" ? input : undefined;
  const stream = typeof input === "string" ? createReadStream(input) : input;
  try {
    let text = decodeUtf8(stream, path, opts.onBytes);
    let format: ImportFormat | undefined = requested === "auto" ? (path ? formatFromPath(path) : undefined) : requested;
    if (!format) {
      const sniffed = await sniff(text);
      format = sniffed.format;
      text = sniffed.text;
    }
    const lines = physicalLines(text, maxChars);
    yield* format === "jsonl" ? jsonLines(lines) : csvRecords(lines, maxChars);
  } finally {
    // Stopping early (a `break` in the caller) must not leave the file open.
    if (typeof input === "string") (stream as ReturnType<typeof createReadStream>).destroy();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Bytes → text → physical lines

async function* decodeUtf8(stream: NodeJS.ReadableStream, path: string | undefined, onBytes?: (n: number) => void): AsyncGenerator<string> {
  // fatal: a name with a broken byte must be rejected, not silently turned into U+FFFD.
  const decoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
  let first = true;
  const strip = (s: string): string => {
    if (!first || s === "") return s;
    first = false;
    return s.charCodeAt(0) === 0xfeff ? s.slice(1) : s;
  };
  try {
    for await (const chunk of stream) {
      onBytes?.((chunk as { length: number }).length);
      const s = typeof chunk === "string" ? chunk : decoder.decode(chunk as Uint8Array, { stream: true });
      const out = strip(s);
      if (out !== "") yield out;
    }
    const tail = strip(decoder.decode());
    if (tail !== "") yield tail;
  } catch (e) {
    if (e instanceof JpkiError) throw e;
    if (e instanceof TypeError && (e as { code?: string }).code === "ERR_ENCODING_INVALID_ENCODED_DATA") {
      throw new JpkiError("ERR_IMPORT_FORMAT", `${path ?? "the input"} is not valid UTF-8: save it as UTF-8 (with or without BOM)`, { cause: e });
    }
    const code = (e as { code?: string }).code;
    throw new JpkiError("ERR_USAGE", `cannot read ${path ?? "the input"}${code ? ` (${code})` : ""}: check the path and permissions`, { cause: e });
  }
}

/** Looks at the first non-blank character: `{` means JSON Lines, anything else CSV. */
async function sniff(text: AsyncGenerator<string>): Promise<{ format: ImportFormat; text: AsyncGenerator<string> }> {
  let head = "";
  let r = await text.next();
  while (!r.done) {
    head += r.value;
    if (head.trimStart() !== "") break;
    r = await text.next();
  }
  const format: ImportFormat = head.trimStart().startsWith("{") ? "jsonl" : "csv";
  async function* replay(): AsyncGenerator<string> {
    if (head !== "") yield head;
    if (r.done) return;
    yield* text;
  }
  return { format, text: replay() };
}

interface PhysicalLine {
  readonly line: number;
  /** the line without its terminator */
  readonly text: string;
  /** "\n", "\r\n", or "" for the last line of a file without a final line break */
  readonly eol: string;
  /** set when the line was longer than the limit: `text` is empty and the line is skipped */
  readonly overflow?: true;
}

/** Splits text into lines at LF (a preceding CR belongs to the terminator), holding at most one line. */
async function* physicalLines(text: AsyncIterable<string>, maxChars: number): AsyncGenerator<PhysicalLine> {
  let buf = "";
  let line = 0;
  let skipping = false; // inside an over-long line, already reported: drop text until its end
  for await (const chunk of text) {
    buf += chunk;
    let start = 0;
    for (;;) {
      const nl = buf.indexOf("\n", start);
      if (nl < 0) break;
      line++;
      const crlf = nl > start && buf.charCodeAt(nl - 1) === 13;
      const end = crlf ? nl - 1 : nl;
      if (skipping) skipping = false;
      else if (end - start > maxChars) yield { line, text: "", eol: "", overflow: true };
      else yield { line, text: buf.slice(start, end), eol: crlf ? "\r\n" : "\n" };
      start = nl + 1;
    }
    buf = start === 0 ? buf : buf.slice(start);
    if (skipping) buf = "";
    else if (buf.length > maxChars) {
      yield { line: line + 1, text: "", eol: "", overflow: true };
      skipping = true;
      buf = "";
    }
  }
  if (!skipping && buf !== "") {
    yield buf.length > maxChars ? { line: line + 1, text: "", eol: "", overflow: true } : { line: line + 1, text: buf, eol: "" };
  }
}

function recordError(line: number, problem: string, message: string): RecordResult {
  return { line, error: new JpkiError("ERR_IMPORT_FORMAT", `line ${line}: ${message}`, { details: { line, problem } }) };
}

function errorOf(r: RecordResult): JpkiError {
  return "error" in r ? r.error : new JpkiError("ERR_INTERNAL", "expected an error result");
}

function tooLong(line: number): RecordResult {
  return recordError(line, "too-long", "record is longer than the limit (maxRecordChars) and was skipped");
}

// ---------------------------------------------------------------------------------------------------------
// JSON Lines

async function* jsonLines(lines: AsyncIterable<PhysicalLine>): AsyncGenerator<RecordResult> {
  for await (const l of lines) {
    if (l.overflow) {
      yield tooLong(l.line);
      continue;
    }
    if (l.text.trim() === "") continue;
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
    yield { line: l.line, value: value as Record<string, unknown> };
  }
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
  const reset = (): void => {
    fields = [];
    field = "";
    inQuotes = false;
    startLine = 0;
    size = 0;
  };

  for await (const l of lines) {
    if (l.overflow) {
      yield { line: startLine || l.line, error: tooLong(startLine || l.line) };
      reset();
      continue;
    }
    if (startLine === 0) {
      if (l.text === "") continue; // blank line between records
      startLine = l.line;
    }
    size += l.text.length + l.eol.length;
    if (size > maxChars) {
      // Most likely an unclosed quote swallowing the rest of the file: report it and start afresh on the next line.
      yield { line: startLine, error: tooLong(startLine) };
      reset();
      continue;
    }

    const text = l.text;
    const n = text.length;
    let i = 0;
    let problem: string | undefined;
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
        } else {
          problem = "a closing quote is followed by other characters (write \"\" for a quote inside a quoted field)";
        }
      } else if (text.charCodeAt(i) === 34) {
        inQuotes = true;
        i++;
      } else {
        problem = unquoted();
      }
    }

    // Reads unquoted fields from i until a quoted field starts or the line ends; returns a problem, if any.
    function unquoted(): string | undefined {
      for (;;) {
        const c = text.indexOf(",", i);
        const end = c < 0 ? n : c;
        const raw = text.slice(i, end);
        if (raw.includes('"')) return "a quote appears inside an unquoted field (quote the whole field and double the quote)";
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
      yield { line: startLine, error: recordError(startLine, "csv-syntax", problem) };
      reset();
      continue;
    }
    if (inQuotes) {
      if (l.eol === "") {
        yield { line: startLine, error: recordError(startLine, "csv-unclosed-quote", "a quoted field is not closed before the end of the file") };
        reset();
      } else {
        field += l.eol;
      }
      continue;
    }
    yield { line: startLine, fields };
    reset();
  }
  if (startLine !== 0) {
    yield { line: startLine, error: recordError(startLine, "csv-unclosed-quote", "a quoted field is not closed before the end of the file") };
  }
}

async function* csvRecords(lines: AsyncIterable<PhysicalLine>, maxChars: number): AsyncGenerator<RecordResult> {
  let header: string[] | undefined;
  for await (const rec of csvRows(lines, maxChars)) {
    if (!header) {
      if (rec.error) throw new JpkiError("ERR_IMPORT_FORMAT", `the CSV header row cannot be read: ${errorOf(rec.error).message}`, { cause: errorOf(rec.error) });
      header = checkHeader(rec.fields!, rec.line);
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
    // fromEntries defines own properties, so a "__proto__" column cannot reach the prototype.
    yield { line: rec.line, value: Object.fromEntries(header.map((h, k) => [h, fields[k]])) };
  }
}

function checkHeader(names: string[], line: number): string[] {
  const out = names.map((s) => s.trim());
  // Column names are not quoted back: a file without a header row would have personal data in the first row.
  const seen = new Map<string, number>();
  out.forEach((name, k) => {
    if (name === "") throw new JpkiError("ERR_IMPORT_FORMAT", `line ${line}: CSV header column ${k + 1} has no name (is the header row missing?)`, { details: { line, problem: "csv-header" } });
    const prev = seen.get(name);
    if (prev !== undefined) {
      throw new JpkiError("ERR_IMPORT_FORMAT", `line ${line}: CSV header column ${k + 1} repeats the name of column ${prev + 1}`, { details: { line, problem: "csv-header" } });
    }
    seen.set(name, k);
  });
  return out;
}
