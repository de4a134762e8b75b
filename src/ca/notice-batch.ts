/**
 * Notices per transaction when the caller does not say (`jpki notices ingest` and `jpki watch --batch-size`, the
 * counter link, the notice bench). One fact, here, so the commands and the bench cannot drift apart.
 *
 * Measured on SQLite at 1M residents / 2M certificates (the notice bench's workspace, saved with
 * JPKI_BENCH_NOTICES_SAVE and ingested again by `jpki notices ingest` on fresh copies, 2026-12-05): 500 and 1000 are
 * the same within the noise (three pairs in turns on a quiet host: 9,110–10,904/s against 9,600–10,436, and the same
 * CPU, 14.7–17.4 s against 15.1–16.3); single runs put 2000 (8,400/s) and 5000 (7,800) below, and 250 (9,400) and 100
 * (8,600) too. Larger batches keep more of each batch's objects alive across collections (the committing thread's
 * GC: 1.2 s of a 1000-notice run, 2.0 s at 5000, CPU profiles) and dirty more pages per commit; smaller ones pay the
 * per-batch reads and, on PostgreSQL, a commit's flush more often. A batch is also what a killed run redoes.
 */
export const DEFAULT_NOTICE_BATCH = 1000;
