/**
 * The four basic items in subjectAltName (shared/spec/JPKI.md "The four basic items"; RFC 5280 §4.2.1.6):
 * six otherName entries `[0] IMPLICIT SEQUENCE { type-id OID, value [0] EXPLICIT UTF8String }` under the
 * J-LIS arc 1.2.392.200149.8.5.5. We write them in the order seen on real cards (.1, .4, .3, .5, .2, .6);
 * readers key by OID, never by position.
 */
import { JpkiError } from "../errors.js";
import { encodeTree, explicit, oid, readHeader, TAG, tlvOf, tlvSize, tree, utf8, writeHeader, type Tree } from "../pki/der.js";
import {
  decodeBirthDate,
  decodeGender,
  encodeFourItems,
  IDEOGRAPHIC_SPACE,
  isJisX0208,
  MAX_ADDRESS_LENGTH,
  type EncodedFourItems,
  type EraCode,
  type FourItemsField,
} from "./four-items.js";
import { FOUR_ITEMS_OID } from "./oids.js";
import type { FourItems, Gender } from "./types.js";

/** Order of the entries on the wire (real-world order). */
export const FOUR_ITEMS_WIRE_ORDER: readonly FourItemsField[] = Object.freeze([
  "name",
  "birthDate",
  "gender",
  "address",
  "nameSubstituteFlags",
  "addressSubstituteFlags",
]);

const FIELD_BY_OID: ReadonlyMap<string, FourItemsField> = new Map(
  (Object.entries(FOUR_ITEMS_OID) as Array<[FourItemsField, string]>).map(([f, o]) => [o, f]),
);

/** True when the OID is one of the six four-items type-ids. */
export function isFourItemsOid(typeId: string): boolean {
  return FIELD_BY_OID.has(typeId);
}

/** otherName (GeneralName [0]): IMPLICIT over the SEQUENCE, so the constructed tag replaces 0x30. */
export function otherName(typeId: string, utf8Value: string): Buffer {
  return tlvOf(0xa0, [oid(typeId), explicit(0, utf8(utf8Value))]);
}

/** The GeneralNames (extnValue of subjectAltName) for already-encoded items, as a tree written in one go. */
export function fourItemsGeneralNamesTree(encoded: EncodedFourItems): Tree {
  return tree(
    TAG.SEQUENCE,
    ...FOUR_ITEMS_WIRE_ORDER.map((f) => tree(0xa0, oid(FOUR_ITEMS_OID[f]), tree(0xa0, tree(TAG.UTF8_STRING, encoded[f])))),
  );
}

/** The six type-ids in wire order, as OID TLVs. */
const WIRE_OIDS: readonly Buffer[] = FOUR_ITEMS_WIRE_ORDER.map((f) => oid(FOUR_ITEMS_OID[f]));

/** UTF-8 lengths of the six values, measured once for sizing and writing (the issuing path runs on one thread). */
const valueLengths = new Array<number>(FOUR_ITEMS_WIRE_ORDER.length).fill(0);

/**
 * Measure-then-write form of fourItemsGeneralNamesTree, for the issuing path: the content length of the
 * GeneralNames SEQUENCE, remembering each value's length for the writeFourItemsGeneralNames call that must
 * follow it (same items).
 */
export function measureFourItemsGeneralNames(encoded: EncodedFourItems): number {
  let content = 0;
  for (let i = 0; i < FOUR_ITEMS_WIRE_ORDER.length; i++) {
    const v = Buffer.byteLength(encoded[FOUR_ITEMS_WIRE_ORDER[i]!], "utf8");
    valueLengths[i] = v;
    content += tlvSize(WIRE_OIDS[i]!.length + tlvSize(tlvSize(v)));
  }
  return content;
}

/** Writes the GeneralNames just measured (byte for byte fourItemsGeneralNamesTree's); returns the offset after it. */
export function writeFourItemsGeneralNames(encoded: EncodedFourItems, out: Buffer, off: number, content: number): number {
  const end = off + tlvSize(content);
  off = writeHeader(out, off, TAG.SEQUENCE, content);
  for (let i = 0; i < FOUR_ITEMS_WIRE_ORDER.length; i++) {
    const v = valueLengths[i]!;
    const o = WIRE_OIDS[i]!;
    off = writeHeader(out, off, 0xa0, o.length + tlvSize(tlvSize(v)));
    out.set(o, off);
    off = writeHeader(out, off + o.length, 0xa0, tlvSize(v));
    off = writeHeader(out, off, TAG.UTF8_STRING, v);
    off += out.write(encoded[FOUR_ITEMS_WIRE_ORDER[i]!], off, v, "utf8");
  }
  if (off !== end) throw new RangeError("four items: written length differs from the measured one");
  return off;
}

/** The GeneralNames (extnValue of subjectAltName) for already-encoded items. */
export function encodeFourItemsGeneralNames(encoded: EncodedFourItems): Buffer {
  return encodeTree(fourItemsGeneralNamesTree(encoded));
}

/** The GeneralNames (extnValue of subjectAltName) carrying the four items; validates and substitutes first. */
export function encodeFourItemsSan(items: FourItems): Buffer {
  return encodeFourItemsGeneralNames(encodeFourItems(items));
}

/** What is wrong with one item; messages never contain the value. */
export interface FourItemsProblem {
  readonly field: FourItemsField;
  readonly message: string;
}

/** The four items read back from a certificate: raw strings by field, decoded fields, and problems found. */
export interface DecodedFourItems {
  /** The six values as found, keyed by field (absent when the entry is missing or not a UTF8String). */
  readonly raw: Readonly<Partial<Record<FourItemsField, string>>>;
  readonly name?: string;
  readonly gender?: Gender;
  /** ISO date (Gregorian) */
  readonly birthDate?: string;
  readonly era?: EraCode;
  readonly address?: string;
  readonly nameSubstituteFlags?: string;
  readonly addressSubstituteFlags?: string;
  /** True when each flags string has exactly one flag per character of its text. */
  readonly flagsMatch: { readonly name: boolean; readonly address: boolean };
  /** True when all six entries are present exactly once and no problem was found. */
  readonly wellFormed: boolean;
  readonly problems: readonly FourItemsProblem[];
}

/**
 * Reads the four items from a GeneralNames DER (the subjectAltName extnValue). Returns null when none of
 * the six type-ids occurs (e.g. a user-authentication certificate). Throws ERR_DER_MALFORMED when the
 * GeneralNames themselves do not decode.
 */
export function decodeFourItemsSan(generalNamesDer: Uint8Array): DecodedFourItems | null {
  let entries: Array<{ typeId: Uint8Array; value: Uint8Array }>;
  try {
    entries = otherNames(generalNamesDer);
  } catch (e) {
    throw new JpkiError("ERR_DER_MALFORMED", "the subjectAltName GeneralNames could not be decoded", { cause: e });
  }
  const problems: FourItemsProblem[] = [];
  const raw: Partial<Record<FourItemsField, string>> = {};
  const seen = new Set<FourItemsField>();
  for (const on of entries) {
    const field = FIELD_BY_OID_DER.get(Buffer.from(on.typeId.buffer, on.typeId.byteOffset, on.typeId.byteLength).toString("latin1"));
    if (!field) continue;
    if (seen.has(field)) {
      problems.push({ field, message: `${field} occurs more than once` });
      continue;
    }
    seen.add(field);
    const text = readUtf8(on.value);
    if (text === undefined) problems.push({ field, message: `${field} is not a UTF8String` });
    else raw[field] = text;
  }
  if (seen.size === 0) return null;
  for (const f of FOUR_ITEMS_WIRE_ORDER) if (!seen.has(f)) problems.push({ field: f, message: `${f} is missing` });
  return interpret(raw, problems);
}

/** The six type-ids by their DER encoding (tag, length, arcs), so matching needs no OID decoded to text. */
const FIELD_BY_OID_DER: ReadonlyMap<string, FourItemsField> = new Map(
  (Object.entries(FOUR_ITEMS_OID) as Array<[FourItemsField, string]>).map(([f, o]) => [oid(o).toString("latin1"), f]),
);

/**
 * The otherName entries of a GeneralNames DER (RFC 5280 §4.2.1.6), read in place: type-id as its OID TLV and
 * value as the TLV inside the [0] EXPLICIT wrapper. Read with the DER header reader rather than a schema
 * library: validation reads the four items of every certificate it is shown, and the schema parse was half of
 * a validation's time (bench verifier-api). Throws RangeError where the structure is not GeneralNames: not a
 * SEQUENCE, lengths past their parent or trailing bytes, a choice other than [0]..[8], an otherName that is not
 * an OID followed by [0].
 */
function otherNames(der: Uint8Array): Array<{ typeId: Uint8Array; value: Uint8Array }> {
  const outer = readHeader(der, 0);
  if (outer.tag !== TAG.SEQUENCE) throw new RangeError("GeneralNames is not a SEQUENCE");
  const end = outer.headerLength + outer.length;
  if (end !== der.length) throw new RangeError("GeneralNames has trailing bytes or is truncated");
  const out: Array<{ typeId: Uint8Array; value: Uint8Array }> = [];
  let off = outer.headerLength;
  while (off < end) {
    const h = readHeader(der, off);
    const next = off + h.headerLength + h.length;
    if (next > end) throw new RangeError("a GeneralName overruns GeneralNames");
    // context-specific [0]..[8], primitive or constructed as each choice is (class bits 10, tag number ≤ 8)
    if ((h.tag & 0xc0) !== 0x80 || (h.tag & 0x1f) > 8) throw new RangeError("a GeneralName with a tag GeneralName does not have");
    if (h.tag === 0xa0) {
      const cEnd = next;
      const t = readHeader(der, off + h.headerLength);
      const tEnd = off + h.headerLength + t.headerLength + t.length;
      if (t.tag !== TAG.OID || tEnd > cEnd) throw new RangeError("otherName without its type-id");
      const w = readHeader(der, tEnd);
      const wEnd = tEnd + w.headerLength + w.length;
      if (w.tag !== 0xa0 || wEnd !== cEnd) throw new RangeError("otherName without its [0] value");
      out.push({ typeId: der.subarray(off + h.headerLength, tEnd), value: der.subarray(tEnd + w.headerLength, wEnd) });
    } else if (h.tag === 0x80) {
      throw new RangeError("otherName must be constructed");
    }
    off = next;
  }
  return out;
}

/** Decodes one complete UTF8String TLV; undefined for any other tag, trailing bytes or invalid UTF-8. */
function readUtf8(tlv: Uint8Array): string | undefined {
  try {
    const h = readHeader(tlv, 0);
    if (h.tag !== TAG.UTF8_STRING || h.headerLength + h.length !== tlv.length) return undefined;
    return new TextDecoder("utf-8", { fatal: true }).decode(tlv.subarray(h.headerLength));
  } catch {
    return undefined;
  }
}

function interpret(raw: Partial<Record<FourItemsField, string>>, problems: FourItemsProblem[]): DecodedFourItems {
  const out: {
    -readonly [K in keyof DecodedFourItems]: DecodedFourItems[K];
  } = { raw: Object.freeze({ ...raw }), flagsMatch: { name: false, address: false }, wellFormed: false, problems };

  if (raw.name !== undefined) {
    out.name = raw.name;
    const parts = raw.name.split(IDEOGRAPHIC_SPACE);
    if (parts.length !== 2 || !parts[0] || !parts[1]) {
      problems.push({ field: "name", message: "name is not a family and a given name separated by one U+3000" });
    }
    checkJis("name", raw.name, problems);
  }
  if (raw.address !== undefined) {
    out.address = raw.address;
    const n = [...raw.address].length;
    if (n === 0) problems.push({ field: "address", message: "address is empty" });
    if (n > MAX_ADDRESS_LENGTH) problems.push({ field: "address", message: `address is longer than ${MAX_ADDRESS_LENGTH} characters` });
    checkJis("address", raw.address, problems);
  }
  if (raw.gender !== undefined) {
    try {
      out.gender = decodeGender(raw.gender);
    } catch {
      problems.push({ field: "gender", message: "gender is not 1, 2 or 3" });
    }
  }
  if (raw.birthDate !== undefined) {
    try {
      const { iso, era } = decodeBirthDate(raw.birthDate);
      out.birthDate = iso;
      out.era = era;
    } catch (e) {
      problems.push({ field: "birthDate", message: e instanceof JpkiError ? e.message.replace(/^four basic items: the /, "") : "birthDate is invalid" });
    }
  }
  out.flagsMatch = {
    name: checkFlags("nameSubstituteFlags", raw.nameSubstituteFlags, raw.name, problems),
    address: checkFlags("addressSubstituteFlags", raw.addressSubstituteFlags, raw.address, problems),
  };
  if (raw.nameSubstituteFlags !== undefined) out.nameSubstituteFlags = raw.nameSubstituteFlags;
  if (raw.addressSubstituteFlags !== undefined) out.addressSubstituteFlags = raw.addressSubstituteFlags;
  out.wellFormed = problems.length === 0;
  return Object.freeze(out);
}

/** The certified text must stay within JIS X 0208: a character outside it should have been substituted. */
function checkJis(field: FourItemsField, text: string, problems: FourItemsProblem[]): void {
  for (const ch of text) {
    if (!isJisX0208(ch)) {
      problems.push({ field, message: `${field} contains a character outside JIS X 0208 (it should have been substituted)` });
      return;
    }
  }
}

function checkFlags(field: FourItemsField, flags: string | undefined, text: string | undefined, problems: FourItemsProblem[]): boolean {
  if (flags === undefined) return false;
  if (!/^[01]*$/.test(flags)) {
    problems.push({ field, message: `${field} contains something other than 0 and 1` });
    return false;
  }
  if (text === undefined) return false;
  if (flags.length !== [...text].length) {
    problems.push({ field, message: `${field} does not have one flag per character` });
    return false;
  }
  return true;
}
