/**
 * Conditional and partial GET for published files (RFC 9110 §13 preconditions, §14 ranges), as verifiers and
 * caches use them on a CRL distribution point: a poll of an unchanged CRL costs a 304, and a 50 MB CRL whose
 * download broke resumes with a range. Pure: headers in, a decision out; the server streams.
 *
 * Scope, on purpose: GET and HEAD of immutable representations (a published file is replaced by rename, never
 * changed in place), one range per request (a multi-range request gets the whole file, which RFC 9110 §14.2
 * allows), strong entity tags only (ours are content hashes).
 */

/** What the server knows about one representation. */
export interface Representation {
  /** strong entity tag, quoted: `"…"` */
  readonly etag: string;
  readonly lastModified: Date;
  readonly size: number;
}

export type Decision =
  | { readonly status: 200 }
  | { readonly status: 206; readonly start: number; readonly end: number }
  | { readonly status: 304 }
  | { readonly status: 412 }
  | { readonly status: 416 };

const NOT_MODIFIED: Decision = Object.freeze({ status: 304 });

/** Request headers as node gives them (lower-case names). */
export type RequestHeaders = Readonly<Record<string, string | string[] | undefined>>;

function header(h: RequestHeaders, name: string): string | undefined {
  const v = h[name];
  return Array.isArray(v) ? v.join(", ") : v;
}

/**
 * The entity tags of an If-Match / If-None-Match list ("*" stays "*"); weak tags keep their W/ prefix. Empty list
 * elements (`"a", , "b"`, a leading comma) are skipped, as RFC 9110 §5.6.1.2 asks of a recipient: they ended the
 * list, so If-None-Match: "x",,"<current>" got a 200 and If-Match: ,"<current>" a 412.
 */
export function entityTags(value: string): string[] {
  const tags: string[] = [];
  const re = /[\s,]*(\*|(?:W\/)?"[^"]*")\s*(?:,|$)/gy;
  let m: RegExpExecArray | null;
  while (re.lastIndex < value.length && (m = re.exec(value))) tags.push(m[1]!);
  return tags;
}

const opaque = (tag: string) => (tag.startsWith("W/") ? tag.slice(2) : tag);

/** Whether an If-None-Match value names `etag` (RFC 9110 §13.1.2: weak comparison, and "*" names any). */
export function noneMatchHolds(value: string, etag: string): boolean {
  return entityTags(value).some((t) => t === "*" || opaque(t) === etag);
}

/** HTTP-date (IMF-fixdate), second precision. */
export function httpDate(d: Date): string {
  return d.toUTCString();
}

const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
const MONTH = MONTHS.join("|");
const TIME = String.raw`(\d{2}):(\d{2}):(\d{2})`;
// RFC 9110 §5.6.7: IMF-fixdate, and the obsolete RFC 850 and asctime forms a recipient must still read.
const IMF_FIXDATE = new RegExp(String.raw`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun), (\d{2}) (${MONTH}) (\d{4}) ${TIME} GMT$`);
const RFC850_DATE = new RegExp(String.raw`^(?:Monday|Tuesday|Wednesday|Thursday|Friday|Saturday|Sunday), (\d{2})-(${MONTH})-(\d{2}) ${TIME} GMT$`);
const ASCTIME_DATE = new RegExp(String.raw`^(?:Mon|Tue|Wed|Thu|Fri|Sat|Sun) (${MONTH}) ([ \d]\d) ${TIME} (\d{4})$`);

/**
 * Whole seconds since the epoch of an HTTP-date, or undefined when it is not one (RFC 9110 §13.1.3: such a
 * precondition is ignored). Not Date.parse: it reads "2100" or "1" as dates (a client sending
 * "If-Modified-Since: 2100" was answered 304 for every CRL, whatever it held) and asctime in local time.
 */
export function parseHttpDate(s: string | undefined): number | undefined {
  if (!s) return undefined;
  const v = s.trim();
  let day: string, month: string, year: number, hms: [string, string, string];
  let m = IMF_FIXDATE.exec(v);
  if (m) [day, month, year, hms] = [m[1]!, m[2]!, Number(m[3]), [m[4]!, m[5]!, m[6]!]];
  else if ((m = RFC850_DATE.exec(v))) {
    // a two-digit year more than 50 years ahead is in the past century (RFC 9110 §5.6.7)
    const yy = Number(m[3]);
    year = 2000 + yy > new Date().getUTCFullYear() + 50 ? 1900 + yy : 2000 + yy;
    [day, month, hms] = [m[1]!, m[2]!, [m[4]!, m[5]!, m[6]!]];
  } else if ((m = ASCTIME_DATE.exec(v))) [month, day, hms, year] = [m[1]!, m[2]!.trim(), [m[3]!, m[4]!, m[5]!], Number(m[6])];
  else return undefined;
  const [h, min, sec] = hms.map(Number) as [number, number, number];
  const mo = MONTHS.indexOf(month);
  const t = Date.UTC(year, mo, Number(day), h, min, sec);
  const d = new Date(t);
  // no 31 Feb or 25:00 rolled over into another date
  if (d.getUTCDate() !== Number(day) || d.getUTCMonth() !== mo || d.getUTCHours() !== h || d.getUTCMinutes() !== min || d.getUTCSeconds() !== sec) return undefined;
  return Math.floor(t / 1000);
}

const seconds = (d: Date) => Math.floor(d.getTime() / 1000);

/**
 * The response a GET (or HEAD) gets, RFC 9110 §13.2.2 order: If-Match, If-Unmodified-Since, If-None-Match
 * (weak comparison), If-Modified-Since (only without If-None-Match), then Range with If-Range (strong).
 */
export function decide(method: string, h: RequestHeaders, rep: Representation): Decision {
  // The common poll first: one If-None-Match equal to the current tag, nothing else conditional.
  if (h["if-none-match"] === rep.etag && h["if-match"] === undefined && h["if-unmodified-since"] === undefined) return NOT_MODIFIED;
  const ifMatch = header(h, "if-match");
  if (ifMatch !== undefined) {
    const tags = entityTags(ifMatch);
    if (!tags.some((t) => t === "*" || (!t.startsWith("W/") && t === rep.etag))) return { status: 412 };
  } else {
    const ius = parseHttpDate(header(h, "if-unmodified-since"));
    if (ius !== undefined && seconds(rep.lastModified) > ius) return { status: 412 };
  }
  const ifNoneMatch = header(h, "if-none-match");
  if (ifNoneMatch !== undefined) {
    if (noneMatchHolds(ifNoneMatch, rep.etag)) return NOT_MODIFIED;
  } else {
    const ims = parseHttpDate(header(h, "if-modified-since"));
    if (ims !== undefined && seconds(rep.lastModified) <= ims) return NOT_MODIFIED;
  }
  if (method !== "GET") return { status: 200 };
  const range = header(h, "range");
  if (range === undefined) return { status: 200 };
  const ifRange = header(h, "if-range");
  if (ifRange !== undefined) {
    const t = ifRange.trim();
    const holds = t.startsWith('"') ? t === rep.etag : t.startsWith("W/") ? false : parseHttpDate(t) === seconds(rep.lastModified);
    if (!holds) return { status: 200 };
  }
  const r = parseRange(range, rep.size);
  if (r === "ignore") return { status: 200 };
  if (r === "unsatisfiable") return { status: 416 };
  return { status: 206, start: r.start, end: r.end };
}

/**
 * One byte range of a representation of `size` bytes (RFC 9110 §14.1.2): `bytes=a-b`, `bytes=a-`, `bytes=-n`.
 * A syntactically invalid or multi-range header is ignored (the whole representation is sent); a range that
 * starts past the end is unsatisfiable. `end` is inclusive.
 */
export function parseRange(value: string, size: number): { start: number; end: number } | "ignore" | "unsatisfiable" {
  // No two whitespace runs side by side with only an optional number between: /\s*(\d*)\s*/ backtracked
  // quadratically on a header of blanks (16 KB of them held the event loop 150 ms per request).
  const m = /^\s*bytes\s*=\s*(?:(\d+)\s*)?-\s*(?:(\d+)\s*)?$/i.exec(value);
  if (!m || (m[1] === undefined && m[2] === undefined)) return "ignore";
  if (m[1] === undefined) {
    const n = Number(m[2]);
    if (!Number.isSafeInteger(n)) return "ignore";
    if (n === 0 || size === 0) return "unsatisfiable";
    return { start: Math.max(0, size - n), end: size - 1 };
  }
  const start = Number(m[1]);
  const last = m[2] === undefined ? Number.MAX_SAFE_INTEGER : Number(m[2]);
  if (!Number.isSafeInteger(start) || !Number.isSafeInteger(last) || last < start) return "ignore";
  if (start >= size) return "unsatisfiable";
  return { start, end: Math.min(last, size - 1) };
}
