/**
 * `npm run chaos -- [--rounds N] [--seed S] [--keep] [--dir DIR] [--residents N] [--notices M]`: fault-injection rounds against the built
 * CLI (test/chaos/harness.ts). Prints each round's seed and result, then "N passed, M failed". Round i
 * runs with seed S+i; `--seed S --rounds 1` replays one round. Failing rounds keep their directory (the
 * workspace, the spool, round.json with the plan); `--keep` keeps passing ones too. Exit code 1 when a
 * round failed.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { distCli, formatRound, prepareEnvironment, runRound } from "../test/chaos/harness.js";

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

const rounds = Number(arg("rounds") ?? 10);
const firstSeed = arg("seed") !== undefined ? Number(arg("seed")) : (Date.now() % 1_000_000) * 1000;
const keep = process.argv.includes("--keep");
if (!Number.isInteger(rounds) || rounds < 1 || !Number.isInteger(firstSeed) || firstSeed < 0) {
  console.error("usage: npm run chaos -- [--rounds N] [--seed S] [--keep] [--dir DIR]");
  process.exit(2);
}
const dir = arg("dir") ?? mkdtempSync(join(tmpdir(), "jpki-chaos-"));
console.log(`jpki chaos: ${rounds} rounds from seed ${firstSeed} in ${dir}`);
const env = await prepareEnvironment({ dir, cli: distCli, residents: Number(arg("residents") ?? 3000), notices: Number(arg("notices") ?? 8000) });
const counts = { passed: 0, failed: 0 };
const byInvariant = new Map<string, number[]>();
for (let i = 0; i < rounds; i++) {
  const r = await runRound(env, firstSeed + i, { keep });
  console.log(formatRound(r));
  if (r.violations.length) {
    counts.failed++;
    for (const inv of new Set(r.violations.map((v) => v.invariant))) byInvariant.set(inv, [...(byInvariant.get(inv) ?? []), r.seed]);
  } else counts.passed++;
}
for (const [inv, seeds] of byInvariant) console.log(`  ${inv}: ${seeds.length} rounds (seeds ${seeds.slice(0, 10).join(", ")}${seeds.length > 10 ? ", …" : ""})`);
console.log(`${counts.passed} passed, ${counts.failed} failed`);
if (!counts.failed && !keep && arg("dir") === undefined) rmSync(dir, { recursive: true, force: true });
process.exitCode = counts.failed ? 1 : 0;
