/**
 * Start-up benchmark: the fixed cost a user feels on every command. Spawns `node bin/jpki.cjs --version`,
 * `--help` and `inspect <certificate>` as a shell would, N times each (interleaved, so a load change on the
 * machine touches all alike), and reports the median wall time against the targets (150, 150 and 300 ms,
 * issue 8 point 9) next to the floor: `node -e 0` spawned the same way. The CLI reaches them by loading the
 * library only when a command runs (src/cli/lib.ts), and by answering --version and the top-level help in
 * the CommonJS launcher before any ES module loads (bin/jpki.cjs, bin/help-cache.cjs).
 */
import { execFileSync, spawnSync } from "node:child_process";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export interface TimingRow {
  readonly label: string;
  readonly ms: number;
  readonly targetMs: number;
}

export interface TimingResult {
  readonly name: string;
  readonly baselineName: string;
  readonly baselineMs: number;
  readonly rows: readonly TimingRow[];
}

const ROOT = fileURLToPath(new URL("../..", import.meta.url)); // dist/bench/ → the package root
const BIN = join(ROOT, "bin", "jpki.cjs");
/** A real certificate: the JLIS signature CA of 2023 (fixtures/jlis/README.md). */
const CERT = join(ROOT, "fixtures", "jlis", "sign-ca-2023.pem");

interface Case {
  readonly label: string;
  readonly args: readonly string[];
  readonly targetMs?: number;
}

/** Wall time of one spawn, in ms; a failing run stops the benchmark (it would measure an error path). */
function once(c: Case, env: NodeJS.ProcessEnv): number {
  const t0 = process.hrtime.bigint();
  const r = spawnSync(process.execPath, c.args, { env, stdio: ["ignore", "ignore", "pipe"], encoding: "utf8" });
  const ms = Number(process.hrtime.bigint() - t0) / 1e6;
  if (r.status !== 0) throw new Error(`startup bench: '${c.label}' exited ${r.status ?? r.signal}: ${r.stderr}`);
  return ms;
}

const median = (xs: readonly number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2]! : (s[s.length / 2 - 1]! + s[s.length / 2]!) / 2;
};

export function benchStartup(opts: { runs?: number } = {}): TimingResult {
  const runs = opts.runs ?? 20;
  // As a user's shell starts it: the launcher sizes libuv's pool itself.
  const env = { ...process.env };
  delete env.UV_THREADPOOL_SIZE;
  const baseline: Case = { label: "node -e 0", args: ["-e", "0"] };
  const cases: Case[] = [
    { label: "jpki --version", args: [BIN, "--version"], targetMs: 150 },
    { label: "jpki --help", args: [BIN, "--help"], targetMs: 150 },
    { label: "jpki inspect CERT", args: [BIN, "inspect", CERT], targetMs: 300 },
  ];
  // What `npm run build` leaves after tsc: without it `jpki --help` renders the help through the whole program
  // (bin/help-cache.cjs), and a tsc-only build, as in `npx tsc -p tsconfig.build.json && … bench`, would time that.
  execFileSync(process.execPath, [join(ROOT, "bin", "help-cache.cjs")], { stdio: "inherit" });
  const all = [baseline, ...cases];
  for (const c of all) for (let i = 0; i < 2; i++) once(c, env); // warm the file cache
  const times = new Map<Case, number[]>(all.map((c) => [c, []]));
  for (let i = 0; i < runs; i++) for (const c of all) times.get(c)!.push(once(c, env));
  return {
    name: `start-up (median wall time of ${runs} spawns each)`,
    baselineName: "node -e 0, spawned the same way",
    baselineMs: median(times.get(baseline)!),
    rows: cases.map((c) => ({ label: c.label, ms: median(times.get(c)!), targetMs: c.targetMs! })),
  };
}
