/**
 * CRL generation benchmark (issue 8 point 1): `jpki crl generate --ca 13-sig` for a CA holding 1,000,000
 * revoked certificates, next to `openssl ca -gencrl` over an index.txt of the same 1,000,000 revocations (same
 * serials, dates and reasons) in the same run. Both are spawned as children, interleaved, and timed wall-clock
 * with their peak RSS read the same way (/usr/bin/time -v when installed, else VmHWM polled from /proc).
 * Target: ours ≥ 10× faster than openssl's (the ratio printed is openssl's seconds over ours), and our peak RSS
 * growth < 200 MB over the same child running `jpki --version`.
 *
 * Run on each backend (bench/backends.ts); on PostgreSQL the workspace is made with `ca init --store postgres`
 * and every child gets JPKI_STORE, as a user's shell would.
 *
 * Setup only (not timed), through the Store interface alone so that it outlives schema changes: the CAs are
 * made with `jpki ca init`; then, in serial order, chunks of 10,000 issuance records (commitIssuances, a small
 * placeholder DER: CRL generation reads serial, revocation date and reason only) each followed by their
 * revocations (commitNoticeBatch with a decide callback that only revokes, reasons cycled). The certificates
 * belong to n/10 synthetic residents (at least one chunk's worth), each holding one at a time: a resident's
 * certificate is revoked before the next round issues it another. A notice batch revokes at one time, so the
 * entries of a chunk share their revocation date (whole seconds, one second apart from chunk to chunk);
 * index.txt gets the same dates. About 1% as many unrevoked certificates go to the other CA first (see fill).
 * The setup's time is logged.
 *
 * On PostgreSQL the store is vacuumed and analyzed after the load (untimed), as autovacuum does a live store within
 * a minute of a million updates: left to autovacuum, it ran during the timed runs of both sides on the 2 cores.
 *
 * Timed: a first build (no previous CRL on this host: every block comes from the store), reported on its own
 * line with its ratio; then `runs` regenerations, each after JPKI_BENCH_CRL_NEW (default 1,000) more revocations
 * in one notice batch on both sides (not timed) — the steady state of a CA whose CRL is regenerated as notices
 * come in. The ratio and target are those regenerations' medians: ours may take the blocks the previous CRL
 * holds on disk (crl/reuse.ts, PostgreSQL; each checked against the server's SHA-256), openssl rereads index.txt.
 *
 * Checked after the runs: `openssl crl -inform DER -noout` parses our CRL and `openssl crl -text` lists exactly
 * the number of entries asked for. `JPKI_BENCH_CRL_ENTRIES` sizes it (default 1,000,000, shared with the
 * inspect bench), `JPKI_BENCH_CRL_RUNS` the runs per side (default 3, medians compared); `JPKI_BENCH_CRL_PROFILE=DIR`
 * writes a CPU profile of each timed run of ours into DIR.
 */
import { spawn, spawnSync } from "node:child_process";
import { closeSync, existsSync, mkdtempSync, openSync, readFileSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { CertificateType, FourItems } from "../src/profile/types.js";
import type { IssuanceRecord, ResidentRecord, Store } from "../src/store/types.js";
import { Workspace } from "../src/workspace/workspace.js";
import type { Backend } from "./backends.js";
import type { BenchResult } from "./issue.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url)); // dist/bench/ → the package root
const BIN = join(ROOT, "bin", "jpki.cjs");
const CA = "13-sig";
const EMPTY_CA = "13-auth"; // same command on a CA with no revocations (unrevoked ones only): the fixed cost (start-up, key unlock, signing)
const PASSPHRASE = "bench";
/** Reasons cycled over the entries, with the names index.txt gives them (unspecified: no reason, as we omit it). */
const REASONS: ReadonlyArray<readonly [number, string | undefined]> = [[0, undefined], [1, "keyCompromise"], [3, "affiliationChanged"], [4, "superseded"], [5, "cessationOfOperation"]];

const mb = (kb: number | undefined) => (kb === undefined ? "?" : `${(kb / 1024).toFixed(0)} MB`);
const median = (xs: readonly number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const since = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
const log = (s: string) => {
  if (process.env.JPKI_BENCH_QUIET !== "1") console.error(`  [crl] ${s}`);
};
/** UTCTime as index.txt writes it: YYMMDDHHMMSSZ. */
const utcTime = (d: Date) => d.toISOString().replace(/^\d\d(\d\d)-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d).*$/, "$1$2$3$4$5$6Z");

const TIME_V = existsSync("/usr/bin/time");

/**
 * One child, stdout and stderr captured: wall seconds and peak RSS in KiB. With /usr/bin/time -v the figure is
 * its "Maximum resident set size"; without it, VmHWM of /proc/<pid>/status polled every 20 ms until exit (the
 * high-water mark only grows, so the last reading before exit is at most one poll short of the peak).
 */
function measure(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): Promise<{ s: number; kb: number | undefined; stdout: string }> {
  return new Promise((resolve, reject) => {
    const t0 = process.hrtime.bigint();
    const child = TIME_V ? spawn("/usr/bin/time", ["-v", cmd, ...args], { env }) : spawn(cmd, args, { env });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (d: string) => (stdout += d));
    child.stderr.setEncoding("utf8").on("data", (d: string) => (stderr += d));
    let polled: number | undefined;
    const poll = TIME_V
      ? undefined
      : setInterval(() => {
          try {
            const m = /VmHWM:\s+(\d+)/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"));
            if (m) polled = Math.max(polled ?? 0, Number(m[1]));
          } catch {
            // exited between two polls
          }
        }, 20);
    child.on("error", reject);
    child.on("close", (code, signal) => {
      const s = since(t0);
      if (poll) clearInterval(poll);
      if (code !== 0) return reject(new Error(`crl bench: ${cmd} ${args.join(" ")} exited ${code ?? signal}: ${stderr.slice(-2000)}`));
      const m = /Maximum resident set size \(kbytes\): (\d+)/.exec(stderr);
      resolve({ s, kb: TIME_V ? (m ? Number(m[1]) : undefined) : polled, stdout });
    });
  });
}

function run(cmd: string, args: readonly string[], env: NodeJS.ProcessEnv = process.env): string {
  const r = spawnSync(cmd, args, { env, encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.status !== 0) throw new Error(`crl bench: ${cmd} ${args.join(" ")} exited ${r.status ?? r.signal}: ${r.stderr}`);
  return r.stdout;
}

/** Ascending 16-octet serials (first octet 0x40–0x7f) with random gaps, as randomly drawn serials sort. */
function* serials(n: number): Generator<string> {
  let serial = 0x4000_0000_0000_0000_0000_0000_0000_0000n;
  const span = (1n << 126n) / BigInt(n || 1);
  for (let i = 0; i < n; i++) {
    serial += 1n + ((span * BigInt(1 + Math.floor(Math.random() * 1000))) >> 10n);
    yield serial.toString(16);
  }
}

/**
 * Fills `store` with n revoked certificates of CA through the Store interface (see the header) and writes the
 * same revocations to index.txt (fd).
 */
async function fill(store: Store, n: number, fd: number): Promise<More> {
  const io = { store, fd };
  const CHUNK = n > 2_000_000 ? 20_000 : 10_000;
  const residentCount = Math.min(n, Math.max(CHUNK, Math.ceil(n / 10)));
  const code = (k: number) => String(10_000_000_000 + k); // 11 digits, ascending
  const fourItems: FourItems = { name: "ベンチ　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-01-01", gender: "male" };
  const municipalityCode = "131016";
  const der = Buffer.alloc(64, 0x30);
  const notBefore = new Date(Date.UTC(2026, 0, 1));
  const notAfter = new Date(Date.UTC(2031, 0, 1));
  let t0 = process.hrtime.bigint();
  for (let k = 0; k < residentCount; k += 50_000) {
    const chunk: ResidentRecord[] = [];
    for (let j = k; j < Math.min(residentCount, k + 50_000); j++) chunk.push({ residentCode: code(j), municipalityCode, fourItems, status: "active" });
    await store.upsertResidents(chunk);
  }
  log(`${residentCount} residents stored in ${since(t0).toFixed(1)} s`);

  // Unrevoked certificates on the other CA (authentication, so they never supersede the signature ones), about
  // 1% of n: a store always holds some, and without them PostgreSQL's statistics, sampled between a chunk's
  // revocation and the next issuance, can say nothing is unrevoked — then the revoking UPDATE (… WHERE serial =
  // u.serial AND revoked_at IS NULL) is planned as a nested loop over a sequential scan, chunk × chunk
  // comparisons: tens of seconds per chunk instead of a fraction of one. That CA's CRL stays empty.
  t0 = process.hrtime.bigint();
  const pool = Math.min(residentCount, Math.max(CHUNK, Math.ceil(n / 100)));
  for (let k = 0; k < pool; k += CHUNK) {
    const records: IssuanceRecord[] = [];
    for (let j = k; j < Math.min(pool, k + CHUNK); j++) {
      const serial = (0x2000_0000_0000_0000_0000_0000_0000_0000n + BigInt(j)).toString(16);
      records.push({ serial, caId: EMPTY_CA, type: "authentication", residentCode: code(j), municipalityCode, fourItems, notBefore, notAfter, issuedAt: notBefore, der });
    }
    const results = await store.commitIssuances(records);
    if (results.some((r) => r.status !== "committed")) throw new Error("crl bench: an unrevoked authentication certificate was not committed");
  }
  log(`${pool} unrevoked certificates of ${EMPTY_CA} stored in ${since(t0).toFixed(1)} s`);

  t0 = process.hrtime.bigint();
  const expiry = utcTime(notAfter);
  const type: CertificateType = "signature";
  let done = 0;
  let chunkNo = 0;
  let issueS = 0;
  let revokeS = 0;
  let serialsOfChunk: string[] = [];
  const every = Math.max(1, Math.round(n / CHUNK / 10));
  const flush = async () => {
    const first = done;
    const records: IssuanceRecord[] = serialsOfChunk.map((serial, k) => ({
      serial,
      caId: CA,
      type,
      residentCode: code((first + k) % residentCount),
      municipalityCode,
      fourItems,
      notBefore,
      notAfter,
      issuedAt: notBefore,
      der,
    }));
    let t = process.hrtime.bigint();
    const results = await io.store.commitIssuances(records);
    issueS += since(t);
    const bad = results.findIndex((r) => r.status !== "committed" || r.superseded.length > 0);
    if (bad >= 0) throw new Error(`crl bench: issuance ${first + bad} not committed cleanly: ${JSON.stringify(results[bad])}`);
    const at = new Date(Date.UTC(2026, 0, 2) + chunkNo * 1000); // whole seconds: UTCTime on both sides
    // with the code each was issued under, as ingestion passes it (a store may find the certificate by it)
    const revocations = records.map((r, k) => ({ serial: r.serial, reason: REASONS[(first + k) % REASONS.length]![0], source: "bench", residentCode: r.residentCode }));
    t = process.hrtime.bigint();
    const { revoked } = await io.store.commitNoticeBatch({ noticeIds: [], residentCodes: [] }, () => ({
      commit: { at, notices: [], sequences: [], revocations, relinks: [], dirtyCas: [CA] },
    }));
    revokeS += since(t);
    if (revoked !== records.length) throw new Error(`crl bench: ${revoked} of ${records.length} revoked`);
    const when = utcTime(at);
    writeSync(
      io.fd,
      records
        .map((r, k) => {
          const name = REASONS[(first + k) % REASONS.length]![1];
          return `R\t${expiry}\t${when}${name ? `,${name}` : ""}\t${r.serial.toUpperCase()}\tunknown\t/C=JP/CN=bench ${first + k}\n`;
        })
        .join(""),
    );
    done += records.length;
    serialsOfChunk = [];
    if (chunkNo++ % every === every - 1) log(`  ${done} issued and revoked (${since(t0).toFixed(1)} s)`);
  };
  for (const serial of serials(n)) {
    serialsOfChunk.push(serial);
    if (serialsOfChunk.length === CHUNK) await flush();
  }
  if (serialsOfChunk.length) await flush();
  log(`${n} certificates issued and revoked through the store in ${since(t0).toFixed(1)} s (commitIssuances ${issueS.toFixed(1)} s, commitNoticeBatch ${revokeS.toFixed(1)} s, chunks of ${CHUNK})`);
  // Later revocations: serials of their own range (below the generator's 0x40…, above the other CA's 0x20…).
  let extra = 0x3000_0000_0000_0000_0000_0000_0000_0000n;
  return async (to, count) => {
    Object.assign(io, to);
    for (let k = 0; k < count; k++) serialsOfChunk.push((extra++).toString(16));
    await flush();
  };
}

/** Issues and revokes `count` more certificates of CA in one notice batch (one more log block), on both sides. */
type More = (to: { store: Store; fd: number }, count: number) => Promise<void>;

export async function benchCrl(backend: Backend, opts: { entries?: number; runs?: number } = {}): Promise<BenchResult> {
  const n = opts.entries ?? 1_000_000;
  const runs = opts.runs ?? 3;
  const dir = mkdtempSync(join(tmpdir(), "jpki-bench-crl-"));
  try {
    // --- setup (not timed) -------------------------------------------------------------------------------
    const setup0 = process.hrtime.bigint();
    const ws = join(dir, "ws");
    const storeEnv = await backend.newStoreEnv();
    const env = { ...process.env, JPKI_PASSPHRASE: PASSPHRASE, ...storeEnv };
    const jpki = (...args: string[]) => [BIN, "--workspace", ws, ...args];
    run(process.execPath, jpki("ca", "init", "--prefecture", "13", "--purpose", "both", "--store", backend.name), env);

    const ossl = join(dir, "openssl");
    run("mkdir", ["-p", ossl]);
    run("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(ossl, "ca.key"), "-out", join(ossl, "ca.pem"), "-subj", "/C=JP/O=JPKI/OU=JPKI for digital signature/OU=Tokyo-to", "-days", "3650"]);
    writeFileSync(join(ossl, "crlnumber"), "01\n");
    writeFileSync(join(ossl, "index.txt.attr"), "unique_subject = no\n");
    const cnf = join(ossl, "openssl.cnf");
    writeFileSync(
      cnf,
      [
        "[ca]",
        "default_ca = bench",
        "[bench]",
        `database = ${join(ossl, "index.txt")}`,
        `crlnumber = ${join(ossl, "crlnumber")}`,
        `certificate = ${join(ossl, "ca.pem")}`,
        `private_key = ${join(ossl, "ca.key")}`,
        "unique_subject = no",
        "default_md = sha256",
        "default_crl_days = 2",
        "crl_extensions = crl_ext",
        "[crl_ext]", // as ours: AKI (the CRL number comes from the crlnumber file)
        "authorityKeyIdentifier = keyid:always",
        "",
      ].join("\n"),
    );

    // The same revocations on both sides: the store's, through its interface, and index.txt's R lines.
    let t0 = process.hrtime.bigint();
    const w = await Workspace.openAsync(ws, { storeUrl: storeEnv.JPKI_STORE });
    const fd = openSync(join(ossl, "index.txt"), "w");
    let more: More;
    try {
      more = await fill(w.store, n, fd);
    } finally {
      closeSync(fd);
      await w.close();
    }
    // PostgreSQL: the load revoked a million rows by UPDATE seconds ago; autovacuum would VACUUM and ANALYZE them
    // within the minute, on these 2 cores, during the timed runs of both sides. Done now, untimed, as a live store has it.
    if (backend.analyze) {
      t0 = process.hrtime.bigint();
      await backend.analyze(storeEnv, { vacuum: true });
      log(`VACUUM ANALYZE after the load in ${since(t0).toFixed(1)} s`);
    }
    // Between timed runs (not timed): `extra` more revocations, one notice batch, on both sides.
    const extra = Number(process.env.JPKI_BENCH_CRL_NEW ?? 1000);
    let added = 0;
    const revokeMore = async () => {
      const w2 = await Workspace.openAsync(ws, { storeUrl: storeEnv.JPKI_STORE });
      const fd2 = openSync(join(ossl, "index.txt"), "a");
      try {
        await more({ store: w2.store, fd: fd2 }, extra);
        added += extra;
      } finally {
        closeSync(fd2);
        await w2.close();
      }
    };
    log(`${n} revocations written to the store and index.txt (${(statSync(join(ossl, "index.txt")).size / 1048576).toFixed(0)} MB) in ${since(t0).toFixed(1)} s; setup ${since(setup0).toFixed(1)} s`);

    // --- timed, interleaved ------------------------------------------------------------------------------
    // JPKI_BENCH_CRL_PROFILE=DIR: each timed run of ours writes a V8 CPU profile there (open it in Chrome DevTools).
    const prof = process.env.JPKI_BENCH_CRL_PROFILE ? ["--cpu-prof", `--cpu-prof-dir=${process.env.JPKI_BENCH_CRL_PROFILE}`] : [];
    const ours = () => measure(process.execPath, [...prof, ...jpki("crl", "generate", "--ca", CA)], env);
    const openssl = () => measure("openssl", ["ca", "-gencrl", "-config", cnf, "-out", join(ossl, "crl.pem")]);
    // Baseline of the RSS growth: the same launcher and CLI doing nothing (`--version`), so what is left is
    // what generating the CRL costs (the library load included, so the figure errs on the high side).
    const version = await measure(process.execPath, [BIN, "--version"]);
    const empty = await measure(process.execPath, jpki("crl", "generate", "--ca", EMPTY_CA), env);
    const times = { ours: [] as number[], openssl: [] as number[] };
    // The first build: no previous CRL on this host, so every block comes from the store (crl/reuse.ts).
    const firstOurs = await ours();
    const firstSsl = await openssl();
    let oursKb = firstOurs.kb ?? 0;
    let opensslKb = firstSsl.kb ?? 0;
    log(`first build: jpki crl generate ${firstOurs.s.toFixed(2)} s ${mb(firstOurs.kb)}, openssl ca -gencrl ${firstSsl.s.toFixed(2)} s ${mb(firstSsl.kb)}`);
    for (let r = 0; r < runs; r++) {
      if (extra > 0) await revokeMore();
      const a = await ours();
      times.ours.push(a.s);
      oursKb = Math.max(oursKb, a.kb ?? 0);
      const b = await openssl();
      times.openssl.push(b.s);
      opensslKb = Math.max(opensslKb, b.kb ?? 0);
      log(`run ${r + 1}: jpki crl generate ${a.s.toFixed(2)} s ${mb(a.kb)}, openssl ca -gencrl ${b.s.toFixed(2)} s ${mb(b.kb)}`);
    }

    // --- check what we produced --------------------------------------------------------------------------
    const derPath = join(ws, "crl", `${CA}.crl`);
    run("openssl", ["crl", "-inform", "DER", "-noout", "-in", derPath]);
    t0 = process.hrtime.bigint();
    const counted = Number(run("sh", ["-c", `openssl crl -inform DER -noout -text -in '${derPath}' | grep -c 'Serial Number:'`]).trim());
    if (counted !== n + added) throw new Error(`crl bench: openssl lists ${counted} entries in ${derPath}, expected ${n + added}`);
    const sslCounted = Number(run("sh", ["-c", `openssl crl -noout -text -in '${join(ossl, "crl.pem")}' | grep -c 'Serial Number:'`]).trim());
    if (sslCounted !== n + added) throw new Error(`crl bench: openssl's own CRL lists ${sslCounted} entries, expected ${n + added}`);
    log(`checked: openssl parses ours and lists ${counted} entries (openssl's: ${sslCounted}) in ${since(t0).toFixed(1)} s`);

    const o = median(times.ours);
    const s = median(times.openssl);
    const growthKb = oursKb - (version.kb ?? 0);
    const GROWTH_LIMIT_MB = 200;
    return {
      name: `CRL generation, ${n.toLocaleString("en")} revoked (${(statSync(derPath).size / 1048576).toFixed(0)} MB DER): jpki crl generate vs openssl ca -gencrl [${backend.name}]`,
      ours: 1 / o,
      baseline: 1 / s,
      unit: "CRLs/s",
      baselineName: "CRLs/s openssl ca -gencrl (same revocations, index.txt)",
      target: 10,
      goals: [{ label: `RSS growth < ${GROWTH_LIMIT_MB} MB`, ok: growthKb / 1024 < GROWTH_LIMIT_MB }],
      // per entry above the fixed cost of an empty CA: what scale mode compares across sizes
      perUnitUs: (Math.max(0, o - empty.s) * 1e6) / n,
      note: [
        `time: jpki crl generate ${o.toFixed(2)} s vs openssl ca -gencrl ${s.toFixed(2)} s (medians of ${runs} regenerations, each after ${extra.toLocaleString("en")} more revocations in one notice batch; ours writes the DER, fsynced, and no PEM copy as crlPem is off by default; openssl writes PEM)`,
        `first build (no previous CRL on this host to take blocks from): jpki crl generate ${firstOurs.s.toFixed(2)} s vs openssl ca -gencrl ${firstSsl.s.toFixed(2)} s: ${(firstSsl.s / firstOurs.s).toFixed(2)}×`,
        `fixed cost: jpki crl generate of an empty CA ${empty.s.toFixed(2)} s (start-up, key unlock, signing)`,
        `peak RSS: jpki crl generate ${mb(oursKb)}, openssl ca -gencrl ${mb(opensslKb)}; jpki --version ${mb(version.kb)}`,
        `RSS growth: ${mb(growthKb)} over jpki --version (target < ${GROWTH_LIMIT_MB} MB) ${growthKb / 1024 < GROWTH_LIMIT_MB ? "met" : "MISSED"}`,
      ].join("\n"),
    };
  } finally {
    if (process.env.JPKI_BENCH_KEEP) console.error(`kept ${dir}`); else rmSync(dir, { recursive: true, force: true });
  }
}
