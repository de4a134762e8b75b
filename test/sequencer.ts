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
 * CI seconds per "project:file": vitest's per-file times (rounded) of the fresh-clone run of 641b8ba
 * (/work/notes/ci-641b8ba.log, 21:36 UTC on 2026-12-05, 715 s on a quiet 2-core machine), every file of 7 s or more.
 * Changed after it (h-suite3), scaled by what each part took there: src/store/postgres.test.ts (60 s) split by area
 * into itself (20: 21 less the 1.5 s its close test no longer waits), postgres-contract (18), postgres-schema (12) and
 * postgres-log (10); postgres serve.test less the 6.5 s its store-bound test no longer waits (19); postgres-vanish
 * ×0.71 (15), measured back to back. Added after it: test/integration/inspect-golden.test.ts (h-inspect), 11 s alone
 * on this machine under load; src/crl/reuse.test.ts (CRL block reuse, h-reuse), 26 s in CI of 24b227f, ≈ 20 s since its workspaces are copies of one.
 */
const CI_SECONDS: Readonly<Record<string, number>> = {
  "sqlite:test/chaos/faults.test.ts": 60,
  "postgres:test/integration/backup.test.ts": 52,
  "postgres:test/integration/notices.test.ts": 44,
  "sqlite:test/integration/backup.test.ts": 42,
  "postgres:test/integration/concurrency.test.ts": 32,
  "sqlite:test/integration/cli-startup.test.ts": 27,
  "sqlite:src/store/copy.test.ts": 25,
  "sqlite:test/integration/web-page.test.ts": 24,
  "sqlite:test/chaos/checker.test.ts": 24,
  "sqlite:test/integration/store-copy.test.ts": 23,
  "sqlite:test/integration/concurrency.test.ts": 23,
  "postgres:test/integration/load.test.ts": 23,
  "sqlite:test/integration/load.test.ts": 20,
  "postgres:test/integration/provider.test.ts": 20,
  "sqlite:src/store/postgres.test.ts": 20,
  "postgres:test/integration/serve.test.ts": 19,
  "sqlite:src/server/app.test.ts": 18,
  "postgres:test/integration/resume.test.ts": 18,
  "sqlite:src/store/postgres-contract.test.ts": 18,
  "sqlite:test/integration/notices.test.ts": 17,
  "sqlite:test/integration/provider.test.ts": 16,
  "postgres:test/integration/keys.test.ts": 16,
  "sqlite:test/integration/migration.test.ts": 15,
  "sqlite:src/store/postgres-vanish.test.ts": 15,
  "postgres:test/integration/issuance.test.ts": 14,
  "postgres:test/integration/counter.test.ts": 14,
  "sqlite:test/integration/keys.test.ts": 13,
  "postgres:test/integration/ocsp.test.ts": 13,
  "sqlite:test/integration/serve.test.ts": 12,
  "sqlite:test/integration/ocsp.test.ts": 12,
  "sqlite:src/store/postgres-schema.test.ts": 12,
  "sqlite:test/integration/resume.test.ts": 11,
  "sqlite:test/integration/inspect-golden.test.ts": 11,
  "sqlite:src/crl/reuse.test.ts": 20,
  "sqlite:test/integration/counter.test.ts": 11,
  "sqlite:test/integration/bridge-files.test.ts": 11,
  "postgres:test/integration/compromise-retired.test.ts": 11,
  "sqlite:test/integration/postgres-workspace.test.ts": 10,
  "sqlite:src/ca/ocsp-signer.test.ts": 10,
  "sqlite:src/ca/manage.test.ts": 10,
  "sqlite:src/store/postgres-log.test.ts": 10,
  "sqlite:test/integration/bridge.test.ts": 9,
  "sqlite:src/crl/schedule.test.ts": 9,
  "sqlite:test/integration/card-counter.test.ts": 8,
  "sqlite:src/store/sqlite.test.ts": 8,
  "sqlite:src/provider/follow.test.ts": 8,
  "sqlite:src/crl/retired-links.test.ts": 8,
  "postgres:test/integration/validation-api.test.ts": 8,
  "postgres:test/integration/liveness.test.ts": 8,
  "postgres:test/integration/identity.test.ts": 8,
  "postgres:test/integration/audit.test.ts": 8,
  "sqlite:test/integration/validation-api.test.ts": 7,
  "sqlite:test/integration/demo.test.ts": 7,
  "sqlite:src/ca/spool.test.ts": 7,
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
    // demo (test/global-setup.ts). The longest file of a whole run is a SQLite one (sqlite:test/chaos/faults.test.ts).
    const workers = typeof this.ctx.config.maxWorkers === "number" ? this.ctx.config.maxWorkers : 2;
    const pg = order.findIndex((f) => f.project.name === "postgres");
    if (pg > 0 && pg < workers) order.unshift(...order.splice(pg, 1));
    return order;
  }
}
