/**
 * PostgreSQL's binary wire formats, written and read in node so neither side parses text: COPY in binary format
 * through node-postgres's Submittable interface (PostgreSQL documentation, COPY, "Binary Format"), and array
 * parameters in array_send's format (node-postgres sends a Buffer parameter as binary).
 *
 * Why: node-postgres sends every array parameter as text, escaping each element with two regular expressions
 * in node, and the server parses it again with array_in. For the hot inserts, binary COPY rows measured on
 * 20,000 1.2 KB certificates in groups of 500: node 11.1 → 8.9 µs and server 26.0 → 23.3 µs per row. For the
 * arrays of keys and the audit record's JSON (tens of kilobytes full of quotes, each escaped), binary arrays
 * leave no garbage beyond the one buffer.
 */
import type { Connection, Submittable } from "pg";
import { JpkiError } from "../errors.js";

/**
 * A value the binary writers cannot encode as its column's type: the store's code passed the wrong thing, which
 * the text formats used to refuse in the server (or store as NULL) and Buffer's writers would not: writeInt32BE
 * cuts 1.5 to 1 and NaN, undefined or null to 0, and a boolean byte is `v ? 1 : 0`. The message names the type
 * and never a text value (it may be one of the four items).
 */
function unencodable(type: string, v: unknown): JpkiError {
  const what = typeof v === "number" || typeof v === "bigint" ? `${typeof v} ${String(v)}` : v === null ? "null" : typeof v;
  return new JpkiError("ERR_INTERNAL", `a value for a PostgreSQL ${type} is ${what}, which a ${type} cannot hold: the store was passed a wrong value`);
}

const INT8_MIN = -(2n ** 63n);
const INT8_MAX = 2n ** 63n - 1n;

/**
 * An int8 as a bigint. A number must be a safe integer: past 2^53 it is no longer the integer it was computed as
 * (no time or count of ours gets there), and BigInt would throw a RangeError, not ours, for 1.5 or NaN.
 */
function int8Of(v: number | bigint): bigint {
  if (typeof v === "bigint") {
    if (v >= INT8_MIN && v <= INT8_MAX) return v;
  } else if (Number.isSafeInteger(v)) return BigInt(v);
  throw unencodable("bigint", v);
}

const TWO_32 = 2 ** 32;

/**
 * Writes an int8 at `at`: a number (a safe integer, as int8Of) as its two 32-bit halves, with no BigInt. Through
 * writeBigInt64BE each number made a BigInt and Buffer's writer four more (a mask and a shift of each half): about
 * 0.6 KB of V8 heap per issued certificate (six int8 fields in the two COPYs' rows, sampled), for scavenges to sweep.
 * The bytes are the same (pg-binary.test.ts compares them with writeBigInt64BE's).
 */
export function writeInt8(buf: Buffer, at: number, v: number | bigint): void {
  if (typeof v === "number" && Number.isSafeInteger(v)) {
    // floor: the high half of a negative number is negative, the low half what is left, 0 … 2^32 − 1
    const hi = Math.floor(v / TWO_32);
    buf.writeInt32BE(hi, at);
    buf.writeUInt32BE(v - hi * TWO_32, at + 4);
  } else buf.writeBigInt64BE(int8Of(v), at);
}

function checkText(v: string): string {
  if (typeof v !== "string") throw unencodable("text", v);
  return v;
}

/** PostgreSQL's binary COPY signature; the flags field and the header extension length follow it. */
export const COPY_SIGNATURE = Buffer.from("PGCOPY\n\xff\r\n\0", "latin1");

/** Settles a COPY when the server says it is ready again; the first error wins. */
abstract class CopySubmittable<T> implements Submittable {
  readonly done: Promise<T>;
  readonly #text: string;
  #error: unknown;
  #settled = false;
  #resolve!: (v: T) => void;
  #reject!: (e: unknown) => void;

  constructor(text: string) {
    this.#text = text;
    this.done = new Promise((resolve, reject) => ((this.#resolve = resolve), (this.#reject = reject)));
    this.done.catch(() => undefined); // the caller awaits it; a failure before that is not unhandled
  }

  protected abstract result(): T;

  submit(connection: Connection): void {
    connection.query(this.#text);
  }

  handleError(e: unknown): void {
    this.#error ??= e;
    // Without a live connection no ReadyForQuery follows: settle now.
    this.#settle();
  }

  handleReadyForQuery(): void {
    this.#settle();
  }

  handleCommandComplete(_msg: { text?: string }, _con?: Connection): void {}
  handleRowDescription(): void {}
  handleDataRow(): void {}
  handleEmptyQuery(): void {}
  handlePortalSuspended(): void {}
  handleCopyData(_msg: { chunk: Buffer }, _con?: Connection): void {}
  handleCopyInResponse(_con: Connection): void {}

  #settle(): void {
    if (this.#settled) return;
    this.#settled = true;
    if (this.#error !== undefined) this.#reject(this.#error);
    else this.#resolve(this.result());
  }
}

/**
 * COPY … TO STDOUT: the CopyData messages' bytes as the server sent them (one copy each, not concatenated:
 * PostgreSQL sends a row per message, so a large field is one slice).
 */
export class CopyOut extends CopySubmittable<Buffer[]> {
  readonly #chunks: Buffer[] = [];

  override handleCopyData(msg: { chunk: Buffer }): void {
    // A copy: the chunk is a view of the protocol parser's buffer, which it reuses for later messages.
    // (allocUnsafe and copy is a memcpy; Buffer.from(buffer) copies element-wise, measured 3× slower.)
    const own = Buffer.allocUnsafe(msg.chunk.length);
    msg.chunk.copy(own);
    this.#chunks.push(own);
  }

  protected result(): Buffer[] {
    return this.#chunks;
  }
}

/** COPY … FROM STDIN (FORMAT binary) of rows encoded with {@link BinaryRows}; settles with the rows copied. */
/**
 * The most data one CopyData message of {@link CopyIn} carries. The server refuses a message of 1 GiB or more
 * (PQ_LARGE_MESSAGE_LIMIT): the rows of one commitIssuances call of ≈ 650,000 certificates would be one such
 * message. Rows may span messages (COPY's data is a stream).
 */
export const COPY_CHUNK_BYTES = 1 << 20;

export class CopyIn extends CopySubmittable<number> {
  readonly #data: Buffer;
  readonly #chunk: number;
  #rows = 0;

  /** `chunkBytes`: the most data one CopyData message carries (default {@link COPY_CHUNK_BYTES}). */
  constructor(text: string, data: Buffer, chunkBytes = COPY_CHUNK_BYTES) {
    super(text);
    this.#data = data;
    this.#chunk = chunkBytes;
  }

  override handleCopyInResponse(con: Connection): void {
    // node-postgres's Connection has these (pg-copy-streams uses them); @types/pg does not declare them.
    const copying = con as unknown as { sendCopyFromChunk(b: Buffer): void; endCopyFrom(): void };
    for (let at = 0; at < this.#data.length; at += this.#chunk) copying.sendCopyFromChunk(this.#data.subarray(at, at + this.#chunk));
    copying.endCopyFrom();
  }

  override handleCommandComplete(msg: { text?: string }): void {
    // "COPY n"
    const n = Number(msg.text?.slice(msg.text.lastIndexOf(" ") + 1));
    if (Number.isSafeInteger(n)) this.#rows = n;
  }

  protected result(): number {
    return this.#rows;
  }
}

/**
 * The rows of a binary COPY, written field by field into one growing buffer: text as UTF-8, int8 as eight
 * octets, bytea as is, null as length −1. The caller writes each row's fields in the table's column order
 * of its COPY statement, after {@link row} with their count.
 */
export class BinaryRows {
  #buf: Buffer;
  #at = 0;

  /** `sizeHint`: the bytes the rows are expected to take (the buffer grows past it when needed). */
  constructor(sizeHint = 64 * 1024) {
    this.#buf = Buffer.allocUnsafe(Math.max(64, sizeHint + 21));
    this.#buf.set(COPY_SIGNATURE, 0);
    this.#buf.writeInt32BE(0, 11); // flags: no OIDs
    this.#buf.writeInt32BE(0, 15); // no header extension
    this.#at = 19;
  }

  #room(n: number): void {
    if (this.#at + n <= this.#buf.length) return;
    const next = Buffer.allocUnsafe(Math.max(this.#buf.length * 2, this.#at + n));
    this.#buf.copy(next, 0, 0, this.#at);
    this.#buf = next;
  }

  row(fields: number): this {
    this.#room(2);
    this.#buf.writeInt16BE(fields, this.#at);
    this.#at += 2;
    return this;
  }

  text(s: string): this {
    checkText(s);
    // At most three octets of UTF-8 per UTF-16 code unit.
    this.#room(4 + s.length * 3);
    const n = this.#buf.write(s, this.#at + 4, "utf8");
    this.#buf.writeInt32BE(n, this.#at);
    this.#at += 4 + n;
    return this;
  }

  int8(v: number | bigint): this {
    this.#room(12);
    this.#buf.writeInt32BE(8, this.#at);
    writeInt8(this.#buf, this.#at + 4, v);
    this.#at += 12;
    return this;
  }

  bytea(b: Uint8Array): this {
    // Buffer#set takes any array-like, each element cut to an octet (["a"] would be one zero octet).
    if (!(b instanceof Uint8Array)) throw unencodable("bytea", b);
    this.#room(4 + b.length);
    this.#buf.writeInt32BE(b.length, this.#at);
    this.#buf.set(b, this.#at + 4);
    this.#at += 4 + b.length;
    return this;
  }

  null(): this {
    this.#room(4);
    this.#buf.writeInt32BE(-1, this.#at);
    this.#at += 4;
    return this;
  }

  textOrNull(s: string | null | undefined): this {
    return s == null ? this.null() : this.text(s);
  }

  /** The whole COPY stream: header, rows, trailer. */
  end(): Buffer {
    this.#room(2);
    this.#buf.writeInt16BE(-1, this.#at);
    this.#at += 2;
    return this.#buf.subarray(0, this.#at);
  }
}

/** Element type OIDs (pg_type) of the arrays written here: array_recv refuses an array of any other element type. */
const TEXT_OID = 25;
const INT8_OID = 20;
const INT4_OID = 23;
const BOOL_OID = 16;
const BYTEA_OID = 17;

/** The header of a one-dimensional array (array_send): dimensions, null flag, element type, length, lower bound 1. */
function arrayHeader(buf: Buffer, n: number, hasNull: boolean, oid: number): number {
  if (n === 0) {
    // An empty array has no dimensions.
    buf.writeInt32BE(0, 0);
    buf.writeInt32BE(0, 4);
    buf.writeInt32BE(oid, 8);
    return 12;
  }
  buf.writeInt32BE(1, 0);
  buf.writeInt32BE(hasNull ? 1 : 0, 4);
  buf.writeInt32BE(oid, 8);
  buf.writeInt32BE(n, 12);
  buf.writeInt32BE(1, 16);
  return 20;
}

/** A text[] parameter in binary format: strings, or text as UTF-8 bytes (null and undefined elements are SQL NULL). */
export function textArray(values: ReadonlyArray<string | Uint8Array | null | undefined>): Buffer {
  let size = 20;
  let hasNull = false;
  for (const v of values) {
    if (v == null) hasNull = true;
    else if (!(v instanceof Uint8Array)) checkText(v);
    size += 4 + (v == null ? 0 : v instanceof Uint8Array ? v.length : v.length * 3);
  }
  const buf = Buffer.allocUnsafe(size);
  let at = arrayHeader(buf, values.length, hasNull, TEXT_OID);
  for (const v of values) {
    if (v == null) {
      buf.writeInt32BE(-1, at);
      at += 4;
      continue;
    }
    // UTF-8 bytes (a notice body from a reader thread) go in as they are; the server checks they are UTF-8.
    const n = v instanceof Uint8Array ? (buf.set(v, at + 4), v.length) : buf.write(v, at + 4, "utf8");
    buf.writeInt32BE(n, at);
    at += 4 + n;
  }
  return buf.subarray(0, at);
}

/** A bytea[] parameter in binary format (undefined elements are SQL NULL). */
export function byteaArray(values: ReadonlyArray<Uint8Array | undefined>): Buffer {
  let size = 20;
  let hasNull = false;
  for (const v of values) {
    if (v === undefined) hasNull = true;
    else if (!(v instanceof Uint8Array)) throw unencodable("bytea", v);
    size += 4 + (v?.length ?? 0);
  }
  const buf = Buffer.allocUnsafe(size);
  let at = arrayHeader(buf, values.length, hasNull, BYTEA_OID);
  for (const v of values) {
    buf.writeInt32BE(v === undefined ? -1 : v.length, at);
    at += 4;
    if (v !== undefined) {
      buf.set(v, at);
      at += v.length;
    }
  }
  return buf.subarray(0, at);
}

/**
 * A one-dimensional array of a fixed-width element type, no nulls: each element its length, then `write`'s
 * octets. `write` throws {@link unencodable} for a value its type does not hold (null and undefined too).
 */
function fixedArray<T>(values: readonly T[], oid: number, width: number, write: (buf: Buffer, at: number, v: T) => void): Buffer {
  const buf = Buffer.allocUnsafe(20 + values.length * (4 + width));
  let at = arrayHeader(buf, values.length, false, oid);
  for (const v of values) {
    buf.writeInt32BE(width, at);
    write(buf, at + 4, v);
    at += 4 + width;
  }
  return buf.subarray(0, at);
}

/** An int8[] (bigint[]) parameter in binary format. */
export function int8Array(values: ReadonlyArray<number | bigint>): Buffer {
  return fixedArray(values, INT8_OID, 8, writeInt8);
}

/** An int4[] (integer[]) parameter in binary format. */
export function int4Array(values: readonly number[]): Buffer {
  return fixedArray(values, INT4_OID, 4, (buf, at, v) => {
    if (!Number.isInteger(v) || v < -(2 ** 31) || v >= 2 ** 31) throw unencodable("integer", v);
    buf.writeInt32BE(v, at);
  });
}

/** A boolean[] parameter in binary format. */
export function boolArray(values: readonly boolean[]): Buffer {
  return fixedArray(values, BOOL_OID, 1, (buf, at, v) => {
    if (typeof v !== "boolean") throw unencodable("boolean", v);
    buf[at] = v ? 1 : 0;
  });
}
