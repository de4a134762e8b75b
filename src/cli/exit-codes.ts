/** Exit codes of the jpki CLI, documented in every command's help. Derived from errors.ts, never ad hoc. */
import { ERROR_CODES } from "./lib.js";

export const EXIT_OK = 0;
export const EXIT_USAGE = 2;
/**
 * Verdicts of `jpki verify` and `jpki verify-signature` (not errors: the command ran and reached an answer). 1:
 * the certificate or signature must not be accepted. 15: valid except that revocation status could not be
 * established (soft-fail): could not decide.
 * Not 2, which every command already uses for a usage error (ERR_USAGE): a script must never take a typo for a
 * verdict. No error code maps to either value (test/integration/verify.test.ts checks).
 */
export const EXIT_INVALID = 1;
export const EXIT_UNDECIDED = 15;
/**
 * `jpki audit verify`: the audit log's hash chain or a signed checkpoint does not hold (ERR_AUDIT_CHAIN_BROKEN,
 * whose entry in errors.ts maps to this value). A value of its own so a monitoring script can tell tampering
 * from an unreachable store (12) or a missing workspace (3).
 */
export const EXIT_AUDIT_BROKEN = 20;

/** Help text listing exit codes (grouped by value). */
export function exitCodesHelp(): string {
  const byExit = new Map<number, string[]>();
  for (const [code, v] of Object.entries(ERROR_CODES)) byExit.set(v.exit, [...(byExit.get(v.exit) ?? []), code]);
  const lines = [...byExit.entries()].sort((a, b) => a[0] - b[0]).map(([n, codes]) => `  ${String(n).padStart(2)}  ${codes.join(", ")}`);
  return ["Exit codes:", "   0  success", ...lines].join("\n");
}

/**
 * Thrown by a verifying command after it has written its verdict: `run` exits with `exit` and prints nothing
 * more (it is no error: the verdict is the output).
 */
export class VerdictExit extends Error {
  readonly exit: number;
  constructor(exit: number) {
    super(`verdict: exit ${exit}`);
    this.exit = exit;
  }
}
