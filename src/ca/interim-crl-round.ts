/**
 * The interim CRL round of a notice run (runIngest): between two batches, the CRLs of the CAs the run dirtied since
 * its last round, at most once per `crlIntervalMs`; the round after the last batch comes whatever this says.
 *
 * A run that outlasted the interval by a little published every CA twice: a round when the interval ran out, then
 * the last round moments later, both for nearly every CA (each batch of a national feed revokes under most of them).
 * Measured on a loaded host (200k residents, 50,000 notices): 996 CRLs instead of 400, and a round per interval
 * costs the committing thread ≈ 27 µs a notice (4 s interval: 91 against 64 µs). So a round is left to the last one
 * when the run looks set to end within the interval — judged from the input read so far and the time it took —,
 * but never for longer than a second interval: a revocation still reaches a CRL within twice the interval, however
 * wrong the estimate (a feed whose end is slower than its start).
 */

export interface InterimRoundState {
  /** now, ms (Date.now()'s clock, as the others) */
  readonly now: number;
  /** when the run began */
  readonly started: number;
  /** when its last round ended (its start, before the first) */
  readonly lastRound: number;
  readonly intervalMs: number;
  /** the input's bytes read so far (its batches up to the one just committed, and what the reader holds ahead) */
  readonly bytesRead: number;
  /** the input's size, when known (a file; not a pipe) */
  readonly totalBytes: number | undefined;
}

/** Whether the round is due now (runIngest asks after each batch that dirtied a CA). */
export function interimRoundDue(s: InterimRoundState): boolean {
  const since = s.now - s.lastRound;
  if (since < s.intervalMs) return false;
  // The bound: with an interval of 0 (a round after every batch) this is always so.
  if (since >= 2 * s.intervalMs) return true;
  // Nothing to judge from (a pipe, nothing read yet): the round, as always.
  if (s.totalBytes === undefined || s.bytesRead <= 0) return true;
  // The rest at the run's pace so far. What the reader holds ahead counts as done: the estimate is a little short,
  // which the bound above limits.
  const left = Math.max(0, s.totalBytes - s.bytesRead);
  return ((s.now - s.started) * left) / s.bytesRead >= s.intervalMs;
}
