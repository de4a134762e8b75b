/**
 * test/sequencer.ts: the longest files first, a "postgres" one among the first, and the files of the projects without
 * isolation ("unit", "sqlite-shared": test/isolation.ts) after every other, one project after the other, so that a
 * worker goes on from one to the next without starting again.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { TestSpecification, Vitest } from "vitest/node";
import { LongestFirst } from "./sequencer.js";

const ROOT = join(import.meta.dirname, "..");

function spec(project: string, file: string): TestSpecification {
  const config = { isolate: project !== "unit" && project !== "sqlite-shared", sequence: { groupOrder: 0 } };
  return { project: { name: project, config }, moduleId: join(ROOT, file) } as unknown as TestSpecification;
}

/**
 * The seconds these tests assume, in place of test/sequencer.ts's CI table (which each refresh from a CI log changes):
 * the orders below follow from these numbers alone.
 */
class Fixed extends LongestFirst {
  static override table: Readonly<Record<string, number>> = {
    "postgres:test/integration/backup.test.ts": 82,
    "sqlite:test/chaos/faults.test.ts": 61,
    "postgres:test/integration/notices.test.ts": 38,
    "sqlite:test/integration/store-copy.test.ts": 33,
    "unit:src/server/app.test.ts": 26,
    "sqlite:test/integration/serve.test.ts": 12,
    "unit:src/ca/ocsp-signer.test.ts": 10,
    "sqlite-shared:test/integration/demo.test.ts": 10,
    "unit:src/crl/retired-links.test.ts": 9,
    "unit:src/ca/manage.test.ts": 8,
    "sqlite:src/crl/publisher-disk.test.ts": 8,
    "sqlite-shared:test/integration/card-counter.test.ts": 8,
    "sqlite-shared:test/integration/issuance.test.ts": 7,
  };
}

/** A sequencer of a fresh checkout (nothing cached: the table decides) with two workers. */
function sequencer(sequence: { seed?: number } = {}): LongestFirst {
  const ctx = { cache: { getFileTestResults: () => undefined, getFileStats: () => undefined }, config: { root: ROOT, maxWorkers: 2, sequence } };
  return new Fixed(ctx as unknown as Vitest);
}

describe("LongestFirst", () => {
  it("runs the unit project's files last, longest first among them, whatever their time against the others'", async () => {
    const files = [
      spec("unit", "src/pki/clock.test.ts"), // not in the table
      spec("sqlite", "src/store/staging.test.ts"), // not in the table
      spec("unit", "src/ca/manage.test.ts"), // 8 s
      spec("sqlite", "test/integration/serve.test.ts"), // 12 s
      spec("unit", "src/ca/ocsp-signer.test.ts"), // 10 s
      spec("sqlite", "src/crl/publisher-disk.test.ts"), // 8 s
      spec("postgres", "test/integration/backup.test.ts"), // 82 s
    ];
    const order = (await sequencer().sort(files)).map((f) => `${f.project.name}:${f.moduleId.slice(ROOT.length + 1)}`);
    expect(order).toEqual([
      "postgres:test/integration/backup.test.ts",
      "sqlite:test/integration/serve.test.ts",
      "sqlite:src/crl/publisher-disk.test.ts",
      "sqlite:src/store/staging.test.ts",
      "unit:src/ca/ocsp-signer.test.ts",
      "unit:src/ca/manage.test.ts",
      "unit:src/pki/clock.test.ts",
    ]);
  });

  it("starts a postgres file first when it is among the first two (its project's global setup then runs first)", async () => {
    // 61 s, 38 s, 33 s
    const files = [spec("sqlite", "test/integration/store-copy.test.ts"), spec("sqlite", "test/chaos/faults.test.ts"), spec("postgres", "test/integration/notices.test.ts")];
    const order = (await sequencer().sort(files)).map((f) => `${f.project.name}:${f.moduleId.slice(ROOT.length + 1)}`);
    expect(order).toEqual(["postgres:test/integration/notices.test.ts", "sqlite:test/chaos/faults.test.ts", "sqlite:test/integration/store-copy.test.ts"]);
  });

  it("runs the files of each project without isolation together, the project of the longer files first", async () => {
    // by time alone: 26 10 9 8 8 7 s, the two projects interleaved (a new worker at each change of project)
    const files = [
      spec("unit", "src/server/app.test.ts"), // 26 s
      spec("unit", "src/pki/clock.test.ts"), // not in the table, nor the next two
      spec("unit", "src/pki/der.test.ts"),
      spec("unit", "src/pki/pem.test.ts"),
      spec("sqlite-shared", "test/integration/demo.test.ts"), // 10 s
      spec("unit", "src/crl/retired-links.test.ts"), // 9 s
      spec("sqlite-shared", "test/integration/card-counter.test.ts"), // 8 s
      spec("unit", "src/ca/manage.test.ts"), // 8 s
      spec("sqlite-shared", "test/integration/issuance.test.ts"), // 7 s
      spec("sqlite", "src/store/staging.test.ts"), // not in the table
    ];
    const order = (await sequencer().sort(files)).map((f) => `${f.project.name}:${f.moduleId.slice(ROOT.length + 1)}`);
    // 25 s over 3 files against 43 s over 6
    expect(order.slice(0, 7)).toEqual([
      "sqlite:src/store/staging.test.ts",
      "sqlite-shared:test/integration/demo.test.ts",
      "sqlite-shared:test/integration/card-counter.test.ts",
      "sqlite-shared:test/integration/issuance.test.ts",
      "unit:src/server/app.test.ts",
      "unit:src/crl/retired-links.test.ts",
      "unit:src/ca/manage.test.ts",
    ]);
    expect(order.slice(7).every((f) => f.startsWith("unit:src/pki/"))).toBe(true);
  });

  it("with a seed (--sequence.shuffle.files --sequence.seed N), orders the files by the seed, not by time, each project without isolation still together", async () => {
    const shared = ["demo", "card-counter", "issuance", "rollover", "migration", "inspect-crl", "java-pkix", "compromise-retired"].map((n) => spec("sqlite-shared", `test/integration/${n}.test.ts`));
    const files = [...shared, spec("unit", "src/server/app.test.ts"), spec("unit", "src/ca/manage.test.ts"), spec("sqlite", "src/store/staging.test.ts")];
    const name = (f: TestSpecification) => `${f.project.name}:${f.moduleId.slice(ROOT.length + 1)}`;
    const byTime = (await sequencer().sort(files)).map(name);
    const shuffledBy = async (seed: number) => (await sequencer({ seed }).sort(files)).map(name);
    const [a, again, b] = [await shuffledBy(1111), await shuffledBy(1111), await shuffledBy(2222)];
    expect(again).toEqual(a);
    expect(b).not.toEqual(a);
    for (const order of [a, b]) {
      expect(order).not.toEqual(byTime);
      expect([...order].sort()).toEqual([...byTime].sort());
      // one run of each project: sqlite first, then the two shared projects one after the other
      const runs = order.map((f) => f.split(":")[0]).filter((p, i, all) => p !== all[i - 1]);
      expect(runs[0]).toBe("sqlite");
      expect(runs.slice(1).sort()).toEqual(["sqlite-shared", "unit"]);
    }
  });
});
