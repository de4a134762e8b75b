/** Exit codes of the jpki CLI, documented in every command's help. Derived from errors.ts, never ad hoc. */
import { ERROR_CODES } from "./lib.js";

export const EXIT_OK = 0;
export const EXIT_USAGE = 2;
/** A verifying command's verdicts (no error code maps to these): invalid, and could not decide. */
export const EXIT_INVALID = 1;
export const EXIT_UNDECIDED = 15;

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
