/**
 * The card's file system, ISO/IEC 7816-4 §7: a master file (MF, 3F00), dedicated files (DF) selected by their
 * application identifier (AID), and elementary files (EF) selected by a 2-byte file identifier (FID) inside the
 * current DF. Each EF carries its access conditions; an application is a DF description (data, not code), so
 * the JPKI application and a municipal one share one set of instruction handlers and cannot differ in how the
 * rules are enforced.
 *
 * READ BINARY past the end (§7.2.3; our choice, documented here and tested): an offset at or beyond the end of the
 * EF answers 6B 00 (wrong parameters P1-P2: offset outside the EF) with no data; an offset inside the EF with Ne
 * running past the end answers the bytes up to the end and 62 82 (end of file reached before reading Ne bytes),
 * which is what OpenSC's iso7816 read_binary accepts as a short read. An empty EF (a certificate not yet
 * written) therefore answers 6B 00 at offset 0.
 */
import type { PinId } from "./pin.js";
import { SW, type StatusWord } from "./status-words.js";

/** Who may read or write an EF. */
export type AccessCondition =
  | { readonly kind: "always" }
  | { readonly kind: "never" }
  /** after the PIN was verified in this session (since the last power-on or reset) */
  | { readonly kind: "pin"; readonly pin: PinId };

export const ALWAYS: AccessCondition = Object.freeze({ kind: "always" });
export const NEVER: AccessCondition = Object.freeze({ kind: "never" });
export function afterPin(pin: PinId): AccessCondition {
  return Object.freeze({ kind: "pin", pin });
}

/** The private keys on the card: JPKI's authentication key (利用者証明用) and signature key (署名用). */
export type KeyId = "authentication" | "signature";

/** A transparent EF of bytes. Written by UPDATE BINARY only where `update` allows; else by the admin API. */
export interface BinaryEf {
  readonly kind: "binary";
  readonly fid: number;
  readonly name: string;
  readonly read: AccessCondition;
  readonly update: AccessCondition;
  /** the EF's size limit: UPDATE BINARY and the admin API never grow it beyond */
  readonly maxSize: number;
}

/** A PIN's EF: the target of VERIFY and CHANGE REFERENCE DATA; never readable. */
export interface PinEf {
  readonly kind: "pin";
  readonly fid: number;
  readonly name: string;
  readonly pin: PinId;
}

/** A private key's EF: the target of the sign instruction after the key's PIN; never readable. */
export interface KeyEf {
  readonly kind: "key";
  readonly fid: number;
  readonly name: string;
  readonly key: KeyId;
  /** the PIN that must be verified in this session before the key signs */
  readonly pin: PinId;
}

export type Ef = BinaryEf | PinEf | KeyEf;

/** An application's DF. */
export interface Df {
  /** our name for it, also the prefix of its files in the card's state ("jpki/0001") */
  readonly name: string;
  readonly aid: Uint8Array;
  readonly efs: readonly Ef[];
}

/** Where a binary EF's bytes live in the card state. */
export function fileKey(df: Df, fid: number): string {
  return `${df.name}/${fid.toString(16).toUpperCase().padStart(4, "0")}`;
}

export function findDfByAid(dfs: readonly Df[], aid: Uint8Array): Df | undefined {
  return dfs.find((d) => d.aid.length === aid.length && d.aid.every((b, i) => b === aid[i]));
}

export function findEf(df: Df, fid: number): Ef | undefined {
  return df.efs.find((e) => e.fid === fid);
}

/** Checks a condition against the PINs verified in this session: OK or 69 82. */
export function checkAccess(ac: AccessCondition, verified: { has(pin: PinId): boolean }): StatusWord {
  if (ac.kind === "always") return SW.OK;
  if (ac.kind === "pin" && verified.has(ac.pin)) return SW.OK;
  return SW.SECURITY_NOT_SATISFIED;
}

/** READ BINARY's slice of an EF (see the header for the past-the-end rule). */
export function readSlice(content: Uint8Array, offset: number, ne: number): { data: Uint8Array; sw: StatusWord } {
  if (offset >= content.length) return { data: new Uint8Array(0), sw: SW.OFFSET_OUTSIDE_EF };
  const end = Math.min(content.length, offset + ne);
  return { data: content.slice(offset, end), sw: end - offset < ne ? SW.END_OF_FILE : SW.OK };
}

/**
 * UPDATE BINARY's result: the new content, or 6B 00 when the offset lies beyond the current end (no holes)
 * and 67 00 when the write would grow the EF past its size.
 */
export function writeSlice(content: Uint8Array, offset: number, data: Uint8Array, maxSize: number): { content?: Uint8Array; sw: StatusWord } {
  if (offset > content.length) return { sw: SW.OFFSET_OUTSIDE_EF };
  if (offset + data.length > maxSize) return { sw: SW.WRONG_LENGTH };
  const out = new Uint8Array(Math.max(content.length, offset + data.length));
  out.set(content, 0);
  out.set(data, offset);
  return { content: out, sw: SW.OK };
}
