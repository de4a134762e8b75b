/**
 * The access log: one JSON line per request, written by a thread of its own.
 *
 * The serving thread only records each request's fields in a ring of shared memory (numbers, and ids of
 * strings it has seen before); the logging thread turns them into lines and appends them in large writes.
 * Measured on `jpki serve`'s 304 path (2 cores), building the line and handing it to a write cost the
 * serving thread about 2.2 µs per request — 1.2 µs for the line, 1 µs to flatten and copy it — a sixth of a
 * 304's whole cost; recording the fields costs it a tenth of that.
 *
 * What a line holds: the time, the method, the URL's path with anything shaped like a token blotted out and
 * its query's parameter names without their values (loggedUrl), the status, the milliseconds to answer, the client address (the peer's, or behind a trusted proxy the one
 * X-Forwarded-For names: client-address.ts) and the verifier id or "anonymous"; and `"aborted":true` after the status
 * of an answer that was not written whole (the client went away mid-body, or the connection was cut: a CRL download
 * stopped short), which a line without it would pass for a complete one — absent from every other line.
 * Never a credential, a PIN or the four items (a URL carries none of ours, and no query value is written).
 *
 * On a crash the lines of the last LOG_INTERVAL_MS may be lost, never torn ones: every write is whole lines,
 * and a line the kernel took only part of is finished before any other. When the logging thread falls behind
 * by a whole ring (a disk or a log reader that stalls), requests are still answered and their lines dropped,
 * and counted (`dropped`), never queued without bound. A pipe or FIFO is written non-blocking, in pieces of
 * whole lines no larger than PIPE_BUF, so that the processes of `--workers N` sharing one standard output
 * never interleave within a line, and a reader that stops reading can stall neither close() nor the exit.
 */
import { closeSync, constants, fstatSync, openSync, statSync } from "node:fs";
import type { Worker } from "node:worker_threads";
import { newThread } from "../thread.js";
import { JpkiError } from "../errors.js";
import { TOKEN_PREFIX } from "../verifier/credentials.js";

/** Where a server sends what it answered; positional so that recording a request allocates nothing. */
export interface AccessLogSink {
  /**
   * `time`: epoch milliseconds; `url`: as requested (the sink redacts it); `method` and `url` are "" for a request
   * node's HTTP parser refused (app.ts clientErrorHandler); `ms`: time to answer;
   * `remote`: the client address ("" unknown); `verifier`: a verifier id or "anonymous"; `aborted`: the answer
   * was not written whole (its status was sent, the body cut short).
   */
  record(time: number, method: string, url: string, status: number, ms: number, remote: string, verifier: string, aborted?: boolean): void;
}

/**
 * A request's URL as the access log writes it: the path, with anything shaped like one of our tokens blotted out
 * and any segment holding a character outside ASCII or shaped like a resident's item `[redacted]` (withoutPersonalSegments), and of the query only its parameters' names, every value `[redacted]` (`/v1/status/history?since=[redacted]`).
 * The query was kept verbatim, so a verifier that put personal data in one (`?name=…&birth=…`: none of our
 * routes takes the four items in a URL, but a client may send them all the same) had it written to the log.
 * A name is kept only when it is an ASCII identifier (a letter, then up to 31 letters, digits, `_`, `.` or `-`):
 * a name in kanji or digits (an item sent as a name, `?高木秘密子`, `?1990-01-01`) is `[redacted]` too, and
 * so is anything after a `#`. RFC 6750 §2.3 has clients send a token as `?access_token=…`: we refuse it there
 * (401), but a misconfigured verifier doing so once wrote its token to the log in clear.
 */
export function loggedUrl(url: string): string {
  const cut = url.search(/[?#]/);
  let u = cut < 0 ? url : url.slice(0, cut);
  // Percent-encoded (jpkiv%5F…, %6Apkiv_…) a token is written all the same: where the decoded path holds one, that
  // is what is redacted and logged (a review helper found both forms written in clear).
  if (u.includes("%")) {
    const decoded = percentDecoded(u);
    if (mayHoldToken(decoded)) u = decoded;
  }
  if (mayHoldToken(u)) u = u.replace(TOKEN_ANYWHERE, `${TOKEN_PREFIX}[redacted]`);
  u = withoutPersonalSegments(u);
  if (cut >= 0) u += url[cut] === "#" ? "#[redacted]" : loggedQuery(url.slice(cut));
  // Redacted first, then cut: a 16 KB URL (what node's header limit lets through) says no more in full.
  if (u.length > MAX_LOGGED_URL) u = `${u.slice(0, MAX_LOGGED_URL)}…[${u.length - MAX_LOGGED_URL} more]`;
  return u;
}

/**
 * A path with every segment that holds a character outside ASCII, as sent or percent-encoded (once or more),
 * `[redacted]`: no path any route serves has one (CA ids, serials, municipality codes, base64 OCSP requests are
 * ASCII), but a name or address sent as a segment of an unknown path (`/v1/x/%E9%AB%98…`) was logged as it came.
 * So is a segment shaped like a resident's item in ASCII (PERSONAL_SHAPE): a resident code (住民票コード, 11 digits),
 * a birth date, a name in Latin letters with a space (`/v1/residents/12345678901/1990-01-01`, `/v1/x/Taro%20Yamada`
 * were logged as sent).
 */
function withoutPersonalSegments(path: string): string {
  if (!NON_ASCII_OR_ESCAPE.test(path) && !PERSONAL_SHAPE.test(path)) return path;
  return path
    .split("/")
    .map((seg) => {
      const decoded = seg.includes("%") ? percentDecoded(seg) : seg;
      return NON_ASCII.test(decoded) || PERSONAL_SHAPE.test(decoded) ? "[redacted]" : seg;
    })
    .join("/");
}

const NON_ASCII = /[^\x00-\x7f]/;
/**
 * What no route's path segment holds and a resident's item written in ASCII does: a run of 8 digits or more (a
 * resident code, a date as YYYYMMDD), a date with separators (1990-01-01, 1990.1.1), whitespace (a name with a
 * space; the raw path has none, so only an escaped one). CA ids, municipality codes (6 digits) and base64 OCSP
 * requests (no "-", ".", or space; a run of 8 digits by chance redacts one, harmlessly) are kept.
 */
const PERSONAL_SHAPE = /\d{8,}|\d{4}[-.]\d{1,2}[-.]\d{1,2}|[ \t]/;
const NON_ASCII_OR_ESCAPE = /[^\x00-\x7f]|%/;

/** `?a=1&b;c=2#f` as `?a=[redacted]&b;c=[redacted]#[redacted]`: the separators and names kept, no value. */
function loggedQuery(query: string): string {
  const hash = query.indexOf("#");
  const q = hash < 0 ? query.slice(1) : query.slice(1, hash);
  const parts = q.split(/([&;])/).map((part, i) => {
    if (i % 2 === 1 || part === "") return part; // a separator, or nothing between two
    const eq = part.indexOf("=");
    return `${loggedName(eq < 0 ? part : part.slice(0, eq))}${eq < 0 ? "" : "=[redacted]"}`;
  });
  return `?${parts.join("")}${hash < 0 ? "" : "#[redacted]"}`;
}

/** A query parameter's name as logged: itself when it is an ASCII identifier and no token, else `[redacted]`. */
function loggedName(raw: string): string {
  const name = raw.includes("%") ? percentDecoded(raw) : raw;
  if (mayHoldToken(name)) return `${TOKEN_PREFIX}[redacted]`;
  return PARAMETER_NAME.test(name) && !PERSONAL_SHAPE.test(name) ? name : "[redacted]";
}

const PARAMETER_NAME = /^[A-Za-z][A-Za-z0-9_.-]{0,31}$/;

/** characters of a URL the log keeps */
const MAX_LOGGED_URL = 1024;

// Case-insensitive: JPKIV_<secret> is no token the server takes, but its secret part is one.
const TOKEN_ANYWHERE = new RegExp(`${TOKEN_PREFIX}[A-Za-z0-9_-]*`, "gi");

/** Whether a path or name may hold a token (any case). */
function mayHoldToken(u: string): boolean {
  return u.toLowerCase().includes(TOKEN_PREFIX);
}

/**
 * Every %XX escape decoded (as Latin-1: enough to find ASCII tokens), again while any are left, at most three
 * times (a client's double encoding of a token is still the token's secret).
 */
function percentDecoded(u: string): string {
  let d = u;
  for (let i = 0; i < 3 && /%[0-9A-Fa-f]{2}/.test(d); i++) d = d.replace(/%([0-9A-Fa-f]{2})/g, (_, h: string) => String.fromCharCode(parseInt(h, 16)));
  return d;
}

// printable ASCII but " and \: nothing to escape
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
/** A string as JSON (with its quotes); the usual URL or address needs no escaping and skips JSON.stringify. */
const json = (v: string): string => (PLAIN.test(v) ? `"${v}"` : JSON.stringify(v));

/**
 * One access-log line from its fields, the strings already JSON (quoted, escaped), in three parts: what comes
 * before the duration (time, method, URL, status), the duration, and what comes after it (client, verifier). The
 * logging thread runs these very functions (their source is sent to the thread), so both threads write the same
 * lines; it keeps the parts before and after the duration while consecutive records repeat them (a poll: one
 * URL, status, client and verifier, and the same millisecond for dozens of lines), and makes only the duration anew.
 */
function lineHead(isoTime: string, method: string, url: string, status: number, aborted: boolean): string {
  // a time that is not a number (an embedder's bug) still makes a JSON line
  return `{"time":${isoTime ? `"${isoTime}"` : null},"method":${method},"url":${url},"status":${status}${aborted ? ',"aborted":true' : ""},"ms":`;
}

function lineMs(ms: number): string {
  return `${Number.isFinite(ms) ? Math.round(ms * 100) / 100 : null}`;
}

function lineTail(remote: string, verifier: string): string {
  return `,"remote":${remote},"verifier":${verifier}}\n`;
}

function formatLine(isoTime: string, method: string, url: string, status: number, ms: number, remote: string, verifier: string, aborted: boolean): string {
  return lineHead(isoTime, method, url, status, aborted) + lineMs(ms) + lineTail(remote, verifier);
}

/** Epoch milliseconds as ISO 8601, or "" for a value no Date holds (toISOString would throw). */
function isoTime(t: number): string {
  const d = new Date(t);
  return Number.isNaN(d.getTime()) ? "" : d.toISOString();
}

/** The access-log line of one request (what AccessLog writes for `record` with the same arguments). */
export function accessLine(time: number, method: string, url: string, status: number, ms: number, remote: string, verifier: string, aborted = false): string {
  return formatLine(isoTime(time), json(method), json(loggedUrl(url)), status, ms, json(remote), json(verifier), aborted);
}

/** A sink that formats each line on the calling thread and hands it over (tests, embedding jpki serve). */
export function lineSink(onLine: (line: string) => void): AccessLogSink {
  return { record: (...a) => onLine(accessLine(...a)) };
}

/** Records the ring holds: at 100,000 requests a second, two thirds of a second of lines. */
const RING = 1 << 16;
const MASK = RING - 1;
/** durations (in hundredths of a millisecond, so up to 163 ms) whose text the logging thread keeps once made */
const MS_TEXTS = 1 << 14;
/** how often the logging thread looks at the ring */
const LOG_INTERVAL_MS = 50;
/** distinct strings (URLs, addresses, verifier ids) remembered; more starts a new generation of ids */
const MAX_STRINGS = 10_000;
/** A string longer than this is sent with its one record and forgotten once written, never remembered. */
const MAX_REMEMBERED = 256;
/** Ids wrap here: an id is live only from its first record until its generation is retired, far fewer than this. */
const MAX_ID = 1 << 30;
/** the logging thread's output buffer to begin with: a batch of lines (64 Ki characters) of ASCII and one more line */
const OUT_BUFFER_BYTES = 1 << 17;
/** how long close() waits for the thread to write what is left (a log reader that stopped reading) */
const CLOSE_DEADLINE_MS = 2000;
/** what one write to a pipe may hold: POSIX makes a write up to PIPE_BUF (4096 on Linux) atomic */
const PIPE_BUF = 4096;

// Header words (Int32): the write index (serving thread), the read index (logging thread), lines the logging
// thread failed to write, lines read from the ring but not yet written. Indices count records and wrap at
// 2^32: only their difference and low bits matter.
const W = 0;
const R = 1;
const FAILED = 2;
const PENDING = 3;
const HEADER_BYTES = 16;
// Per record: time and ms (Float64), then status and the ids of method, url, remote, verifier (Int32).
const F64S = 2;
/** set in a record's status word for an answer not written whole (statuses stay far below it) */
const ABORTED = 1 << 16;
const I32S = 5;

/** What the serving thread posts to the logging thread (the ring carries the rest). */
type Control =
  // a string's id (negative: used by one record, forgotten once it is written)
  | { readonly add: readonly [number, string] }
  // every id added before this message is forgotten once the records before index `after` are written
  | { readonly retire: true; readonly after: number }
  // write to this file from now on (SIGHUP: logrotate moved the old one away), closing the one written so far
  | { readonly reopen: number; readonly pipe: boolean }
  | { readonly close: true };

/**
 * The logging thread, as source (started with eval: it needs no module file, so it runs the same from the
 * compiled package and from the TypeScript sources under test).
 */
const THREAD_SOURCE = `
"use strict";
const { workerData, parentPort, receiveMessageOnPort } = require("node:worker_threads");
const { closeSync, writeSync } = require("node:fs");
const lineHead = ${lineHead.toString()};
const lineMs = ${lineMs.toString()};
const lineTail = ${lineTail.toString()};
const isoTime = ${isoTime.toString()};
const { sab, ring } = workerData;
let { fd, pipe } = workerData;
let reopened = null;
const mask = ring - 1;
const header = new Int32Array(sab, 0, 4);
const f64 = new Float64Array(sab, ${HEADER_BYTES}, ring * ${F64S});
const i32 = new Int32Array(sab, ${HEADER_BYTES} + ring * ${F64S * 8}, ring * ${I32S});
const strings = new Map();
let generation = [];
const retirements = [];
let closing = false;
let stampMs = NaN;
let stamp = "";
// The parts of the last line before and after its duration (lineHead, lineTail) and the ids they were made of:
// reused while the next record repeats them (an id names one string from its add until its generation is retired).
// 0 is no id (the serving thread's start at 1, one-shots below 0), so these match nothing until set.
let head = "", headStatus = 0, headMethod = 0, headUrl = 0;
let tail = "", tailRemote = 0, tailVerifier = 0;
// The duration's text by hundredths of a millisecond (all lineMs looks at), made once each: a fraction's
// conversion to text was the costliest step of a line that reuses its head and tail. Up to MS_TEXTS; longer
// durations are converted each time.
const msTexts = new Array(${MS_TEXTS}).fill("");
function msText(ms) {
  const k = Math.round(ms * 100);
  if (!(k >= 0 && k < ${MS_TEXTS})) return lineMs(ms);
  return msTexts[k] || (msTexts[k] = lineMs(ms));
}
// What the lines are encoded into for writing: one buffer, grown when a batch needs more, never a new one per
// batch (a fresh 64 KB+ buffer per write, and counting its bytes first, cost this thread a third of its time).
let outBuf = Buffer.allocUnsafeSlow(${OUT_BUFFER_BYTES});
const pause = new Int32Array(new SharedArrayBuffer(4));
// Lines read from the ring and not yet written, how many, and whether part of the first is already out.
let pending = null;
let pendingLines = 0;
let begun = false;
function newlines(buf) {
  let n = 0;
  for (let i = buf.indexOf(10); i >= 0; i = buf.indexOf(10, i + 1)) n++;
  return n;
}
// How much of buf the next write takes: all of it, or for a pipe whole lines up to PIPE_BUF (one longer
// line alone), so that writes from several processes never interleave within a line.
function piece(buf) {
  if (!pipe || buf.length <= ${PIPE_BUF}) return buf.length;
  const nl = buf.lastIndexOf(10, ${PIPE_BUF} - 1);
  return nl >= 0 ? nl + 1 : buf.indexOf(10) + 1 || buf.length;
}
// Writes what is pending; false while a pipe is full (kept for the next round: the ring fills meanwhile and
// the serving thread drops and counts what does not fit) or after a failure.
function flush() {
  let stalled = 0;
  while (pending) {
    try {
      const n = writeSync(fd, pending, 0, piece(pending));
      // Published after every write, not once the buffer is out: close() may stop this thread while a slow
      // reader keeps it here, and counts the pending lines as dropped — those already written must not be.
      if (n === pending.length) { pending = null; pendingLines = 0; begun = false; Atomics.store(header, ${PENDING}, 0); break; }
      if (n > 0) {
        pendingLines -= newlines(pending.subarray(0, n));
        Atomics.store(header, ${PENDING}, pendingLines);
        begun = pending[n - 1] !== 10;
        pending = pending.subarray(n);
        stalled = 0;
      }
    } catch (e) {
      if (e && e.code === "EAGAIN") {
        if (stalled++ < 20) { Atomics.wait(pause, 0, 0, 1); continue; }
        break;
      }
      // A full disk, a closed pipe: the whole lines are lost (counted); a line already begun is kept, to be
      // finished before anything else is written, so the file never holds a torn line.
      const keep = begun ? pending.subarray(0, pending.indexOf(10) + 1) : null;
      Atomics.add(header, ${FAILED}, pendingLines - (keep ? 1 : 0));
      pending = keep;
      pendingLines = keep ? 1 : 0;
      break;
    }
  }
  Atomics.store(header, ${PENDING}, pendingLines);
  return pending === null;
}
function control() {
  for (let m; (m = receiveMessageOnPort(parentPort)); ) {
    const c = m.message;
    if (c.add) { strings.set(c.add[0], c.add[1]); if (c.add[0] > 0) generation.push(c.add[0]); }
    else if (c.retire) { retirements.push({ after: c.after, ids: generation }); generation = []; }
    else if (c.reopen !== undefined) { if (reopened) { try { closeSync(reopened.fd); } catch {} } reopened = { fd: c.reopen, pipe: c.pipe }; }
    else if (c.close) closing = true;
  }
}
function str(id) {
  const v = strings.get(id);
  if (id < 0) strings.delete(id);
  return v === undefined ? '"?"' : v;
}
// Called only with nothing pending (drain writes what is pending first), so outBuf is free to overwrite.
function hand(out, lines, r) {
  // at most 3 bytes per UTF-16 unit (a surrogate pair's 2 units are 4 bytes)
  if (out.length * 3 > outBuf.length) outBuf = Buffer.allocUnsafeSlow(out.length * 3);
  pending = outBuf.subarray(0, outBuf.write(out, 0));
  pendingLines = lines;
  Atomics.store(header, ${PENDING}, lines);
  Atomics.store(header, ${R}, r);
  return flush();
}
// The file a reopen names from now on, the old one closed.
function switchFile() {
  try { closeSync(fd); } catch {}
  fd = reopened.fd;
  pipe = reopened.pipe;
  reopened = null;
}
function drain() {
  if (pending && !flush()) {
    // What the old file cannot take waits for it, but not past a reopen: a line half written when the disk filled
    // held every SIGHUP until the old file took its rest, and an operator who deleted that file to free the disk
    // got no space back (its descriptor stayed open here) — the log stopped for good. That line is torn in the old
    // file either way: counted lost, and the whole lines after it go to the new file.
    control();
    if (!reopened) return false;
    if (begun) {
      const rest = pending.indexOf(10) + 1;
      Atomics.add(header, ${FAILED}, 1);
      pendingLines--;
      begun = false;
      pending = rest < pending.length ? pending.subarray(rest) : null;
      Atomics.store(header, ${PENDING}, pendingLines);
    }
    switchFile();
    if (pending && !flush()) return false;
  }
  // The write index first: every string a record up to it uses was posted before it was stored.
  const w = Atomics.load(header, ${W});
  control();
  // Nothing is pending here (written whole above): the old file ends with a whole line, the new one starts with one.
  if (reopened) switchFile();
  let r = Atomics.load(header, ${R});
  let out = "";
  let lines = 0;
  while (r !== w) {
    // ids of an earlier generation are forgotten once every record that used them is written
    while (retirements.length && ((r - retirements[0].after) | 0) >= 0) {
      for (const id of retirements.shift().ids) strings.delete(id);
      // ids come round again after MAX_ID: a retired one may name another string by then
      headStatus = headMethod = headUrl = tailRemote = tailVerifier = 0;
    }
    const s = r & mask;
    const t = f64[s * ${F64S}];
    const b = s * ${I32S};
    const st = i32[b];
    const method = i32[b + 1];
    const url = i32[b + 2];
    // A one-shot id (below 0) is never the last record's too, so its string is always read here, and forgotten.
    if (t !== stampMs || st !== headStatus || method !== headMethod || url !== headUrl) {
      if (t !== stampMs) { stampMs = t; stamp = isoTime(t); }
      head = lineHead(stamp, str(method), str(url), st & ${ABORTED - 1}, (st & ${ABORTED}) !== 0);
      headStatus = st; headMethod = method; headUrl = url;
    }
    const remote = i32[b + 3];
    const verifier = i32[b + 4];
    if (remote !== tailRemote || verifier !== tailVerifier) {
      tail = lineTail(str(remote), str(verifier));
      tailRemote = remote; tailVerifier = verifier;
    }
    out += head + msText(f64[s * ${F64S} + 1]) + tail;
    lines++;
    r = (r + 1) | 0;
    if (out.length >= 1 << 16) {
      if (!hand(out, lines, r)) return false;
      out = "";
      lines = 0;
    }
  }
  if (out) return hand(out, lines, r);
  Atomics.store(header, ${R}, r);
  return true;
}
const timer = setInterval(() => {
  const done = drain();
  if (closing && done && drain()) clearInterval(timer);
}, ${LOG_INTERVAL_MS});
`;

/** The access log of `jpki serve`: a file (appended to, created owner-only) or "-" for standard output. */
export class AccessLog implements AccessLogSink {
  readonly #target: string;
  /** the file the thread writes now (it closes the ones it wrote before) */
  #fd: number;
  readonly #ownFd: boolean;
  readonly #header: Int32Array;
  readonly #f64: Float64Array;
  readonly #i32: Int32Array;
  /** undefined when no thread could be made: the log is then as after the thread failed (see the constructor) */
  readonly #worker: Worker | undefined;
  readonly #exited: Promise<void>;
  readonly #publisher: NodeJS.Timeout | undefined;
  #w = 0;
  /** the read index last seen: the ring is full only if it still looks full after reading it again */
  #r = 0;
  #ids = new Map<string, number>();
  /** per field (method, url, remote, verifier): the last string and its id */
  readonly #last: Array<string | undefined> = [undefined, undefined, undefined, undefined];
  readonly #lastId = new Int32Array(4);
  #nextId = 1;
  #nextOneShot = -1;
  #overflowed = 0;
  /** lines the thread had not written when it ended: it failed, or close() stopped waiting for it */
  #abandoned = 0;
  /** the thread ended: what is recorded from now on is counted as dropped */
  #dead = false;
  #closed: Promise<void> | undefined;

  /**
   * `onError`: the logging thread failed (a bug) and stopped, or could not be made (ERR_WORKER_INIT_FAILED, called
   * from the constructor); the server goes on, its lines counted as dropped.
   * Throws ERR_FILE_UNUSABLE for a FIFO no process reads.
   */
  constructor(target: string, opts: { readonly onError?: (e: Error) => void } = {}) {
    this.#target = target;
    this.#ownFd = target !== "-";
    this.#fd = this.#ownFd ? openTarget(target) : stdoutFd();
    const st = fstatSync(this.#fd);
    const sab = new SharedArrayBuffer(HEADER_BYTES + RING * (F64S * 8 + I32S * 4));
    this.#header = new Int32Array(sab, 0, 4);
    this.#f64 = new Float64Array(sab, HEADER_BYTES, RING * F64S);
    this.#i32 = new Int32Array(sab, HEADER_BYTES + RING * F64S * 8, RING * I32S);
    let worker: Worker;
    try {
      // trackUnmanagedFds off: the thread closes the files this thread opened (the one it wrote before a reopen), and
      // node, tracking only a thread's own, wrote "Warning: File descriptor N closed but not opened in unmanaged mode"
      // to standard error at every SIGHUP. It opens none itself, so it has none node should close at its exit.
      worker = newThread(THREAD_SOURCE, { eval: true, trackUnmanagedFds: false, workerData: { sab, fd: this.#fd, ring: RING, pipe: st.isFIFO() || st.isSocket() } });
    } catch (e) {
      // The Worker constructor throws ERR_WORKER_INIT_FAILED when the process is at its thread limit (a container's
      // pids.max, systemd's TasksMax). No reason to refuse to serve (serve did not start before): the log is as after
      // its thread failed — every line counted as dropped (jpki_access_log_dropped_total), the cause told once.
      // Not written here instead: on the serving thread a stalled pipe or disk would hold every request.
      this.#worker = undefined;
      this.#publisher = undefined;
      this.#dead = true;
      this.#exited = Promise.resolve();
      opts.onError?.(e as Error);
      return;
    }
    this.#worker = worker;
    // The thread never keeps the process alive; close() is what waits for the last lines.
    worker.unref();
    worker.on("error", (e) => opts.onError?.(e));
    const publisher = setInterval(() => Atomics.store(this.#header, W, this.#w), LOG_INTERVAL_MS / 2);
    publisher.unref();
    this.#publisher = publisher;
    this.#exited = new Promise((resolve) =>
      worker.once("exit", () => {
        this.#dead = true;
        // Zero after a clean close; else the records it never read and the lines it had not written.
        this.#abandoned = ((this.#w - Atomics.load(this.#header, R)) | 0) + Atomics.load(this.#header, PENDING);
        clearInterval(publisher);
        resolve();
      }),
    );
  }

  /**
   * Lines recorded and not yet written (0 once the thread has ended: what it left is in `dropped`). A disk that fills
   * part way through a line holds every later line here, up to a whole ring, before any is dropped: `dropped` said 0
   * all that while, and an operator saw nothing wrong with a log that wrote nothing.
   */
  get waiting(): number {
    if (this.#dead) return 0;
    return ((this.#w - Atomics.load(this.#header, R)) | 0) + Atomics.load(this.#header, PENDING);
  }

  /** Lines not written: the ring was full, the write failed (a full disk, a closed pipe), or the thread ended first. */
  get dropped(): number {
    return this.#overflowed + Atomics.load(this.#header, FAILED) + this.#abandoned;
  }

  record(time: number, method: string, url: string, status: number, ms: number, remote: string, verifier: string, aborted = false): void {
    // After close() too (an answer finishing late, an embedder's order of stops): a line lost, so counted.
    if (this.#closed || this.#dead) {
      this.#overflowed++;
      return;
    }
    const w = this.#w;
    if (((w - this.#r) | 0) >= RING) {
      this.#r = Atomics.load(this.#header, R);
      if (((w - this.#r) | 0) >= RING) {
        this.#overflowed++;
        return;
      }
    }
    if (this.#ids.size >= MAX_STRINGS) {
      // A scan of random paths must not grow the table: a new generation of ids from this record on (all of
      // its ids), the old ones forgotten by the thread once the records before it are written.
      this.#post({ retire: true, after: w } satisfies Control);
      this.#ids = new Map();
      this.#last.fill(undefined);
    }
    const s = w & MASK;
    this.#f64[s * F64S] = time;
    this.#f64[s * F64S + 1] = ms;
    const b = s * I32S;
    const i32 = this.#i32;
    i32[b] = aborted ? status | ABORTED : status;
    // Consecutive requests mostly repeat each field: a comparison with the last one is cheaper than a lookup.
    const last = this.#last;
    const lastId = this.#lastId;
    i32[b + 1] = method === last[0] ? lastId[0]! : this.#remember(0, method, method);
    i32[b + 2] = url === last[1] ? lastId[1]! : this.#remember(1, url, undefined);
    i32[b + 3] = remote === last[2] ? lastId[2]! : this.#remember(2, remote, remote);
    i32[b + 4] = verifier === last[3] ? lastId[3]! : this.#remember(3, verifier, verifier);
    this.#w = (w + 1) | 0;
    // Published every 32 records (an atomic store is a full barrier, a tenth of a microsecond here) and by
    // the timer below for the rest, always after the fields it covers.
    if ((this.#w & 31) === 0) Atomics.store(this.#header, W, this.#w);
  }

  /** To the thread; never called once the log is dead, and without a thread it always is. */
  #post(c: Control): void {
    this.#worker?.postMessage(c);
  }

  #remember(k: number, s: string, shown: string | undefined): number {
    if (s.length > MAX_REMEMBERED) {
      // Sent with its record only: a flood of long URLs must not fill memory with remembered strings.
      const id = this.#nextOneShot;
      this.#nextOneShot = id <= -MAX_ID ? -1 : id - 1;
      this.#post({ add: [id, json(shown ?? loggedUrl(s))] } satisfies Control);
      return id;
    }
    const id = this.#id(s, shown);
    this.#last[k] = s;
    this.#lastId[k] = id;
    return id;
  }

  /** The id of a string (`shown`: as logged; undefined for a URL, which is redacted first), telling the thread a new one. */
  #id(s: string, shown: string | undefined): number {
    let id = this.#ids.get(s);
    if (id === undefined) {
      id = this.#nextId;
      // Ids restart rather than grow past an Int32 (a server seeing new URLs for weeks): the thread forgets
      // each generation's ids once they are written, long before the numbers come round again.
      this.#nextId = id >= MAX_ID ? 1 : id + 1;
      this.#ids.set(s, id);
      // Posted before the record that uses it is published: the thread reads its messages before the ring.
      this.#post({ add: [id, json(shown ?? loggedUrl(s))] } satisfies Control);
    }
    return id;
  }

  /**
   * Opens the log file again by its name, for SIGHUP after a rotation (logrotate moves access.log away, then
   * signals): the thread finishes what it was writing into the old file, closes it, and writes every later line
   * to the new one — lines recorded shortly before the call may land in either, in order; none is lost or torn
   * across the switch. Standard output is not reopened. Throws what opening the file throws (the log goes on into the old file then).
   */
  reopen(): void {
    if (!this.#ownFd || this.#closed || this.#dead) return;
    const fd = openTarget(this.#target);
    const st = fstatSync(fd);
    this.#fd = fd;
    this.#post({ reopen: fd, pipe: st.isFIFO() || st.isSocket() } satisfies Control);
  }

  /**
   * Writes every recorded line, stops the thread and closes the file. A log reader that does not take the
   * lines within CLOSE_DEADLINE_MS is not waited for: the thread is stopped and what it held counted as dropped.
   */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearInterval(this.#publisher);
      if (!this.#dead) {
        Atomics.store(this.#header, W, this.#w);
        this.#worker!.ref();
        this.#post({ close: true } satisfies Control);
        let deadline: NodeJS.Timeout | undefined;
        const late = await Promise.race([
          this.#exited.then(() => false),
          new Promise<boolean>((resolve) => (deadline = setTimeout(() => resolve(true), CLOSE_DEADLINE_MS))),
        ]);
        clearTimeout(deadline);
        if (late) await this.#worker!.terminate();
        await this.#exited;
      }
      if (this.#ownFd) closeSync(this.#fd);
    })();
    return this.#closed;
  }
}

/**
 * The log file, opened for appending (created owner-only). A FIFO is opened non-blocking, so a reader that
 * stalls never blocks the thread in a write, and opening it never waits for a reader: with none it is refused.
 */
function openTarget(path: string): number {
  let fifo = false;
  try {
    fifo = statSync(path).isFIFO();
  } catch {
    // not there yet: a file to create
  }
  if (!fifo) return openSync(path, "a", 0o600);
  try {
    return openSync(path, constants.O_WRONLY | constants.O_APPEND | constants.O_NONBLOCK);
  } catch (e) {
    if ((e as { code?: string }).code !== "ENXIO") throw e;
    throw new JpkiError("ERR_FILE_UNUSABLE", `access log ${path}: a FIFO that no process reads`, { details: { path } });
  }
}

/**
 * Standard output. Node makes a pipe there non-blocking when process.stdout is first used; used here so that
 * a log reader that stalls returns EAGAIN to the thread rather than blocking it (and the exit) for good.
 */
function stdoutFd(): number {
  void process.stdout;
  return 1;
}
