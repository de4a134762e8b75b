/**
 * The order test files start in (vitest.config.ts `sequence.sequencer`): longest first, whatever the project, so
 * the two workers finish together. vitest's own order runs one project's files after the other's, larger files
 * first, and a fresh checkout (CI) has no durations cached: test/chaos/faults.test.ts, 2 KB and 51 s, started among
 * the last and ran alone for most of its time while the other worker had nothing left.
 *
 * A file's expected time is what vitest cached of its last run here, else its CI time below, else nothing (then
 * vitest's order decides). The table need not be exact: only its ordering matters. Refresh it from a CI log when
 * the slow files change; a file missing from it only starts later.
 */
import { relative } from "node:path";
import { BaseSequencer, type TestSpecification } from "vitest/node";

/** CI seconds per "project:file", from the fresh-clone run of dfe3bf4 (vitest's per-file times, rounded). */
const CI_SECONDS: Readonly<Record<string, number>> = {
  "sqlite:test/chaos/faults.test.ts": 79,
  "sqlite:src/store/postgres.test.ts": 71,
  "postgres:test/integration/backup.test.ts": 71,
  "postgres:test/integration/notices.test.ts": 48,
  "postgres:test/integration/resume.test.ts": 42,
  "sqlite:test/integration/backup.test.ts": 41,
  "postgres:test/integration/concurrency.test.ts": 33,
  "sqlite:test/integration/concurrency.test.ts": 28,
  "sqlite:test/chaos/checker.test.ts": 28,
  "sqlite:test/integration/web-page.test.ts": 27,
  "postgres:test/integration/serve.test.ts": 27,
  "postgres:test/integration/load.test.ts": 27,
  "sqlite:test/integration/load.test.ts": 25,
  "sqlite:test/integration/store-copy.test.ts": 24,
  "postgres:test/integration/provider.test.ts": 19,
  "sqlite:test/integration/cli-startup.test.ts": 18,
  "sqlite:src/store/copy.test.ts": 18,
  "sqlite:src/server/app.test.ts": 18,
  "postgres:test/integration/keys.test.ts": 18,
  "sqlite:test/integration/bridge-files.test.ts": 17,
  "sqlite:test/integration/notices.test.ts": 16,
  "sqlite:test/integration/migration.test.ts": 16,
  "postgres:test/integration/issuance.test.ts": 15,
  "postgres:test/integration/counter.test.ts": 15,
  "sqlite:test/integration/provider.test.ts": 14,
  "sqlite:test/integration/serve.test.ts": 13,
  "sqlite:test/integration/resume.test.ts": 13,
  "sqlite:src/crl/delta.test.ts": 13,
  "postgres:test/integration/ocsp.test.ts": 13,
  "sqlite:test/integration/counter.test.ts": 12,
  "sqlite:src/ca/spool.test.ts": 12,
  "sqlite:test/integration/ocsp.test.ts": 11,
  "sqlite:test/integration/postgres-workspace.test.ts": 10,
  "sqlite:test/integration/keys.test.ts": 10,
  "sqlite:src/crl/publisher-disk.test.ts": 10,
  "sqlite:src/ca/ocsp-signer.test.ts": 10,
};

export class LongestFirst extends BaseSequencer {
  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const cache = this.ctx.cache;
    const expected = (f: TestSpecification): number => {
      const key = `${f.project.name}:${relative(this.ctx.config.root, f.moduleId)}`;
      return cache.getFileTestResults(key)?.duration ?? (CI_SECONDS[key] ?? 0) * 1000;
    };
    // vitest's order breaks ties (and orders the files nothing is known of)
    const base = await super.sort(files);
    const time = new Map(base.map((f) => [f, expected(f)]));
    return base.map((f, i) => ({ f, i })).sort((a, b) => time.get(b.f)! - time.get(a.f)! || a.i - b.i).map(({ f }) => f);
  }
}
