/**
 * PINs (暗証番号) of the card's applications: the format and retry rules of each (a table), and the pure
 * attempt logic the card's VERIFY runs. JPKI (shared/spec/JPKI.md "The card"): the signature PIN
 * (署名用電子証明書のパスワード) is 6–16 of A–Z and 0–9 with 5 tries; the authentication PIN (利用者証明用電子証明書の
 * 暗証番号) is 4 digits with 3 tries. 63 C0 answers the attempt that locks a PIN and 69 84 every attempt after;
 * only the municipality's administrative key unblocks it (card.ts `unblockPin`).
 *
 * A PIN is kept as HMAC-SHA-256 under a per-PIN random salt, and a candidate is compared by hashing it the same
 * way and comparing the two digests with timingSafeEqual: equal lengths whatever the candidate's length, so
 * neither the comparison time nor an exception tells how much of a guess was right. The hash is not a defence
 * against brute force (a 4-digit PIN has 10⁴ values): the retry counter is, and the state file is encrypted.
 */
import { createHmac, randomBytes, timingSafeEqual } from "node:crypto";
import { JpkiError } from "../errors.js";
import { SW, triesLeftSw, type StatusWord } from "./status-words.js";

/** The PINs on the card: two of the JPKI application and one of the municipal library application. */
export type PinId = "signature" | "authentication" | "library";
export const PIN_IDS: readonly PinId[] = ["signature", "authentication", "library"];

export interface PinPolicy {
  readonly minLength: number;
  readonly maxLength: number;
  /** the characters allowed, as a whole-string pattern */
  readonly pattern: RegExp;
  /** the retry counter's value when the PIN is set or verified */
  readonly maxTries: number;
  /** how the rule reads to a user */
  readonly rule: string;
}

export const PIN_POLICIES: Readonly<Record<PinId, PinPolicy>> = Object.freeze({
  /** 署名用電子証明書のパスワード */
  signature: { minLength: 6, maxLength: 16, pattern: /^[A-Z0-9]+$/, maxTries: 5, rule: "6 to 16 characters, uppercase letters A–Z and digits 0–9" },
  /** 利用者証明用電子証明書の暗証番号 */
  authentication: { minLength: 4, maxLength: 4, pattern: /^[0-9]+$/, maxTries: 3, rule: "4 digits" },
  /** 図書館カードの暗証番号 (the municipal application's own PIN; ours, not from the spec) */
  library: { minLength: 4, maxLength: 4, pattern: /^[0-9]+$/, maxTries: 3, rule: "4 digits" },
});

/** True when the bytes (the VERIFY data field, ASCII) are a well-formed PIN of that kind. */
export function pinFormatOk(id: PinId, pin: Uint8Array | string): boolean {
  const p = PIN_POLICIES[id];
  const s = typeof pin === "string" ? pin : Buffer.from(pin).toString("latin1");
  return s.length >= p.minLength && s.length <= p.maxLength && p.pattern.test(s);
}

/** Throws ERR_CARD_PIN_FORMAT (never quoting the PIN) unless the PIN fits its rule. */
export function checkPinFormat(id: PinId, pin: string): void {
  if (!pinFormatOk(id, pin)) {
    throw new JpkiError("ERR_CARD_PIN_FORMAT", `the ${id} PIN must be ${PIN_POLICIES[id].rule}`, { details: { pin: id } });
  }
}

/** A PIN as the card keeps it (persisted, inside the encrypted state). */
export interface PinRecord {
  readonly salt: string; // base64, 16 bytes
  readonly hash: string; // base64 HMAC-SHA-256(salt, PIN)
  /** tries left; 0 is blocked */
  readonly tries: number;
}

function pinHash(salt: Buffer, pin: Uint8Array): Buffer {
  return createHmac("sha256", salt).update(pin).digest();
}

/** A fresh record for a PIN (format already checked), with its counter full. */
export function newPinRecord(id: PinId, pin: string): PinRecord {
  checkPinFormat(id, pin);
  const salt = randomBytes(16);
  return Object.freeze({ salt: salt.toString("base64"), hash: pinHash(salt, Buffer.from(pin, "latin1")).toString("base64"), tries: PIN_POLICIES[id].maxTries });
}

/** Constant-time: true when the candidate is the PIN. */
export function pinMatches(record: PinRecord, candidate: Uint8Array): boolean {
  const want = Buffer.from(record.hash, "base64");
  const got = pinHash(Buffer.from(record.salt, "base64"), candidate);
  return want.length === got.length && timingSafeEqual(want, got);
}

export interface PinAttempt {
  /** the record to persist before the answer leaves the card (the same object when nothing changed) */
  readonly record: PinRecord;
  readonly sw: StatusWord;
  readonly verified: boolean;
}

/**
 * One VERIFY with data. Blocked: 69 84, nothing changes. Right: 90 00 and the counter is full again. Wrong
 * (including a malformed candidate, so the answer never tells a format from a value): one try less, 63 Cx with
 * the tries left, 63 C0 on the attempt that blocks.
 */
export function attemptPin(id: PinId, record: PinRecord, candidate: Uint8Array): PinAttempt {
  if (record.tries <= 0) return { record, sw: SW.REFERENCE_DATA_NOT_USABLE, verified: false };
  if (pinMatches(record, candidate)) {
    const full = PIN_POLICIES[id].maxTries;
    return { record: record.tries === full ? record : Object.freeze({ ...record, tries: full }), sw: SW.OK, verified: true };
  }
  const tries = record.tries - 1;
  return { record: Object.freeze({ ...record, tries }), sw: triesLeftSw(tries), verified: false };
}

/**
 * The answer to an empty VERIFY: 63 Cx with the tries left, 63 C0 once blocked. Not 69 84: an empty VERIFY is a
 * question, not an attempt, and OpenSC's JPKI driver asks it for both PINs while listing the token (its
 * GET_INFO accepts only SW1 = 63) — answering 69 84 would make a card with one blocked PIN unusable for the other.
 */
export function triesStatus(record: PinRecord): StatusWord {
  return triesLeftSw(Math.max(0, record.tries));
}
