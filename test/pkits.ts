/**
 * The NIST PKITS certificates and CRLs checked in under test/vectors/pkits (its README says where from), read by
 * file name, and the validation time the unit suites use.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";

const DIR = join(import.meta.dirname, "vectors/pkits");

export const pkitsCert = (file: string): Buffer => readFileSync(join(DIR, "certs", file));
export const pkitsCrl = (file: string): Buffer => readFileSync(join(DIR, "crls", file));
/** a time within every PKITS certificate's validity (they run 2010–2030) */
export const PKITS_AT = new Date("2026-01-01T00:00:00Z");
