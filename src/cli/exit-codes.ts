/** Exit codes of the jpki CLI, documented in every command's help. Derived from errors.ts, never ad hoc. */
import { ERROR_CODES, JpkiError } from "./lib.js";
import type { ErrorCode } from "../errors.js";

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
/**
 * `jpki store check`'s finding (a verdict, not an error: the check ran): a public key live certificates certify to
 * more than one resident (Store.sharedCertifiedKeys). A value no error code maps to (store-check.test.ts checks).
 */
export const EXIT_KEYS_SHARED = 22;

/**
 * What the process exits with when a signal ends it: the shell's 128 + the signal's number. Node's default for
 * SIGINT and SIGTERM; the long-running commands (bin/early-stop.cjs STOPPING_COMMANDS: serve, watch, card serve,
 * registry sweep, provider follow --watch) catch both and stop cleanly instead (context.ts withStopSignal), from the
 * launcher's first line on (but in node's own start, and at a passphrase prompt). The batches that read their input
 * as they go (`issue --batch`, `registry import`, `notices ingest`) stop cleanly as well, then exit 128 + n all the
 * same (batch-outcome.ts stoppedBatch): a batch stopped with input unread is a batch not done.
 */
const SIGNALLED =
  "killed by signal n (130 SIGINT, 143 SIGTERM, 137 SIGKILL); serve, watch, card serve, provider follow --watch and registry sweep stop cleanly on SIGINT or SIGTERM instead, with their own exit code, also in their first moments; issue --batch, registry import and notices ingest stop cleanly too (what they committed kept, where they stopped said) and then exit 128+n: their input is not done";

/** The top-level help's exit codes: every value jpki exits with, each error code under its value. */
export function exitCodesHelp(): string {
  const byExit = new Map<number, string[]>([
    [EXIT_OK, ["success"]],
    [EXIT_INVALID, ["verify, verify-signature: the verdict is invalid (no error: no code is printed)"]],
    [EXIT_UNDECIDED, ["verify, verify-signature: could not decide, valid but revocation status unknown (--soft-fail)"]],
    [EXIT_KEYS_SHARED, ["store check: a public key is certified to more than one resident by live certificates (no error: no code is printed)"]],
  ]);
  for (const [code, v] of Object.entries(ERROR_CODES)) byExit.set(v.exit, [...(byExit.get(v.exit) ?? []), code]);
  const lines = [...byExit.entries()].sort((a, b) => a[0] - b[0]).map(([n, what]) => `${String(n).padStart(5)}  ${what.join(", ")}`);
  return ["Exit codes:", ...lines, `128+n  ${SIGNALLED}`].join("\n");
}

/** Error codes a command names in its help, and what they mean for it. */
export type ErrorExit = readonly [codes: ErrorCode | readonly ErrorCode[], meaning: string];

export interface CommandExits {
  /** What exit 0 means for the command. */
  readonly ok: string;
  /** Exits that are no error's (the verdicts of verify: 1 and 15), with what they mean. */
  readonly verdicts?: ReadonlyArray<readonly [exit: number, meaning: string]>;
  /** The errors worth naming for this command; their values come from ERROR_CODES. */
  readonly errors: readonly ErrorExit[];
}

/**
 * A command's "Exit codes:" block, its values read from ERROR_CODES: a value written by hand in a help text goes
 * stale when a code's value changes ('jpki revoke --help' said 4 for an unknown serial, which exits 9). Sorted by
 * value; the last line points at the top-level help for every other code.
 */
export function commandExitCodes(c: CommandExits): string {
  const rows: Array<[number, string]> = [[EXIT_OK, c.ok], ...(c.verdicts ?? []).map(([n, m]): [number, string] => [n, m])];
  for (const [codes, meaning] of c.errors) {
    const list: readonly ErrorCode[] = typeof codes === "string" ? [codes] : codes;
    const values = new Set(list.map((code) => ERROR_CODES[code].exit));
    // One line is one value: codes with different values are named on lines of their own.
    if (values.size !== 1) throw new JpkiError("ERR_INTERNAL", `exit codes help: ${list.join(", ")} do not share one exit value`);
    rows.push([[...values][0]!, `${meaning} (${list.join(", ")})`]);
  }
  rows.sort((a, b) => a[0] - b[0]);
  return ["Exit codes:", ...rows.map(([n, m]) => wrap(`${String(n).padStart(4)}  ${m}`, "      ")), `      ${OTHER_ERRORS}`].join("\n");
}

const OTHER_ERRORS = "every other error prints its code; 'jpki --help' lists the exit value of each";

/** The exit codes of a command whose help names no errors of its own. */
export const GENERIC_EXIT_CODES = commandExitCodes({ ok: "success", errors: [["ERR_USAGE", "usage error: an unknown option, a missing argument, a bad value"]] });

/** Wraps a help line at 112 columns (the width of the commands' hand-written help), indenting what follows. */
function wrap(line: string, indent: string, width = 112): string {
  const out: string[] = [];
  let rest = line;
  while (rest.length > width) {
    const cut = rest.lastIndexOf(" ", width);
    if (cut <= indent.length) break;
    out.push(rest.slice(0, cut));
    rest = indent + rest.slice(cut + 1);
  }
  return [...out, rest].join("\n");
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
