/**
 * The access log: one JSON line per request, written by a thread of its own.
 *
 * The serving thread only records each request's fields in a ring of shared memory (numbers, and ids of
 * strings it has seen before); the logging thread turns them into lines and appends them in large writes.
 * Measured on `jpki serve`'s 304 path (2 cores), building the line and handing it to a write cost the
 * serving thread about 2.2 µs per request — 1.2 µs for the line, 1 µs to flatten and copy it — a sixth of a
 * 304's whole cost; recording the fields costs it a tenth of that.
 *
 * What a line holds: the time, the method, the URL as requested with anything shaped like a token blotted out
 * (loggedUrl), the status, the milliseconds to answer, the peer address and the verifier id or "anonymous".
 * Never a credential, a PIN or the four items (a URL carries none of ours).
 *
 * On a crash the lines of the last LOG_INTERVAL_MS may be lost, never torn ones: every write is whole lines.
 * When the logging thread falls behind by a whole ring (a disk that stalls), requests are still answered and
 * their lines dropped, and counted (`dropped`), never queued without bound.
 */
import { closeSync, openSync } from "node:fs";
import { Worker } from "node:worker_threads";
import { TOKEN_PREFIX } from "../verifier/credentials.js";

/** Where a server sends what it answered; positional so that recording a request allocates nothing. */
export interface AccessLogSink {
  /**
   * `time`: epoch milliseconds; `url`: as requested (the sink redacts it); `ms`: time to answer;
   * `remote`: the peer address ("" unknown); `verifier`: a verifier id or "anonymous".
   */
  record(time: number, method: string, url: string, status: number, ms: number, remote: string, verifier: string): void;
}

/**
 * A request's URL as the access log writes it: anything shaped like one of our tokens, and the value of an
 * `access_token` parameter, blotted out. RFC 6750 §2.3 has clients send a token as `?access_token=…`: we
 * refuse it there (401), but a misconfigured verifier doing so once wrote its token to the log in clear.
 */
export function loggedUrl(url: string): string {
  let u = url;
  if (u.includes(TOKEN_PREFIX)) u = u.replace(TOKEN_ANYWHERE, `${TOKEN_PREFIX}[redacted]`);
  if (u.includes("access_token")) u = u.replace(ACCESS_TOKEN_PARAMETER, "$1[redacted]");
  return u;
}

const TOKEN_ANYWHERE = new RegExp(`${TOKEN_PREFIX}[A-Za-z0-9_-]*`, "g");
const ACCESS_TOKEN_PARAMETER = /([?&;]access_token=)[^&;#]*/gi;

// printable ASCII but " and \: nothing to escape
const PLAIN = /^[\x20\x21\x23-\x5b\x5d-\x7e]*$/;
/** A string as JSON (with its quotes); the usual URL or address needs no escaping and skips JSON.stringify. */
const json = (v: string): string => (PLAIN.test(v) ? `"${v}"` : JSON.stringify(v));

/**
 * One access-log line from its fields, the strings already JSON (quoted, escaped). The logging thread runs
 * this very function (its source is sent to the thread), so both threads write the same lines.
 */
function formatLine(isoTime: string, method: string, url: string, status: number, ms: number, remote: string, verifier: string): string {
  return `{"time":"${isoTime}","method":${method},"url":${url},"status":${status},"ms":${Math.round(ms * 100) / 100},"remote":${remote},"verifier":${verifier}}\n`;
}

/** The access-log line of one request (what AccessLog writes for `record` with the same arguments). */
export function accessLine(time: number, method: string, url: string, status: number, ms: number, remote: string, verifier: string): string {
  return formatLine(new Date(time).toISOString(), json(method), json(loggedUrl(url)), status, ms, json(remote), json(verifier));
}

/** A sink that formats each line on the calling thread and hands it over (tests, embedding jpki serve). */
export function lineSink(onLine: (line: string) => void): AccessLogSink {
  return { record: (...a) => onLine(accessLine(...a)) };
}

/** Records the ring holds: at 100,000 requests a second, two thirds of a second of lines. */
const RING = 1 << 16;
const MASK = RING - 1;
/** how often the logging thread looks at the ring */
const LOG_INTERVAL_MS = 50;
/** distinct strings (URLs, addresses, verifier ids) remembered; more starts a new generation of ids */
const MAX_STRINGS = 10_000;

// Header words (Int32): the write index (serving thread), the read index (logging thread), lines the logging
// thread failed to write. Indices count records and wrap at 2^32: only their difference and low bits matter.
const W = 0;
const R = 1;
const FAILED = 2;
const HEADER_BYTES = 16;
// Per record: time and ms (Float64), then status and the ids of method, url, remote, verifier (Int32).
const F64S = 2;
const I32S = 5;

/** What the serving thread posts to the logging thread (the ring carries the rest). */
type Control =
  | { readonly add: readonly [number, string] }
  | { readonly retire: number; readonly after: number }
  | { readonly close: true };

/**
 * The logging thread, as source (started with eval: it needs no module file, so it runs the same from the
 * compiled package and from the TypeScript sources under test).
 */
const THREAD_SOURCE = `
"use strict";
const { workerData, parentPort, receiveMessageOnPort } = require("node:worker_threads");
const { writeSync } = require("node:fs");
const formatLine = ${formatLine.toString()};
const { sab, fd, ring } = workerData;
const mask = ring - 1;
const header = new Int32Array(sab, 0, 4);
const f64 = new Float64Array(sab, ${HEADER_BYTES}, ring * ${F64S});
const i32 = new Int32Array(sab, ${HEADER_BYTES} + ring * ${F64S * 8}, ring * ${I32S});
const strings = new Map();
const retirements = [];
let closing = false;
let stampMs = -1;
let stamp = "";
const pause = new Int32Array(new SharedArrayBuffer(4));
function writeAll(text) {
  const buf = Buffer.from(text, "utf8");
  let off = 0;
  let waited = 0;
  while (off < buf.length) {
    try {
      off += writeSync(fd, buf, off, buf.length - off);
    } catch (e) {
      // a non-blocking pipe that is full (standard output to a slow reader): wait a little, up to a second
      if (e && e.code === "EAGAIN" && waited < 1000) { Atomics.wait(pause, 0, 0, 1); waited++; continue; }
      // a full disk, a closed pipe: these lines are lost (counted), the server goes on
      Atomics.add(header, ${FAILED}, text.split("\\n").length - 1);
      return;
    }
  }
}
function control() {
  for (let m; (m = receiveMessageOnPort(parentPort)); ) {
    const c = m.message;
    if (c.add) strings.set(c.add[0], c.add[1]);
    else if (c.retire !== undefined) retirements.push(c);
    else if (c.close) closing = true;
  }
}
function drain() {
  // The write index first: every string a record up to it uses was posted before it was stored.
  const w = Atomics.load(header, ${W});
  control();
  let r = Atomics.load(header, ${R});
  let out = "";
  while (r !== w) {
    // ids of an earlier generation are forgotten once every record that used them is written
    while (retirements.length && ((r - retirements[0].after) | 0) >= 0) {
      const below = retirements.shift().retire;
      for (const id of strings.keys()) if (id < below) strings.delete(id);
    }
    const s = r & mask;
    const t = f64[s * ${F64S}];
    if (t !== stampMs) { stampMs = t; stamp = new Date(t).toISOString(); }
    const b = s * ${I32S};
    out += formatLine(stamp, strings.get(i32[b + 1]), strings.get(i32[b + 2]), i32[b], f64[s * ${F64S} + 1], strings.get(i32[b + 3]), strings.get(i32[b + 4]));
    r = (r + 1) | 0;
    if (out.length >= 1 << 16) { writeAll(out); out = ""; Atomics.store(header, ${R}, r); }
  }
  if (out) writeAll(out);
  Atomics.store(header, ${R}, r);
}
const timer = setInterval(() => {
  drain();
  if (closing) { clearInterval(timer); drain(); }
}, ${LOG_INTERVAL_MS});
`;

/** The access log of `jpki serve`: a file (appended to, created owner-only) or "-" for standard output. */
export class AccessLog implements AccessLogSink {
  readonly #fd: number;
  readonly #ownFd: boolean;
  readonly #header: Int32Array;
  readonly #f64: Float64Array;
  readonly #i32: Int32Array;
  readonly #worker: Worker;
  readonly #exited: Promise<void>;
  readonly #publisher: NodeJS.Timeout;
  #w = 0;
  /** the read index last seen: the ring is full only if it still looks full after reading it again */
  #r = 0;
  #ids = new Map<string, number>();
  /** per field (method, url, remote, verifier): the last string and its id */
  readonly #last: Array<string | undefined> = [undefined, undefined, undefined, undefined];
  readonly #lastId = new Int32Array(4);
  #nextId = 1;
  #overflowed = 0;
  #closed: Promise<void> | undefined;

  constructor(target: string) {
    this.#ownFd = target !== "-";
    this.#fd = this.#ownFd ? openSync(target, "a", 0o600) : 1;
    const sab = new SharedArrayBuffer(HEADER_BYTES + RING * (F64S * 8 + I32S * 4));
    this.#header = new Int32Array(sab, 0, 4);
    this.#f64 = new Float64Array(sab, HEADER_BYTES, RING * F64S);
    this.#i32 = new Int32Array(sab, HEADER_BYTES + RING * F64S * 8, RING * I32S);
    this.#worker = new Worker(THREAD_SOURCE, { eval: true, workerData: { sab, fd: this.#fd, ring: RING } });
    // The thread never keeps the process alive; close() is what waits for the last lines.
    this.#worker.unref();
    this.#publisher = setInterval(() => Atomics.store(this.#header, W, this.#w), LOG_INTERVAL_MS / 2);
    this.#publisher.unref();
    this.#exited = new Promise((resolve) => this.#worker.once("exit", () => resolve()));
  }

  /** Lines not written: the ring was full, or the write failed (a full disk, a closed pipe). */
  get dropped(): number {
    return this.#overflowed + Atomics.load(this.#header, FAILED);
  }

  record(time: number, method: string, url: string, status: number, ms: number, remote: string, verifier: string): void {
    if (this.#closed) return;
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
      this.#worker.postMessage({ retire: this.#nextId, after: w } satisfies Control);
      this.#ids = new Map();
      this.#last.fill(undefined);
    }
    const s = w & MASK;
    this.#f64[s * F64S] = time;
    this.#f64[s * F64S + 1] = ms;
    const b = s * I32S;
    const i32 = this.#i32;
    i32[b] = status;
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

  #remember(k: number, s: string, shown: string | undefined): number {
    const id = this.#id(s, shown);
    this.#last[k] = s;
    this.#lastId[k] = id;
    return id;
  }

  /** The id of a string (`shown`: as logged; undefined for a URL, which is redacted first), telling the thread a new one. */
  #id(s: string, shown: string | undefined): number {
    let id = this.#ids.get(s);
    if (id === undefined) {
      id = this.#nextId++;
      this.#ids.set(s, id);
      // Posted before the record that uses it is published: the thread reads its messages before the ring.
      this.#worker.postMessage({ add: [id, json(shown ?? loggedUrl(s))] } satisfies Control);
    }
    return id;
  }

  /** Writes every recorded line, stops the thread and closes the file. */
  close(): Promise<void> {
    this.#closed ??= (async () => {
      clearInterval(this.#publisher);
      Atomics.store(this.#header, W, this.#w);
      this.#worker.ref();
      this.#worker.postMessage({ close: true } satisfies Control);
      await this.#exited;
      if (this.#ownFd) closeSync(this.#fd);
    })();
    return this.#closed;
  }
}
