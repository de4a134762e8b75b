/**
 * Command and response APDUs, ISO/IEC 7816-4 §5.1–5.2: the four cases, short and extended length fields.
 *
 * Parsing never throws: bytes that fit no case (a length field that disagrees with the data, fewer than four
 * header bytes) come back as the status word the card answers (67 00), because inside the card status words are
 * the only error channel (STYLE.md §11). APDUs are immutable: the data field is copied in and out.
 */
import { SW, type StatusWord } from "./status-words.js";

/** The largest Ne a short Le can ask for (Le = 00 means 256) and an extended one (00 00 means 65536). */
export const SHORT_NE_MAX = 256;
export const EXTENDED_NE_MAX = 65536;

export interface CommandApduParams {
  readonly cla: number;
  readonly ins: number;
  readonly p1: number;
  readonly p2: number;
  /** the command data field (Lc bytes); absent or empty for cases 1 and 2 */
  readonly data?: Uint8Array;
  /** Ne, the number of response bytes expected; 0 or absent for cases 1 and 3 */
  readonly ne?: number;
  /** force extended length fields even when short ones would do */
  readonly extended?: boolean;
}

/** A command APDU (ISO 7816-4 §5.1). */
export class CommandApdu {
  readonly cla: number;
  readonly ins: number;
  readonly p1: number;
  readonly p2: number;
  /** Ne: how many response data bytes the reader accepts (0: none expected). */
  readonly ne: number;
  /** true when the length fields were (or will be) encoded in the extended form */
  readonly extended: boolean;
  readonly #data: Uint8Array;

  constructor(p: CommandApduParams) {
    for (const [k, v] of [["cla", p.cla], ["ins", p.ins], ["p1", p.p1], ["p2", p.p2]] as const) {
      if (!Number.isInteger(v) || v < 0 || v > 0xff) throw new RangeError(`${k} is a byte (0–255)`);
    }
    const data = p.data ?? new Uint8Array(0);
    const ne = p.ne ?? 0;
    if (!Number.isInteger(ne) || ne < 0 || ne > EXTENDED_NE_MAX) throw new RangeError("Ne is 0–65536");
    if (data.length > 65535) throw new RangeError("Nc is at most 65535");
    this.cla = p.cla;
    this.ins = p.ins;
    this.p1 = p.p1;
    this.p2 = p.p2;
    this.ne = ne;
    this.extended = p.extended === true || data.length > 255 || ne > SHORT_NE_MAX;
    this.#data = Uint8Array.from(data);
  }

  /** Nc, the length of the data field. */
  get nc(): number {
    return this.#data.length;
  }

  /** A copy of the data field. */
  get data(): Uint8Array {
    return Uint8Array.from(this.#data);
  }

  /** The data byte at i without copying (undefined past the end). */
  dataAt(i: number): number | undefined {
    return this.#data[i];
  }

  /** The data field as a read-only view for the card's handlers (they never write through it). */
  dataView(): Readonly<Uint8Array> {
    return this.#data;
  }

  /** The ISO 7816-4 case: 1 no data no Le, 2 Le only, 3 data only, 4 both. */
  get case(): 1 | 2 | 3 | 4 {
    return this.nc === 0 ? (this.ne === 0 ? 1 : 2) : this.ne === 0 ? 3 : 4;
  }

  /** The bytes on the wire. */
  encode(): Uint8Array {
    const head = [this.cla, this.ins, this.p1, this.p2];
    const nc = this.nc;
    const ne = this.ne;
    const out: number[] = [...head];
    if (!this.extended) {
      if (nc > 0) out.push(nc, ...this.#data);
      if (ne > 0) out.push(ne === SHORT_NE_MAX ? 0 : ne);
      return Uint8Array.from(out);
    }
    // Extended (§5.1, table 3): one 00 byte, then Lc as two bytes; Le is two bytes after the data, or three
    // (00 + two) when there is no data.
    if (nc > 0) out.push(0, nc >> 8, nc & 0xff, ...this.#data);
    if (ne > 0) {
      const le = ne === EXTENDED_NE_MAX ? 0 : ne;
      if (nc === 0) out.push(0);
      out.push(le >> 8, le & 0xff);
    }
    if (nc === 0 && ne === 0) return Uint8Array.from(head);
    return Uint8Array.from(out);
  }
}

export type ParsedCommand = { readonly ok: true; readonly apdu: CommandApdu } | { readonly ok: false; readonly sw: StatusWord };

/** Decodes a command APDU; malformed length fields give 67 00, never an exception. */
export function parseCommandApdu(bytes: Uint8Array): ParsedCommand {
  const bad = { ok: false, sw: SW.WRONG_LENGTH } as const;
  if (bytes.length < 4) return bad;
  const [cla, ins, p1, p2] = [bytes[0]!, bytes[1]!, bytes[2]!, bytes[3]!];
  const n = bytes.length;
  const make = (data: Uint8Array | undefined, ne: number, extended: boolean): ParsedCommand => ({
    ok: true,
    apdu: new CommandApdu({ cla, ins, p1, p2, ...(data ? { data } : {}), ne, extended }),
  });
  if (n === 4) return make(undefined, 0, false); // case 1
  const b4 = bytes[4]!;
  if (n === 5) return make(undefined, b4 === 0 ? SHORT_NE_MAX : b4, false); // case 2S
  if (b4 !== 0) {
    if (n === 5 + b4) return make(bytes.subarray(5), 0, false); // case 3S
    if (n === 6 + b4) {
      const le = bytes[n - 1]!;
      return make(bytes.subarray(5, n - 1), le === 0 ? SHORT_NE_MAX : le, false); // case 4S
    }
    return bad;
  }
  // b4 = 00 and more bytes follow: extended length.
  if (n < 7) return bad;
  const w = (bytes[5]! << 8) | bytes[6]!;
  if (n === 7) return make(undefined, w === 0 ? EXTENDED_NE_MAX : w, true); // case 2E
  if (w === 0) return bad; // Lc 00 00 is not an extended Lc
  if (n === 7 + w) return make(bytes.subarray(7), 0, true); // case 3E
  if (n === 9 + w) {
    const le = (bytes[n - 2]! << 8) | bytes[n - 1]!;
    return make(bytes.subarray(7, n - 2), le === 0 ? EXTENDED_NE_MAX : le, true); // case 4E
  }
  return bad;
}

/** A response APDU (ISO 7816-4 §5.2): data then SW1 SW2. */
export interface ResponseApdu {
  readonly data: Uint8Array;
  readonly sw: StatusWord;
}

export function encodeResponse(data: Uint8Array, sw: StatusWord): Uint8Array {
  const out = new Uint8Array(data.length + 2);
  out.set(data, 0);
  out[data.length] = (sw >> 8) & 0xff;
  out[data.length + 1] = sw & 0xff;
  return out;
}

/** Splits a response into data and status word; undefined when it has fewer than the two SW bytes. */
export function parseResponse(bytes: Uint8Array): ResponseApdu | undefined {
  if (bytes.length < 2) return undefined;
  const n = bytes.length;
  return Object.freeze({ data: Uint8Array.from(bytes.subarray(0, n - 2)), sw: (bytes[n - 2]! << 8) | bytes[n - 1]! });
}
