/**
 * The options that bound a download from a JPKI endpoint (validation/download-clock.ts), shared by `jpki verify`
 * (its CrlCache) and `jpki provider enrol|follow` (their public CRL), so both are set and checked alike:
 * `--timeout` (inactivity), `--total-timeout` (the whole download), `--max-crl-mib` (the largest CRL taken).
 */
import { JpkiError } from "./lib.js";

/**
 * The largest --max-crl-mib: the bound `jpki verify --crl` puts on a CRL file (1 GiB). The body is held whole in
 * memory to be verified, so the bound is also what an endpoint gone wrong can make this process take.
 */
const MAX_CRL_MIB = 1024;
/** The longest --total-timeout: a day. Past it a download that never ends is a fault to report, not to wait out. */
const MAX_TOTAL_SECONDS = 86_400;
/** The longest --timeout (inactivity; verify's OCSP and status requests as a whole): ten minutes, as it always was. */
const MAX_TIMEOUT_SECONDS = 600;
const SECONDS = /^\d+(\.\d+)?$/;

export const timeoutOption = ["--timeout <seconds>", "give up on a CRL download after this long without a byte (a steady one runs on, up to --total-timeout)", "10"] as const;
export const totalTimeoutOption = ["--total-timeout <seconds>", `give up on a CRL download after this long however steadily it comes (at most ${MAX_TOTAL_SECONDS})`, "600"] as const;
export const maxCrlOption = ["--max-crl-mib <MiB>", `refuse a CRL larger than this, in MiB (1 to ${MAX_CRL_MIB})`, "256"] as const;

/** The three options as given on the command line (commander's strings). */
export interface DownloadOptionValues {
  readonly timeout: string;
  readonly totalTimeout: string;
  readonly maxCrlMib: string;
}

/** Seconds as milliseconds, more than 0 and at most `max`; ERR_USAGE naming the option otherwise. */
function parseSeconds(s: string, option: string, max: number): number {
  const n = Number(s);
  if (!SECONDS.test(s) || n <= 0 || n > max) throw new JpkiError("ERR_USAGE", `${option} ${JSON.stringify(s)}: give seconds, more than 0 and at most ${max}`);
  return Math.ceil(n * 1000); // up: 0.0001 s is 1 ms, not the 0 the library refuses
}

/** --timeout, checked, in milliseconds. */
export function timeoutSeconds(s: string): number {
  return parseSeconds(s, "--timeout", MAX_TIMEOUT_SECONDS);
}

/** The three options, checked, as the library's `timeoutMs`, `totalTimeoutMs` and `maxCrlBytes`. */
export function downloadLimits(o: DownloadOptionValues): { timeoutMs: number; totalTimeoutMs: number; maxCrlBytes: number } {
  const mib = Number(o.maxCrlMib);
  if (!/^\d+$/.test(o.maxCrlMib) || mib < 1 || mib > MAX_CRL_MIB) throw new JpkiError("ERR_USAGE", `--max-crl-mib ${JSON.stringify(o.maxCrlMib)}: give a whole number of MiB, 1 to ${MAX_CRL_MIB}`);
  return { timeoutMs: timeoutSeconds(o.timeout), totalTimeoutMs: parseSeconds(o.totalTimeout, "--total-timeout", MAX_TOTAL_SECONDS), maxCrlBytes: mib * 2 ** 20 };
}
