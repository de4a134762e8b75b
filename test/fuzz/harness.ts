/**
 * The fuzz harness (issue 13 point 3): one table of targets, each a parser that takes outside input, an
 * arbitrary that makes hostile inputs for it, and `run(input)`. Every outcome is one of
 *   ok       the parser accepted the input (and whatever property the target checks held);
 *   ours     it refused it with one of our errors: a JpkiError whose code is in the table of src/errors.ts
 *            (or, for the two low-level DER readers whose documented contract is a RangeError naming the DER
 *            rule, that RangeError: their callers wrap it);
 *   finding  anything else: a TypeError, a library's error, a JpkiError with an unknown code or ERR_INTERNAL,
 *            a property that failed, or (in `npm run fuzz` only) an input over the time budget or a hang.
 * The bounded suite (fuzz.test.ts) fails on a finding; the long run (run.ts) counts and shrinks them.
 */
import fc from "fast-check";
import { ERROR_CODES, JpkiError } from "../../src/errors.js";

/** What one input led to. */
export type Outcome = { readonly kind: "ok"; readonly labels?: readonly string[] } | { readonly kind: "ours"; readonly code: string } | { readonly kind: "finding"; readonly signature: string; readonly error: unknown };

export interface FuzzTarget<T = unknown> {
  readonly name: string;
  /** what the parser is and where it lives, for the report */
  readonly parser: string;
  readonly arbitrary: fc.Arbitrary<T>;
  /**
   * Parses the input; resolves when accepted, throws what the parser threw. It may name what the input reached
   * (a verdict's status, the codes of the records a file had refused): counted with the codes, for the report.
   */
  readonly run: (input: T) => Labels | Promise<Labels>;
  /** an error the parser's contract allows besides JpkiError (default: none) */
  readonly expected?: (e: unknown) => boolean;
  /** the input as a checked-in regression vector: bytes, or text for the text formats */
  readonly toVector: (input: T) => Buffer;
  /** how many inputs `npm test` runs (default 300): the cheap ones run more, the server fewer */
  readonly testRuns?: number;
}

export type Labels = void | string | readonly string[];

/** A failed check of a target's own property (e.g. a round trip), reported as a finding. */
export class PropertyViolation extends Error {
  override readonly name = "PropertyViolation";
  /** what rule broke, without the input's particulars: the finding's signature */
  readonly rule: string;
  constructor(rule: string, detail = "") {
    super(detail ? `${rule}: ${detail}` : rule);
    this.rule = rule;
  }
}

/** Whether `e` is one of ours: a JpkiError with a code of the table, other than the "this is a bug" code. */
export function isOurs(e: unknown): e is JpkiError {
  return e instanceof JpkiError && e.code !== "ERR_INTERNAL" && Object.hasOwn(ERROR_CODES, e.code);
}

/** A short, stable name for a finding, so that 10,000 inputs hitting one bug count as one finding. */
export function signatureOf(e: unknown): string {
  if (e instanceof PropertyViolation) return `PropertyViolation: ${e.rule}`;
  if (!(e instanceof Error)) return `non-Error thrown: ${typeof e}`;
  const frame = (e.stack ?? "").split("\n").find((l) => /^\s+at /.test(l))?.trim().replace(/:\d+:\d+\)?$/, "").replace(/\(file:\/\/.*\/(src|node_modules|test)\//, "($1/") ?? "";
  const message = e.message.replace(/\d+/g, "N").slice(0, 120);
  return `${e.name}: ${message}${frame ? ` ${frame}` : ""}`;
}

export function classify<T>(target: FuzzTarget<T>, e: unknown): Outcome {
  if (isOurs(e)) return { kind: "ours", code: e.code };
  if (target.expected?.(e)) return { kind: "ours", code: (e as Error).name };
  return { kind: "finding", signature: signatureOf(e), error: e };
}

/** Runs one input and classifies it; never throws. */
export async function outcomeOf<T>(target: FuzzTarget<T>, input: T): Promise<Outcome> {
  try {
    const labels = await target.run(input);
    return labels ? { kind: "ok", labels: typeof labels === "string" ? [labels] : labels } : { kind: "ok" };
  } catch (e) {
    return classify(target, e);
  }
}

/** Counts of a run over one target. */
export interface Tally {
  ok: number;
  ours: number;
  findings: number;
  /** our codes by count: shows what the inputs reached */
  readonly codes: Record<string, number>;
}

export function newTally(): Tally {
  return { ok: 0, ours: 0, findings: 0, codes: {} };
}

export function count(t: Tally, o: Outcome): void {
  if (o.kind === "ok") {
    t.ok++;
    for (const l of o.labels ?? []) t.codes[`(ok) ${l}`] = (t.codes[`(ok) ${l}`] ?? 0) + 1;
  }
  else if (o.kind === "ours") {
    t.ours++;
    t.codes[o.code] = (t.codes[o.code] ?? 0) + 1;
  } else t.findings++;
}

/**
 * The bounded run of `npm test`: `numRuns` inputs from `seed`; fast-check shrinks the first finding and the
 * result says which input, shrunk, and how to replay it (seed and path).
 */
export async function checkTarget<T>(target: FuzzTarget<T>, o: { numRuns: number; seed: number }): Promise<{ tally: Tally; failure?: string }> {
  const tally = newTally();
  const details = await fc.check(
    fc.asyncProperty(target.arbitrary, async (input) => {
      const out = await outcomeOf(target, input);
      count(tally, out);
      if (out.kind === "finding") throw out.error;
    }),
    { numRuns: o.numRuns, seed: o.seed },
  );
  if (!details.failed) return { tally };
  const input = details.counterexample?.[0] as T | undefined;
  const vector = input === undefined ? "" : target.toVector(input).toString("hex");
  return {
    tally,
    failure: `${target.name}: ${signatureOf(details.errorInstance)}\n  seed ${details.seed}, path ${details.counterexamplePath}\n  shrunk input (hex): ${vector.slice(0, 4000)}`,
  };
}
