/**
 * How a batch command (`issue --batch`, `registry import`, `registry apply`, `counter batch`, `notices ingest`)
 * ends when some of its items failed. ERR_PARTIAL (exit 13, "partially applied") says some were applied and the
 * failed ones can be fixed and run again; a batch in which every item failed applied nothing, and 13 told a script
 * otherwise. Then the items' own failure is the command's: their code when they share one, else the code of the
 * first item that failed (by its place in the input), the others counted in the message. Each item is reported
 * by the command itself (its result); this is only the exit.
 */
import { constants } from "node:os";
import { JpkiError, type ErrorCode } from "../errors.js";
import { VerdictExit } from "./exit-codes.js";

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

/**
 * How a batch command that reads its input as it goes (`issue --batch`, `registry import`, `notices ingest`) ends when
 * SIGTERM or SIGINT stopped it with input unread: what it committed is kept and reported (its result, with "stopped":
 * true, "signal" and "lastLineRead" in --json), a line on stderr says after which line it stopped and how to go on,
 * and it exits 128 + the signal's number (143 SIGTERM, 130 SIGINT), as the shell's for a command a signal ended: the
 * batch is not done. Import and ingest exited 0 there, so a script that read the exit alone moved a file half
 * imported away as done. A stop after the input's end was read is no stop of the input: the run ends as it would have.
 */
export interface StoppedBatch {
  /** the command as the user typed it ("registry import") */
  readonly command: string;
  readonly by: NodeJS.Signals;
  /** the last line read and decided (0: none); undefined: stopped while the store was opening, nothing read */
  readonly lastLine: number | undefined;
  /** what the run did, counted ("3 imported, 1 unchanged, 0 rejected") */
  readonly done: string;
  /** how to go on, a sentence or more */
  readonly goOn: string;
  /** what became of the lines after lastLine (default "were not read") */
  readonly rest?: string;
}

/** The --json fields of a stopped batch. */
export function stoppedFields(s: Pick<StoppedBatch, "by" | "lastLine">): { stopped: true; signal: NodeJS.Signals; lastLineRead: number } {
  return { stopped: true, signal: s.by, lastLineRead: s.lastLine ?? 0 };
}

/** The stderr note of a stopped batch, then the exit to throw (after its result is printed). */
export function stoppedBatch(ctx: { readonly out: { info(s: string): void } }, s: StoppedBatch): VerdictExit {
  const where =
    s.lastLine === undefined
      ? "while the store was opening: nothing was read or changed"
      : s.lastLine === 0
        ? "before it took a line: nothing was changed"
        : `after line ${s.lastLine}: ${s.done}; the lines after ${s.lastLine} ${s.rest ?? "were not read"}`;
  ctx.out.info(`jpki: ${s.command} stopped by ${s.by} ${where}.\n${s.goOn}`);
  return new VerdictExit(stopExit(s.by));
}

/** The exit of a batch stopped by a signal: the shell's 128 + the signal's number, as when a signal kills a command. */
export function stopExit(by: NodeJS.Signals): number {
  return 128 + constants.signals[by];
}

/** The exit-code rows of a batch command's help for its stop (stoppedBatch): `what`, what was done and how to go on. */
export function stoppedExitsHelp(what: string): ReadonlyArray<readonly [exit: number, meaning: string]> {
  return [
    [stopExit("SIGINT"), `stopped by SIGINT (Ctrl-C) before the end of its input: ${what}`],
    [stopExit("SIGTERM"), `stopped by SIGTERM likewise`],
  ];
}
