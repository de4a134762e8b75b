import { MAX_CRL_NUMBER } from "../store/types.js";

/** The Bridge CA's id where a CA id goes (its URLs <baseUrl>/arl/bridge.crl, /ca/bridge.crt). Light: the server imports it. */
export const BRIDGE_ID = "bridge";

/** The largest ARL number the Bridge issues: the ceiling of a CA's CRL numbers in the stores. */
export const MAX_ARL_NUMBER = MAX_CRL_NUMBER;

/**
 * The ARL number bridge/state.json holds (the last one reserved), or undefined when it is none: decimal digits, at
 * most MAX_ARL_NUMBER. Bounded before BigInt reads it: a hand-edited number of a million digits took seconds to
 * parse, and one past MAX_ARL_NUMBER would go into an ARL whose number no store, and past 20 octets no verifier,
 * accepts. Both readers of the file use it: `jpki ca bridge` (ca/bridge.ts) and `jpki restore` (backup/restore.ts).
 */
export function parseStateArlNumber(v: unknown): bigint | undefined {
  if (typeof v !== "string" || !/^\d{1,19}$/.test(v)) return undefined;
  const n = BigInt(v);
  return n <= MAX_ARL_NUMBER ? n : undefined;
}
