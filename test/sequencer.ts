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
 * CI seconds per "project:file": vitest's per-file times (rounded) of the fresh-clone run of e153f4a
 * (2026-12-06 20:15 UTC, vitest 803 s on the 2-core CI machine, the first with the "sqlite-shared" project), every
 * file of 7 s or more (6.5 s rounded up). The files that now run without isolation are keyed "unit:" or "sqlite-shared:"
 * (test/isolation.ts); they run after every other file whatever their time, which orders them only among themselves.
 */
const CI_SECONDS: Readonly<Record<string, number>> = {
  "postgres:test/integration/backup.test.ts": 74,
  "sqlite:test/integration/daemon-start.test.ts": 47,
  "sqlite:test/chaos/faults.test.ts": 40,
  "sqlite:test/integration/cli-startup.test.ts": 39,
  "postgres:test/integration/provider.test.ts": 39,
  "sqlite:test/integration/provider.test.ts": 37,
  "postgres:test/integration/notices.test.ts": 35,
  "postgres:test/integration/concurrency.test.ts": 34,
  "sqlite:test/integration/backup.test.ts": 32,
  "postgres:test/integration/daemon-start.test.ts": 31,
  "sqlite:src/store/postgres-contract.test.ts": 29,
  "sqlite:test/integration/store-copy.test.ts": 28,
  "sqlite:src/crl/reuse.test.ts": 27,
  "sqlite:test/integration/concurrency.test.ts": 24,
  "unit:src/server/app.test.ts": 23,
  "postgres:test/integration/resume.test.ts": 23,
  "sqlite:test/integration/web-page.test.ts": 22,
  "sqlite:src/store/postgres.test.ts": 22,
  "postgres:test/integration/serve.test.ts": 21,
  "postgres:test/integration/load.test.ts": 21,
  "sqlite:src/store/postgres-vanish.test.ts": 20,
  "sqlite:src/store/copy.test.ts": 20,
  "postgres:test/integration/keys.test.ts": 20,
  "postgres:test/integration/counter.test.ts": 19,
  "sqlite:test/integration/notices.test.ts": 18,
  "sqlite:test/integration/load.test.ts": 18,
  "sqlite:test/chaos/checker.test.ts": 16,
  "sqlite:src/store/sqlite.test.ts": 16,
  "postgres:test/integration/ocsp.test.ts": 16,
  "sqlite:test/integration/serve.test.ts": 15,
  "sqlite:test/integration/bridge-files.test.ts": 15,
  "sqlite-shared:test/integration/migration.test.ts": 15,
  "sqlite:src/provider/follow.test.ts": 14,
  "postgres:test/integration/issuance.test.ts": 14,
  "sqlite:test/integration/postgres-workspace.test.ts": 13,
  "sqlite:test/integration/ocsp.test.ts": 13,
  "sqlite:test/integration/keys.test.ts": 13,
  "sqlite:test/integration/daemon-stop-while-upgrading-sqlite.test.ts": 13,
  "sqlite:src/store/postgres-schema.test.ts": 13,
  "sqlite:test/integration/resume.test.ts": 12,
  "sqlite:test/integration/hsm.test.ts": 12,
  "postgres:test/integration/compromise-retired.test.ts": 12,
  "sqlite:test/integration/counter.test.ts": 11,
  "sqlite:src/store/postgres-log.test.ts": 11,
  "sqlite:src/ca/spool.test.ts": 11,
  "postgres:test/integration/audit.test.ts": 10,
  "sqlite:test/integration/daemon-stop-while-opening.test.ts": 9,
  "sqlite:test/integration/bridge.test.ts": 9,
  "postgres:test/integration/validation-api.test.ts": 9,
  "postgres:test/integration/liveness.test.ts": 9,
  "unit:src/server/access-log.test.ts": 8,
  "unit:src/crl/schedule.test.ts": 8,
  "sqlite:src/crl/publisher-disk.test.ts": 8,
  "sqlite-shared:test/integration/rollover.test.ts": 8,
  "postgres:test/integration/identity.test.ts": 8,
  "unit:src/ca/ocsp-signer.test.ts": 7,
  "sqlite:test/integration/validation-api.test.ts": 7,
  "sqlite:test/integration/package.test.ts": 7,
  "sqlite-shared:test/integration/java-pkix.test.ts": 7,
  "sqlite-shared:test/integration/demo.test.ts": 7,
  "postgres:test/integration/compromise-carried.test.ts": 7,
};

export class LongestFirst extends BaseSequencer {
  /** The seconds a file is expected to take when vitest's cache knows nothing of it (a subclass's test gives its own). */
  static table: Readonly<Record<string, number>> = CI_SECONDS;

  override async sort(files: TestSpecification[]): Promise<TestSpecification[]> {
    const cache = this.ctx.cache;
    const expected = (f: TestSpecification): number => {
      const key = `${f.project.name}:${relative(this.ctx.config.root, f.moduleId)}`;
      return cache.getFileTestResults(key)?.duration ?? ((this.constructor as typeof LongestFirst).table[key] ?? 0) * 1000;
    };
    // vitest's order breaks ties (and orders the files nothing is known of)
    const base = await super.sort(files);
    // A seed (`--sequence.shuffle.files --sequence.seed N`, or `--sequence.shuffle`, which shuffles the tests too and
    // draws one): a random order of the seed's in place of the times, the projects still grouped below, to check that
    // the files of a shared worker pass whatever ran before them. vitest shuffles files only with its own sequencer:
    // beside a custom one its `--sequence.shuffle.files` alone changes nothing (it keeps the seed, given or drawn).
    const seed = this.ctx.config.sequence.seed;
    const time = new Map(seed === undefined ? base.map((f) => [f, expected(f)]) : shuffled(base, seed).map((f, i) => [f, base.length - i]));
    // The files of a project without isolation ("unit", "sqlite-shared": test/isolation.ts) go last, one project after
    // the other: vitest hands a worker its next file only while that file is of the same non-isolated project (else
    // it starts a new worker, which imports everything again), so two such projects' files interleaved by time would
    // each start a worker. The project whose files take longest on average first ("sqlite-shared" before "unit"):
    // the shortest files, last, even out the workers' ends.
    const sums = new Map<string, { time: number; files: number }>();
    for (const f of base) {
      if (f.project.config.isolate !== false) continue;
      const s = sums.get(f.project.name) ?? { time: 0, files: 0 };
      sums.set(f.project.name, { time: s.time + time.get(f)!, files: s.files + 1 });
    }
    const mean = (p: string) => sums.get(p)!.time / sums.get(p)!.files;
    const projects = [...sums.keys()].sort((a, b) => mean(b) - mean(a) || (a < b ? -1 : 1));
    const group = (f: TestSpecification) => (f.project.config.isolate === false ? 1 + projects.indexOf(f.project.name) : 0);
    const order = base.map((f, i) => ({ f, i })).sort((a, b) => group(a.f) - group(b.f) || time.get(b.f)! - time.get(a.f)! || a.i - b.i).map(({ f }) => f);
    // The first files start together, one a worker, whatever their order among themselves: a "postgres" one among
    // them goes first, so that project's global setup runs first and starts its server and demo beside the SQLite
    // demo (test/global-setup.ts). (In 08edaf2's CI the longest file was already a PostgreSQL one, postgres:…/backup.test.ts.)
    const workers = typeof this.ctx.config.maxWorkers === "number" ? this.ctx.config.maxWorkers : 2;
    const pg = order.findIndex((f) => f.project.name === "postgres");
    if (pg > 0 && pg < workers) order.unshift(...order.splice(pg, 1));
    return order;
  }
}

/** `items` in a random order drawn from `seed` (Fisher–Yates over mulberry32): the same seed, the same order. */
export function shuffled<T>(items: readonly T[], seed: number): T[] {
  let state = seed >>> 0;
  const random = () => {
    state = (state + 0x6d2b79f5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  const out = [...items];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(random() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}
