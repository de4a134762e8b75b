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

/**
 * CI seconds per "project:file": vitest's per-file times (rounded) of the fresh-clone run of 1de95de (/tmp/ci.log,
 * 20:08 UTC on 2026-12-05), every file of 15 s or more. That run shared the 2-core machine with other work (1,906 s
 * in all, against 881 s the stop before): the seconds are about twice a quiet run's, the order is what counts. Files
 * made faster after it are scaled by what they gained, measured back to back (h-suite2): postgres resume (×0.6),
 * publisher-disk (×0.59), delta (×0.62), spool (×0.67); issuance (×0.26) fell below 15 s.
 */
const CI_SECONDS: Readonly<Record<string, number>> = {
  "sqlite:src/store/postgres.test.ts": 209,
  "postgres:test/integration/backup.test.ts": 188,
  "sqlite:test/chaos/faults.test.ts": 143,
  "sqlite:test/integration/backup.test.ts": 128,
  "postgres:test/integration/notices.test.ts": 102,
  "sqlite:test/integration/store-copy.test.ts": 75,
  "postgres:test/integration/concurrency.test.ts": 75,
  "sqlite:test/integration/cli-startup.test.ts": 71,
  "postgres:test/integration/serve.test.ts": 71,
  "sqlite:test/integration/concurrency.test.ts": 69,
  "sqlite:test/chaos/checker.test.ts": 69,
  "postgres:test/integration/load.test.ts": 65,
  "postgres:test/integration/provider.test.ts": 62,
  "postgres:test/integration/keys.test.ts": 57,
  "sqlite:test/integration/resume.test.ts": 49,
  "sqlite:test/integration/provider.test.ts": 49,
  "sqlite:test/integration/web-page.test.ts": 47,
  "sqlite:src/store/copy.test.ts": 46,
  "sqlite:test/integration/load.test.ts": 44,
  "sqlite:test/integration/keys.test.ts": 44,
  "postgres:test/integration/issuance.test.ts": 41,
  "sqlite:test/integration/bridge-files.test.ts": 40,
  "postgres:test/integration/counter.test.ts": 40,
  "sqlite:src/server/app.test.ts": 38,
  "sqlite:src/crl/delta.test.ts": 38,
  "sqlite:test/integration/migration.test.ts": 37,
  "sqlite:test/integration/serve.test.ts": 36,
  "sqlite:test/integration/card-counter.test.ts": 34,
  "sqlite:src/crl/publisher-disk.test.ts": 32,
  "postgres:test/integration/resume.test.ts": 32,
  "sqlite:test/integration/notices.test.ts": 32,
  "sqlite:test/integration/counter.test.ts": 31,
  "sqlite:test/integration/ocsp.test.ts": 30,
  "sqlite:test/integration/bridge.test.ts": 30,
  "sqlite:test/integration/rollover.test.ts": 29,
  "sqlite:src/crl/schedule.test.ts": 29,
  "sqlite:test/integration/compromise-retired.test.ts": 27,
  "sqlite:test/integration/postgres-workspace.test.ts": 26,
  "sqlite:src/store/postgres-vanish.test.ts": 25,
  "postgres:test/integration/ocsp.test.ts": 25,
  "sqlite:src/ca/spool.test.ts": 23,
  "sqlite:test/integration/hsm.test.ts": 22,
  "sqlite:test/integration/cross-check.test.ts": 21,
  "sqlite:src/store/sqlite.test.ts": 21,
  "sqlite:src/ca/manage.test.ts": 21,
  "sqlite:test/integration/liveness.test.ts": 20,
  "sqlite:test/integration/demo.test.ts": 18,
  "sqlite:test/integration/validation-api.test.ts": 17,
  "sqlite:src/registry/import.test.ts": 17,
  "sqlite:test/integration/ocsp-source.test.ts": 16,
  "sqlite:src/ca/ocsp-signer.test.ts": 15,
  "postgres:test/integration/validation-api.test.ts": 15,
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
    const order = base.map((f, i) => ({ f, i })).sort((a, b) => time.get(b.f)! - time.get(a.f)! || a.i - b.i).map(({ f }) => f);
    // The first files start together, one a worker, whatever their order among themselves: a "postgres" one among
    // them goes first, so that project's global setup runs first and starts its server and demo beside the SQLite
    // demo (test/global-setup.ts). The longest file of a whole run is a SQLite one since sqlite:src/store/postgres.test.ts
    // overtook postgres:test/integration/backup.test.ts.
    const workers = typeof this.ctx.config.maxWorkers === "number" ? this.ctx.config.maxWorkers : 2;
    const pg = order.findIndex((f) => f.project.name === "postgres");
    if (pg > 0 && pg < workers) order.unshift(...order.splice(pg, 1));
    return order;
  }
}
