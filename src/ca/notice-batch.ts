/**
 * Notices per transaction when the caller does not say (`jpki notices ingest` and `jpki watch --batch-size`, the
 * counter link, the notice bench). One fact, here, so the commands and the bench cannot drift apart.
 *
 * 500, not the 1000 it was: on SQLite at 1M residents / 2M certificates (the notice bench's workspace, saved with
 * JPKI_BENCH_NOTICES_SAVE and ingested again by `jpki notices ingest` on fresh copies, 2026-12-05) a sweep on a quiet
 * host gave 100: 8,600/s, 250: 9,400, 500: 11,500, 1000: 10,300–10,800, 2000: 8,400, 5000: 7,800; under load, three
 * pairs taken in turns, 500 used 3–10 % less CPU than 1000 (15.5–16.8 s against 16.4–18.1 s). Larger batches keep
 * more of each batch's objects alive across collections (the committing thread's garbage collection: 1.2 s of a
 * 1000-notice run, 2.0 s of a 5000 one, CPU profiles) and dirty more pages per commit; smaller ones pay the
 * per-batch reads and commit more often. A batch is also what a killed run redoes, and what a reader waits behind.
 */
export const DEFAULT_NOTICE_BATCH = 500;
