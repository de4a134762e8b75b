/** `jpki fixtures generate`: a deterministic synthetic population and change-notice feed. */
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { Command } from "commander";
import { JpkiError, checkOutputDir, checkOutputFile, library } from "../lib.js";
import { Context } from "../context.js";
import type { Io } from "../output.js";

/** JSON lines in chunks of about 64 KiB (one write each, not one per line); `counted.n` is how many rows so far. */
function* jsonLines(rows: Iterable<unknown>, counted = { n: 0 }): Generator<Uint8Array> {
  let buf = "";
  for (const r of rows) {
    buf += JSON.stringify(r) + "\n";
    counted.n++;
    if (buf.length >= 65_536) {
      yield Buffer.from(buf, "utf8");
      buf = "";
    }
  }
  if (buf) yield Buffer.from(buf, "utf8");
}

export function makeFixturesCommand(io: Io): Command {
  const fx = new Command("fixtures").description("synthetic data for demos, tests and benchmarks (no real person's data)");
  fx.command("generate")
    .description("write residents.jsonl and notices.jsonl: Japanese names, addresses in all 47 prefectures, valid resident codes, a realistic notice mix")
    .requiredOption("--residents <n>", "how many residents")
    .option("--notices <n>", "how many change notices (0: none, and an earlier run's notices.jsonl in the directory is removed)", "0")
    .option("--seed <seed>", "same seed, same files", "1")
    .option("-o, --out <dir>", "output directory", ".")
    .addHelpText("after", `\nExample:\n  jpki fixtures generate --residents 1000 --notices 200 --seed 42 -o data/`)
    .action(async (o: { residents: string; notices: string; seed: string; out: string }, cmd: Command) => {
      const ctx = Context.of(io, cmd);
      const { generateNotices, generateResidents, writeFileAtomic } = await library();
      const nr = Number(o.residents);
      const nn = Number(o.notices);
      if (!Number.isInteger(nr) || nr < 1 || nr > 10_000_000) throw new JpkiError("ERR_USAGE", "--residents must be a whole number from 1 to 10000000");
      if (!Number.isInteger(nn) || nn < 0) throw new JpkiError("ERR_USAGE", "--notices must be a whole number ≥ 0");
      // Both targets are checked before either is written: never a residents.jsonl without its notices.
      const dir = checkOutputDir(o.out, "output directory -o", { create: true, cwd: io.cwd });
      const rPath = checkOutputFile(join(dir, "residents.jsonl"), "output file");
      const nPath = nn > 0 ? checkOutputFile(join(dir, "notices.jsonl"), "output file") : join(dir, "notices.jsonl");
      const residents = [...generateResidents({ count: nr, seed: o.seed })];
      // Owner-only whatever the umask, also over an earlier run's file (a new file renamed in, not the old one
      // truncated with its mode): synthetic here, but this is the code an operator copies for real residents.
      writeFileAtomic(rPath, jsonLines(residents), 0o600);
      const written = { n: 0 };
      if (nn > 0) writeFileAtomic(nPath, jsonLines(generateNotices({ residents, count: nn, seed: o.seed }), written), 0o600);
      // An earlier run's notices.jsonl beside the new residents names residents that are gone (its codes, its
      // items): a feed for another population, taken for this one's by whoever ingests the directory. It goes.
      let staleRemoved = false;
      if (nn === 0 && existsSync(nPath)) {
        rmSync(checkOutputFile(nPath, "output file"));
        staleRemoved = true;
      }
      const notices = written.n;
      const res = { residents: { count: nr, path: rPath }, notices: nn > 0 ? { count: notices, path: nPath } : null, seed: o.seed };
      // Deaths and removals close records: a population runs out of notices it can take. Said, not left to be noticed.
      const short = nn > 0 && notices < nn ? `; ${nn} notices were asked for, but ${nr} residents take only ${notices} (deaths and removals close their records): give more --residents for more` : "";
      const removed = staleRemoved ? `; removed the ${nPath} an earlier run wrote for other residents` : "";
      ctx.out.result({ ...res, ...(short ? { noticesRequested: nn } : {}), ...(staleRemoved ? { staleNoticesRemoved: nPath } : {}) }, `wrote ${nr} residents to ${rPath}${nn > 0 ? ` and ${notices} notices to ${nPath}` : ""} (seed ${o.seed})${short}${removed}`);
    });
  return fx;
}
