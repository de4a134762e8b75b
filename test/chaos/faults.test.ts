/**
 * Fault injection, slow (spawns the built CLI ~40 times): three seeded
 * rounds of test/chaos/harness.ts. Each round runs two `notices ingest` of files whose residents' sequences
 * continue from one to the other at the same moment, another ingest, `issue --batch`, `crl generate`,
 * `registry apply` and a `watch` daemon on one workspace, SIGKILLs some of them at random, recovers as an
 * operator would (re-run what was killed or locked out, then `watch --once`) and checks the invariants.
 * A failure names the round's seed: `npm run chaos -- --seed S --rounds 1` replays it (and keeps the
 * workspace); `npm run chaos -- --rounds 200` runs many more. JPKI_CHAOS_SEED=S changes the first seed.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { formatRound, prepareEnvironment, privateDistCopy, runRound, type Environment } from "./harness.js";

const first = Number(process.env.JPKI_CHAOS_SEED ?? 1);
const seeds = [first, first + 1, first + 2];
let tmp: string;
let env: Environment;
let failed = false;

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "jpki-chaos-faults-"));
  const cli = privateDistCopy(join(tmp, "build"));
  env = await prepareEnvironment({ dir: join(tmp, "env"), cli, residents: 1500, notices: 3000 });
}, 240_000);

afterAll(() => {
  // A failed round keeps its directory for reading (the path is in the failure message).
  if (tmp && !failed) rmSync(tmp, { recursive: true, force: true });
});

describe("fault injection: SIGKILLs and concurrent commands on one workspace (slow)", () => {
  it.each(seeds)("round with seed %i: every invariant holds after recovery", async (seed) => {
    const r = await runRound(env, seed);
    if (r.violations.length) failed = true;
    expect(r.violations, formatRound(r)).toEqual([]);
  }, 300_000);
});
