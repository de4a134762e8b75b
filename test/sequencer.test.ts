/**
 * test/sequencer.ts: the longest files first, a "postgres" one among the first, and the files of the project without
 * isolation ("unit", test/isolation.ts) after every other, one after the other, so that a worker goes on from one to
 * the next without starting again.
 */
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { TestSpecification, Vitest } from "vitest/node";
import { LongestFirst } from "./sequencer.js";

const ROOT = join(import.meta.dirname, "..");

function spec(project: string, file: string): TestSpecification {
  const config = { isolate: project !== "unit", sequence: { groupOrder: 0 } };
  return { project: { name: project, config }, moduleId: join(ROOT, file) } as unknown as TestSpecification;
}

/** A sequencer of a fresh checkout (nothing cached: the CI table decides) with two workers. */
function sequencer(): LongestFirst {
  const ctx = { cache: { getFileTestResults: () => undefined, getFileStats: () => undefined }, config: { root: ROOT, maxWorkers: 2 } };
  return new LongestFirst(ctx as unknown as Vitest);
}

describe("LongestFirst", () => {
  it("runs the unit project's files last, longest first among them, whatever their time against the others'", async () => {
    const files = [
      spec("unit", "src/pki/clock.test.ts"), // not in the table
      spec("sqlite", "src/store/staging.test.ts"), // not in the table
      spec("unit", "src/ca/manage.test.ts"), // 8 s
      spec("sqlite", "test/integration/demo.test.ts"), // 10 s
      spec("unit", "src/ca/ocsp-signer.test.ts"), // 10 s
      spec("sqlite", "src/crl/publisher-disk.test.ts"), // 8 s
      spec("postgres", "test/integration/backup.test.ts"), // 82 s
    ];
    const order = (await sequencer().sort(files)).map((f) => `${f.project.name}:${f.moduleId.slice(ROOT.length + 1)}`);
    expect(order).toEqual([
      "postgres:test/integration/backup.test.ts",
      "sqlite:test/integration/demo.test.ts",
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
});
