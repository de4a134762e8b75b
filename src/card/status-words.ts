/**
 * Status words (SW1 SW2), ISO/IEC 7816-4 §5.6 — the card's only error channel (STYLE.md §11). One table: the
 * instruction handlers name an entry, never a number, so every answer the card can give is listed here.
 * The JPKI meanings are those OpenSC's JPKI driver expects (shared/spec/JPKI.md "The card").
 */

export const SW = {
  /** normal processing */
  OK: 0x9000,
  /** warning: end of file reached before Ne bytes were read (READ BINARY short read) */
  END_OF_FILE: 0x6282,
  /** wrong length (Lc or Le does not fit the instruction) */
  WRONG_LENGTH: 0x6700,
  /** security status not satisfied: a PIN must be verified first, or the file is never readable */
  SECURITY_NOT_SATISFIED: 0x6982,
  /** authentication method blocked (ISO); kept for completeness, the JPKI card answers 6984 instead */
  AUTH_BLOCKED: 0x6983,
  /** reference data not usable: the PIN is blocked (JPKI answers this to every attempt after the lock) */
  REFERENCE_DATA_NOT_USABLE: 0x6984,
  /** conditions of use not satisfied: e.g. the sign instruction without a key EF selected */
  CONDITIONS_NOT_SATISFIED: 0x6985,
  /** command not allowed: no current EF of the kind the instruction needs */
  COMMAND_NOT_ALLOWED: 0x6986,
  /** incorrect parameters in the data field (e.g. a DigestInfo of the wrong shape, a PIN of the wrong form) */
  WRONG_DATA: 0x6a80,
  /** function not supported */
  FUNCTION_NOT_SUPPORTED: 0x6a81,
  /** file or application not found */
  FILE_NOT_FOUND: 0x6a82,
  /** incorrect parameters P1-P2 */
  WRONG_P1P2: 0x6a86,
  /** wrong parameters P1-P2: offset outside the EF */
  OFFSET_OUTSIDE_EF: 0x6b00,
  /** instruction code not supported or invalid */
  INS_NOT_SUPPORTED: 0x6d00,
  /** class not supported */
  CLA_NOT_SUPPORTED: 0x6e00,
  /** no precise diagnosis: an internal fault the card survived (never expected; the card stays consistent) */
  NO_DIAGNOSIS: 0x6f00,
} as const;

export type StatusWord = number;
export type StatusWordName = keyof typeof SW;

/** 63 Cx: verification failed, x tries left (ISO 7816-4 §5.6, table 6); x is 0–15. */
export function triesLeftSw(tries: number): StatusWord {
  return 0x63c0 | Math.max(0, Math.min(15, tries));
}

/** The tries left a 63 Cx word reports, or undefined for any other word. */
export function triesLeftOf(sw: StatusWord): number | undefined {
  return (sw & 0xfff0) === 0x63c0 ? sw & 0x0f : undefined;
}

const FIXED: ReadonlySet<number> = new Set(Object.values(SW));

/** True for every word this card can answer: the table above and 63 C0–63 CF. */
export function isCardStatusWord(sw: StatusWord): boolean {
  return FIXED.has(sw) || triesLeftOf(sw) !== undefined;
}

/** The table name of a word, for diagnostics ("6982 SECURITY_NOT_SATISFIED"). */
export function describeSw(sw: StatusWord): string {
  const hex = sw.toString(16).toUpperCase().padStart(4, "0");
  const tries = triesLeftOf(sw);
  if (tries !== undefined) return `${hex} (verification failed, ${tries} tries left)`;
  const name = (Object.keys(SW) as StatusWordName[]).find((k) => SW[k] === sw);
  return name ? `${hex} ${name}` : hex;
}
