/**
 * How a batch command (`issue --batch`, `registry import`, `registry apply`, `counter batch`, `notices ingest`)
 * ends when some of its items failed. ERR_PARTIAL (exit 13, "partially applied") says some were applied and the
 * failed ones can be fixed and run again; a batch in which every item failed applied nothing, and 13 told a script
 * otherwise. Then the items' own failure is the command's: their code when they share one, else the code of the
 * first item that failed (by its place in the input), the others counted in the message. Each item is reported
 * by the command itself (its result); this is only the exit.
 */
import { JpkiError, type ErrorCode } from "../errors.js";

export interface FailedItem {
  readonly code: ErrorCode;
  /** its place in the input (a line number, a procedure's index), to tell which failed first */
  readonly line?: number;
  readonly index?: number;
}

/** What failed, counted: the code of the first item that failed (by place) and how many failed with each code. */
export interface FailureTally {
  readonly first: ErrorCode;
  readonly counts: Readonly<Record<string, number>>;
}

export function tallyFailures(failed: readonly FailedItem[]): FailureTally | undefined {
  if (!failed.length) return undefined;
  const at = (f: FailedItem) => f.line ?? f.index ?? Number.POSITIVE_INFINITY;
  const counts: Record<string, number> = {};
  for (const f of failed) counts[f.code] = (counts[f.code] ?? 0) + 1;
  return { first: failed.reduce((a, b) => (at(b) < at(a) ? b : a)).code, counts };
}

export function batchFailure(o: {
  readonly failed: readonly FailedItem[] | FailureTally | undefined;
  /** whether any item was applied (issued, imported, taken; one done before counts: it is not this run's failure) */
  readonly applied: boolean;
  /** the ERR_PARTIAL message */
  readonly partial: string;
  /** what a batch that applied nothing says before the codes ("none of the 3 applications was issued") */
  readonly none: string;
  readonly details?: Record<string, unknown>;
}): JpkiError {
  const tally = Array.isArray(o.failed) ? tallyFailures(o.failed) : (o.failed as FailureTally | undefined);
  if (o.applied || !tally) return new JpkiError("ERR_PARTIAL", o.partial, o.details ? { details: o.details } : undefined);
  const entries = Object.entries(tally.counts);
  const why = entries.length === 1 ? `every one ${tally.first}` : `${entries.map(([code, n]) => `${code} ×${n}`).join(", ")}: the first failure's code is the exit's`;
  return new JpkiError(tally.first, `${o.none} (${why})`, { details: { ...o.details, nothingApplied: true, failures: { ...tally.counts } } });
}

/** The help's sentence for it, on lines of its own after the command's exit codes or its words on ERR_PARTIAL. */
export function nothingAppliedHelp(items: string): string {
  return `When every one of the ${items} failed, nothing was applied: the exit is their error's code, not 13
(for different codes, the first failure's; the message counts each code).`;
}
