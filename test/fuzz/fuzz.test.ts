/**
 * The bounded fuzz run of `npm test` (issue 13 point 3): each target of the table (targets.ts) with a few hundred
 * inputs from a fixed seed (FC_SEED overrides it), which must all be accepted or refused with one of our errors.
 * `npm run fuzz` runs the same table with 100,000 inputs a target (run.ts).
 */
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { corpus, type Corpus } from "./corpus.js";
import { checkTarget, type FuzzTarget } from "./harness.js";
import { serverTarget } from "./server-target.js";
import { parserTargets } from "./targets.js";

const SEED = Number(process.env.FC_SEED ?? 20261301);
let c: Corpus;
let targets: FuzzTarget<unknown>[];
let server: Awaited<ReturnType<typeof serverTarget>>;

beforeAll(async () => {
  c = await corpus();
  server = await serverTarget(c);
  targets = [...(await parserTargets(c)), server as FuzzTarget<unknown>];
});
afterAll(async () => {
  await server?.close();
  await c?.ws.close();
  if (c) rmSync(c.ws.paths.root, { recursive: true, force: true });
});

const NAMES = ["der-reader", "der-strict", "spki", "pkcs10", "inspect-certificate", "inspect-crl", "ocsp-request", "residents-jsonl", "residents-csv", "notices-jsonl", "notices-csv", "apdu", "validate-path", "cms", "http"];

describe("fuzzed parsers (bounded)", () => {
  it("covers every target of the table", () => {
    expect(targets.map((t) => t.name)).toEqual(NAMES);
  });
  for (const name of NAMES) {
    it(`${name}: hostile inputs are accepted or refused with our errors`, async () => {
      const t = targets.find((x) => x.name === name)!;
      const r = await checkTarget(t, { numRuns: Number(process.env.FUZZ_TEST_RUNS ?? t.testRuns ?? 300), seed: SEED });
      expect(r.failure).toBeUndefined();
      expect(r.tally.ok + r.tally.ours).toBeGreaterThan(0);
    });
  }
});
