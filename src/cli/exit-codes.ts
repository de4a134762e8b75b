/** Exit codes of the jpki CLI, documented in every command's help. Derived from errors.ts, never ad hoc. */
import { ERROR_CODES } from "./lib.js";

export const EXIT_OK = 0;
export const EXIT_USAGE = 2;

/**
 * Verdicts of `jpki verify` (not errors: the command ran and reached an answer). 1: the certificate must not be
 * accepted. 15: valid except that its revocation status could not be established (--soft-fail): could not decide.
 * Not 2, which every command already uses for a usage error (ERR_USAGE): a script must never take a typo for a
 * verdict. No error code maps to either value (test/integration/verify.test.ts checks).
 */
export const EXIT_INVALID = 1;
export const EXIT_UNDECIDED = 15;

/** Thrown by a command's action, after its output, to end with a verdict's exit code; `run` returns `code`. */
export class VerdictExit {
  readonly code: number;
  constructor(code: number) {
    this.code = code;
  }
}

/** Help text listing exit codes (grouped by value). */
export function exitCodesHelp(): string {
  const byExit = new Map<number, string[]>();
  for (const [code, v] of Object.entries(ERROR_CODES)) byExit.set(v.exit, [...(byExit.get(v.exit) ?? []), code]);
  const lines = [...byExit.entries()].sort((a, b) => a[0] - b[0]).map(([n, codes]) => `  ${String(n).padStart(2)}  ${codes.join(", ")}`);
  return ["Exit codes:", "   0  success", ...lines].join("\n");
}
