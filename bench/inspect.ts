/**
 * CRL inspection benchmark (issue 8 point 3): `jpki inspect big.crl > /dev/null` on a CRL of 1,000,000 entries
 * built once with our builder, next to `openssl crl -inform DER -noout -text -in big.crl > /dev/null` on the
 * same file in the same run. Both are spawned as a shell would, three times each, interleaved; the medians are
 * compared as entries per second (target ratio ≥ 1.0: no slower than openssl). The note gives the times, the
 * peak RSS of each child (VmHWM, read through a preloaded hook for ours and /usr/bin/time for openssl when
 * present), and the times of `--json`, `--summary` and `--max-entries all` (every entry as text, as openssl
 * prints them).
 */
import { spawnSync } from "node:child_process";
import { generateKeyPairSync } from "node:crypto";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { buildCrl, type CrlEntryInput } from "../src/crl/builder.js";
import { SoftwareSigner } from "../src/pki/signer.js";
import { encodeName } from "../src/profile/names.js";
import type { BenchResult } from "./issue.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url)); // dist/bench/ → the package root
const BIN = join(ROOT, "bin", "jpki.cjs");
const RUNS = 3;
const REASONS = [0, 1, 3, 4, 5];

const mb = (kb: number | undefined) => (kb === undefined ? "?" : `${(kb / 1024).toFixed(0)} MB`);
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const log = (s: string) => {
  if (process.env.JPKI_BENCH_QUIET !== "1") console.error(`  [inspect] ${s}`);
};

/** Ascending 16-octet serials with random gaps, as the store lists randomly drawn serials. */
function* entryChunks(n: number): Generator<CrlEntryInput[]> {
  let serial = 0x4000_0000_0000_0000_0000_0000_0000_0000n;
  const span = (1n << 126n) / BigInt(n);
  for (let i = 0; i < n; i += 10_000) {
    const chunk: CrlEntryInput[] = [];
    for (let k = i; k < Math.min(n, i + 10_000); k++) {
      serial += 1n + ((span * BigInt(1 + Math.floor(Math.random() * 1000))) >> 10n);
      chunk.push({ serial: serial.toString(16), revokedAt: new Date(Date.UTC(2026, 0, 1) + k * 30_000), reason: REASONS[k % REASONS.length]! });
    }
    yield chunk;
  }
}

/** One spawn with stdout to /dev/null: wall seconds and peak RSS in KiB (undefined when it cannot be read). */
function timed(cmd: string, args: readonly string[], hwmFile: string | undefined): { s: number; kb: number | undefined } {
  const devnull = openSync("/dev/null", "w");
  try {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(cmd, args, { stdio: ["ignore", devnull, "pipe"], encoding: "utf8", env: { ...process.env, ...(hwmFile ? { JPKI_BENCH_HWM: hwmFile } : {}) } });
    const s = Number(process.hrtime.bigint() - t0) / 1e9;
    if (r.status !== 0) throw new Error(`inspect bench: ${cmd} ${args.join(" ")} exited ${r.status ?? r.signal}: ${r.stderr}`);
    let kb: number | undefined;
    if (hwmFile) kb = Number(readFileSync(hwmFile, "utf8")) || undefined;
    else {
      const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(r.stderr);
      kb = m ? Number(m[1]) : undefined;
    }
    return { s, kb };
  } finally {
    closeSync(devnull);
  }
}

export async function benchInspect(opts: { entries?: number } = {}): Promise<BenchResult> {
  const n = opts.entries ?? 1_000_000;
  const dir = mkdtempSync(join(tmpdir(), "jpki-bench-inspect-"));
  try {
    const crlPath = join(dir, "big.crl");
    const t0 = process.hrtime.bigint();
    const built = await buildCrl({
      issuerName: encodeName([["countryName", "JP"], ["organizationName", "JPKI"], ["organizationalUnitName", "JPKI for digital signature"], ["organizationalUnitName", "Tokyo-to"]]),
      authorityKeyId: Buffer.alloc(20, 1),
      number: 1n,
      thisUpdate: new Date("2026-01-03T00:00:00Z"),
      nextUpdate: new Date("2026-01-05T00:00:00Z"),
      entries: entryChunks(n),
      signer: new SoftwareSigner(generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey),
    });
    const fd = openSync(crlPath, "w");
    for (const c of built.chunks) writeSync(fd, c);
    closeSync(fd);
    log(`built ${n} entries, ${(statSync(crlPath).size / 1048576).toFixed(0)} MB, in ${(Number(process.hrtime.bigint() - t0) / 1e9).toFixed(1)} s`);

    // Ours: VmHWM of the inspect process itself, written on exit by a preloaded CommonJS hook.
    const hook = join(dir, "hwm.cjs");
    writeFileSync(
      hook,
      `process.on("exit", () => { const m = /VmHWM:\\s+(\\d+)/.exec(require("fs").readFileSync("/proc/self/status", "utf8")); if (m && process.env.JPKI_BENCH_HWM) require("fs").writeFileSync(process.env.JPKI_BENCH_HWM, m[1]); });\n`,
    );
    const hwm = join(dir, "hwm.txt");
    const ours = (...args: string[]) => timed(process.execPath, ["-r", hook, BIN, "inspect", crlPath, ...args], hwm);
    const timeV = existsSync("/usr/bin/time");
    const opensslArgs = ["crl", "-inform", "DER", "-noout", "-text", "-in", crlPath];
    const openssl = () => (timeV ? timed("/usr/bin/time", ["-v", "openssl", ...opensslArgs], undefined) : timed("openssl", opensslArgs, undefined));

    const runs = { text: [] as number[], openssl: [] as number[] };
    let oursKb = 0;
    let opensslKb: number | undefined;
    for (let i = 0; i < RUNS; i++) {
      const a = ours();
      runs.text.push(a.s);
      oursKb = Math.max(oursKb, a.kb ?? 0);
      const b = openssl();
      runs.openssl.push(b.s);
      if (b.kb !== undefined) opensslKb = Math.max(opensslKb ?? 0, b.kb);
      log(`run ${i + 1}: inspect ${a.s.toFixed(2)} s, openssl -text ${b.s.toFixed(2)} s`);
    }
    const modes = (["--json", "--summary", "--max-entries all"] as const).map((m) => {
      const r = ours(...m.split(" "));
      return { m, ...r };
    });
    const text = median(runs.text);
    const ssl = median(runs.openssl);
    return {
      name: `jpki inspect of a ${n.toLocaleString("en")}-entry CRL (${(statSync(crlPath).size / 1048576).toFixed(0)} MB)`,
      ours: n / text,
      baseline: n / ssl,
      unit: "entries/s",
      baselineName: "entries/s openssl crl -noout -text",
      target: 1.0,
      note: [
        `time: inspect ${text.toFixed(2)} s vs openssl -text ${ssl.toFixed(2)} s (${(text / ssl).toFixed(2)}× openssl's time, target ≤ 1.0×; medians of ${RUNS})`,
        `peak RSS: inspect ${mb(oursKb)}, openssl -text ${mb(opensslKb)}`,
        ...modes.map((r) => `inspect ${r.m}: ${r.s.toFixed(2)} s, ${mb(r.kb)}`),
      ].join("\n"),
    };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
