/**
 * Notice-ingestion benchmark: change notices (異動等情報の通知) ingested per second end to end — file read,
 * parse, decide against the certified four items, commit with their revocations, and CRL regeneration for
 * every CA that revoked something — for 100,000 notices over 1,000,000 residents holding a signature and an
 * authentication certificate each. Printed next to the raw insert rate of the same backend, measured in the
 * same run: on SQLite with better-sqlite3 directly on the same disk, on PostgreSQL with node-postgres on the
 * same server (bench/backends.ts). Target ratio ≥ 0.1; the absolute goal (≥ 20,000 notices/s) is printed in
 * the note and counted as a target.
 *
 * Scale mode (JPKI_BENCH_SCALE=1, bench/run.ts) runs this at 1,000,000 and 10,000,000 residents with the
 * same 100,000 notices and compares the µs per notice: the setup loads residents and issuance records in
 * resident-code order in chunks of 50,000 residents (100,000 records) and logs its progress every ~10%.
 */
import Database from "better-sqlite3";
import { closeSync, cpSync, mkdtempSync, openSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { caId } from "../src/ca/authority.js";
import { initCas } from "../src/ca/manage.js";
import { prefectureList } from "../src/ca/prefectures.js";
import { runIngest } from "../src/ca/ingestion.js";
import { DEFAULT_NOTICE_BATCH } from "../src/ca/notice-batch.js";
import { CrlUpdater } from "../src/crl/updater.js";
import type { PublishedCrl } from "../src/crl/publisher.js";
import { randomSerial, serialHex } from "../src/pki/serial.js";
import type { CertificateType } from "../src/profile/types.js";
import { generateNotices, generateResidents } from "../src/registry/fixtures.js";
import { parseResidentRecord, type ResidentInput } from "../src/registry/resident.js";
import type { IssuanceRecord, ResidentRecord } from "../src/store/types.js";
import { scratchDatabase, type Backend } from "./backends.js";
import { gc } from "./gc.js";
import type { BenchResult } from "./issue.js";
import { BenchCertificates, noticeDerKind, PLACEHOLDER_DER } from "./notice-der.js";
import { profiled } from "./profile.js";
import { processCpuSeconds, sectionThreads, threadTicks } from "./threads.js";

/** The absolute goal for notice ingestion (notices/s on the reference machine). */
const GOAL_PER_SECOND = 20_000;

/** The main thread's CPU seconds so far (/proc, 10 ms ticks); 0 off Linux. */
const mainCpu = () => (threadTicks()?.get(process.pid) ?? 0) / 100;

/**
 * Counts the time spent regenerating CRLs (mid-run and at the end) inside the timed run, and the CPU spent meanwhile:
 * the main thread's and the whole process's (what overlaps from other threads counted too: after the last batch
 * nothing else runs but the checkpointer and GC helpers).
 */
class TimedCrlUpdater extends CrlUpdater {
  seconds = 0;
  mainCpu = 0;
  processCpu = 0;
  override async regenerate(caIds: readonly string[]): Promise<PublishedCrl[]> {
    const t0 = process.hrtime.bigint();
    const m0 = mainCpu();
    const p0 = processCpuSeconds();
    try {
      return await super.regenerate(caIds);
    } finally {
      this.seconds += Number(process.hrtime.bigint() - t0) / 1e9;
      this.mainCpu += mainCpu() - m0;
      this.processCpu += processCpuSeconds() - p0;
    }
  }
}

const since = (t0: bigint) => Number(process.hrtime.bigint() - t0) / 1e9;
const mb = (bytes: number) => `${(bytes / 1048576).toFixed(0)} MB`;
const log = (s: string) => {
  if (process.env.JPKI_BENCH_QUIET !== "1") console.error(`  [notices] ${s}`);
};

/**
 * PostgreSQL's raw insert rate: the same rows into `t(id text PRIMARY KEY, body text)` of a fresh database on
 * the same server, 1000 per transaction, each thousand in one `INSERT … SELECT FROM unnest($1, $2)` (the
 * cheapest way through node-postgres, as the store itself inserts notices; one statement per row would be
 * round trips, not the server).
 */
async function rawPgInsertsPerSecond(url: string, rows: ReadonlyArray<readonly [string, string]>): Promise<number> {
  const { default: pg } = await import("pg");
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query("CREATE TABLE t (id text COLLATE \"C\" PRIMARY KEY, body text NOT NULL)");
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < rows.length; i += 1000) {
      const chunk = rows.slice(i, i + 1000);
      await c.query("BEGIN");
      await c.query("INSERT INTO t (id, body) SELECT * FROM unnest($1::text[], $2::text[])", [chunk.map((r) => r[0]), chunk.map((r) => r[1])]);
      await c.query("COMMIT");
    }
    return rows.length / since(t0);
  } finally {
    await c.end();
  }
}

/**
 * The store's raw insert rate: a plain `INSERT INTO t(id TEXT PRIMARY KEY, body TEXT)` in transactions of
 * 1000, same directory (same disk), same journal settings as the store (WAL, synchronous = NORMAL), over
 * the same ids and bodies (the notice lines) the timed run ingests.
 */
function rawInsertsPerSecond(path: string, rows: ReadonlyArray<readonly [string, string]>): number {
  const db = new Database(path);
  try {
    db.pragma("journal_mode = WAL");
    db.pragma("synchronous = NORMAL");
    db.exec("CREATE TABLE t (id TEXT PRIMARY KEY, body TEXT)");
    const ins = db.prepare("INSERT INTO t (id, body) VALUES (?, ?)");
    const tx = db.transaction((from: number, to: number) => {
      for (let i = from; i < to; i++) ins.run(rows[i]![0], rows[i]![1]);
    });
    const t0 = process.hrtime.bigint();
    for (let i = 0; i < rows.length; i += 1000) tx(i, Math.min(rows.length, i + 1000));
    return rows.length / since(t0);
  } finally {
    db.close();
  }
}

/** Bytes of the files in `dir` whose names begin with `prefix` (the SQLite store: jpki.db, its -wal and -shm). */
function filesBytes(dir: string, prefix: string): number {
  return readdirSync(dir).filter((f) => f.startsWith(prefix)).reduce((s, f) => s + statSync(join(dir, f)).size, 0);
}

/**
 * What the store takes on disk after the run (closed), and on PostgreSQL how the certificates' updates went: the
 * DER's size shows here (JPKI_BENCH_NOTICE_DER). `n_tup_upd`/`n_tup_hot_upd` count the store's whole life, and only
 * the timed run updates certificates (revocations, resident-code relinks): the setup inserts. They are read once
 * the store's sessions have ended (a backend flushes its counts as it exits; waited for, not slept on).
 */
/** Blocks of `certificates` (heap and indexes) read from outside shared buffers and found in them, as the statistics have them (PostgreSQL). */
interface BlockCounts {
  readonly heapRead: number;
  readonly heapHit: number;
  readonly idxRead: number;
  readonly idxHit: number;
}

const BLOCK_COUNTS = `SELECT heap_blks_read::float8 AS "heapRead", heap_blks_hit::float8 AS "heapHit", idx_blks_read::float8 AS "idxRead",
  idx_blks_hit::float8 AS "idxHit" FROM pg_statio_user_tables WHERE relid = 'certificates'::regclass`;

/** BlockCounts now, through a connection of its own (PostgreSQL; undefined on SQLite). */
async function blockCounts(backend: Backend, env: Record<string, string>): Promise<BlockCounts | undefined> {
  if (backend.name !== "postgres") return undefined;
  const { default: pg } = await import("pg");
  const c = new pg.Client({ connectionString: env.JPKI_STORE });
  await c.connect();
  try {
    return (await c.query<BlockCounts>(BLOCK_COUNTS)).rows[0];
  } finally {
    await c.end();
  }
}

async function storeLine(backend: Backend, env: Record<string, string>, wsRoot: string, revocations: number, notices: number, before?: BlockCounts): Promise<string> {
  if (backend.name === "sqlite") return `store     SQLite ${mb(filesBytes(wsRoot, "jpki.db"))} (jpki.db with its WAL)`;
  const { default: pg } = await import("pg");
  const c = new pg.Client({ connectionString: env.JPKI_STORE });
  await c.connect();
  try {
    // A backend leaves pg_stat_activity just before it flushes its counts: wait for both (each revocation is an update).
    for (let i = 0; i < 600; i++) {
      const w = await c.query(`SELECT (SELECT count(*)::int FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()) AS others,
        (SELECT n_tup_upd::float8 FROM pg_stat_user_tables WHERE relid = 'certificates'::regclass) AS upd`);
      if (w.rows[0].others === 0 && w.rows[0].upd >= revocations) break;
      await new Promise((r) => setTimeout(r, 50));
    }
    const r = (
      await c.query(`SELECT pg_database_size(current_database())::float8 AS db, pg_relation_size('certificates')::float8 AS heap,
        pg_indexes_size('certificates')::float8 AS idx, pg_total_relation_size('certificates')::float8 AS total,
        s.n_tup_upd::float8 AS upd, s.n_tup_hot_upd::float8 AS hot FROM pg_stat_user_tables s WHERE s.relid = 'certificates'::regclass`)
    ).rows[0];
    const toast = r.total - r.heap - r.idx;
    const b = (await c.query<BlockCounts>(BLOCK_COUNTS)).rows[0]!;
    // per notice, counted from before the timed run (what the setup's sessions had not yet reported lands in it: little)
    const per = (k: keyof BlockCounts) => (before ? ((b[k] - before[k]) / notices).toFixed(2) : "-");
    return (
      `store     PostgreSQL database ${mb(r.db)}; certificates heap ${mb(r.heap)}, indexes ${mb(r.idx)}, TOAST ${mb(toast)}; ` +
      `its updates ${r.upd}, HOT ${r.upd ? ((100 * r.hot) / r.upd).toFixed(1) : "-"} %; its blocks a notice: heap ${per("heapRead")} read, ` +
      `${per("heapHit")} hit; indexes ${per("idxRead")} read, ${per("idxHit")} hit (read: from outside shared buffers)`
    );
  } finally {
    await c.end();
  }
}

/**
 * The timed run's CPU per notice by thread (µs): is the second core busy, and with what? The main thread commits and
 * publishes the CRLs; "reader" is the CPU of threads that ended in the run (the notice reader thread); the others are
 * listed largest first (born in the run, or there before it: GC helpers, libuv's pool, the WAL checkpointer).
 */
function threadsLine(t: ReturnType<typeof sectionThreads>, notices: number, secs: number, updater: TimedCrlUpdater): string {
  const us = (s: number) => ((s * 1e6) / notices).toFixed(1);
  const rest = t.others.slice(0, 4).map((o) => `${us(o.seconds)}${o.born ? "*" : ""}`);
  const small = t.others.slice(4).reduce((s, o) => s + o.seconds, 0);
  return (
    `threads   µs CPU a notice: all ${us(t.total)} (${(t.total / secs).toFixed(2)} cores over ${secs.toFixed(2)} s), main ${us(t.main)} ` +
    `(of it CRL rounds ${us(updater.mainCpu)}; process during them ${us(updater.processCpu)}), reader (ended) ${us(t.ended)}, ` +
    `others ${rest.join(" ")}${small ? ` +${us(small)}` : ""} (* born in the run)`
  );
}

export async function benchNotices(backend: Backend, opts: { residents?: number; notices?: number } = {}): Promise<BenchResult> {
  const residentCount = opts.residents ?? 1_000_000;
  const noticeCount = opts.notices ?? 100_000;
  const dir = mkdtempSync(join(tmpdir(), "jpki-bench-notices-"));
  const { ws, env: storeEnv } = await backend.workspace(join(dir, "ws"));
  try {
    const passphrase = "bench";
    const setup0 = process.hrtime.bigint();
    // The benches of both backends share this process: its high-water mark includes the sections before this one.
    const rssAtStart = process.memoryUsage().rss;
    const peakAtStart = process.resourceUsage().maxRSS * 1024;

    // --- setup (not timed) -------------------------------------------------------------------------------
    let t0 = process.hrtime.bigint();
    await initCas(ws, { prefectures: prefectureList("all"), purposes: ["signature", "authentication"], passphrase });
    log(`94 prefecture CAs in ${since(t0).toFixed(1)} s`);

    t0 = process.hrtime.bigint();
    const now = ws.clock.now();
    const residents: ResidentInput[] = [...generateResidents({ count: residentCount, seed: "bench-notices" })];
    log(`${residentCount} residents generated in ${since(t0).toFixed(1)} s`);

    // Residents and their issuance records (発行情報), in chunks. The notice path reads the certified four
    // items and the CA of each certificate, never its DER: a small placeholder stands in for it by default.
    // Issuing 2M real certificates would take many minutes, and issuance is what the issuance bench measures.
    // JPKI_BENCH_NOTICE_DER=real stores certificates of real size and shape instead (bench/notice-der.ts): the
    // DER's size decides how the rows lie on pages (PostgreSQL: HOT revocations; SQLite: the file's size).
    // Loaded like a bulk load: residents in resident-code order and serials increasing with them (random in
    // their low 80 bits), so every index grows at its end instead of at random pages — random-order loading
    // of 2M rows through the store's default page cache took over three minutes. The timed run still looks
    // residents and serials up in the feed's random order.
    t0 = process.hrtime.bigint();
    const derKind = noticeDerKind(process.env.JPKI_BENCH_NOTICE_DER);
    const makers = derKind === "real" ? await BenchCertificates.open(ws.store, ws.config) : undefined;
    let derBytes = 0;
    const notBefore = now;
    const notAfter = new Date(now.getTime() + 5 * 365 * 86_400_000);
    const types: readonly CertificateType[] = ["signature", "authentication"];
    const total = residents.length * types.length;
    const step = total ? 0x7e00_0000_0000 / total : 0; // high 48 bits: 0x0100… to below 0x7f00…, strictly increasing
    let issued = 0;
    const serial = (): string => {
      const high = 0x0100_0000_0000 + Math.floor(issued++ * step);
      return high.toString(16).padStart(12, "0") + serialHex(randomSerial()).slice(12);
    };
    const order = Uint32Array.from(residents.keys()).sort((a, b) => (residents[a]!.residentCode < residents[b]!.residentCode ? -1 : 1));
    const big = residentCount > 2_000_000;
    const RESIDENT_CHUNK = big ? 50_000 : 20_000;
    const ISSUANCE_CHUNK = big ? 20_000 : 10_000; // records per commitIssuances transaction
    const every = Math.max(1, Math.round(order.length / RESIDENT_CHUNK / 10)); // progress every ~10%
    let certificates = 0;
    for (let i = 0; i < order.length; i += RESIDENT_CHUNK) {
      const chunk: ResidentRecord[] = Array.from(order.subarray(i, i + RESIDENT_CHUNK), (k) => parseResidentRecord(residents[k], { now }));
      await ws.store.upsertResidents(chunk);
      for (let j = 0; j < chunk.length; j += ISSUANCE_CHUNK / types.length) {
        const records: IssuanceRecord[] = chunk.slice(j, j + ISSUANCE_CHUNK / types.length).flatMap((r) =>
          types.map((type) => ({
            serial: serial(),
            caId: caId(r.municipalityCode.slice(0, 2), type),
            type,
            residentCode: r.residentCode,
            municipalityCode: r.municipalityCode,
            fourItems: r.fourItems,
            notBefore,
            notAfter,
            issuedAt: now,
            der: PLACEHOLDER_DER,
          })),
        );
        if (makers) for (let k = 0; k < records.length; k++) records[k] = { ...records[k]!, der: await makers.der(records[k]!, now) };
        for (const rec of records) derBytes += rec.der.length;
        await ws.store.commitIssuances(records);
        certificates += records.length;
      }
      if ((i / RESIDENT_CHUNK) % every === every - 1) log(`  ${i + chunk.length} residents, ${certificates} issuance records (${since(t0).toFixed(1)} s)`);
    }
    log(`${residentCount} residents and ${certificates} issuance records stored in ${since(t0).toFixed(1)} s (DER ${derKind}, ${(derBytes / Math.max(1, certificates)).toFixed(0)} octets on average)`);

    // The notice feed, written as JSON Lines; its lines also feed the baseline.
    t0 = process.hrtime.bigint();
    const file = join(dir, "notices.jsonl");
    const rows: Array<readonly [string, string]> = [];
    const fd = openSync(file, "w");
    try {
      let buf: string[] = [];
      for (const n of generateNotices({ residents, count: noticeCount, seed: "bench-notices" })) {
        const line = JSON.stringify(n);
        rows.push([n.noticeId, line]);
        buf.push(line);
        if (buf.length === 1000) {
          writeSync(fd, buf.join("\n") + "\n");
          buf = [];
        }
      }
      if (buf.length) writeSync(fd, buf.join("\n") + "\n");
    } finally {
      closeSync(fd);
    }
    residents.length = 0; // the population is in the store now; let it go before the timed run
    log(`${rows.length} notices written (${mb(statSync(file).size)}) in ${since(t0).toFixed(1)} s`);

    const pgUrl = await scratchDatabase(backend);
    const baseline = pgUrl ? await rawPgInsertsPerSecond(pgUrl, rows) : rawInsertsPerSecond(join(dir, "raw.db"), rows);
    rows.length = 0;
    log(`baseline: ${baseline.toFixed(0)} raw inserts/s`);

    // The CLI opens every CA before ingesting (a wrong passphrase fails before any notice): so do we.
    t0 = process.hrtime.bigint();
    const updater = new TimedCrlUpdater(ws, passphrase);
    await updater.preflight();
    // The planner's statistics of the store just filled, as autovacuum gathers them within a minute of a load.
    await backend.analyze?.(storeEnv);
    const setupSeconds = since(setup0);
    log(`CA keys opened in ${since(t0).toFixed(1)} s; setup ${setupSeconds.toFixed(1)} s in all`);
    // JPKI_BENCH_NOTICES_SAVE=<dir>: a copy of the set-up workspace and its feed, for experiments on the notice path
    // without the minute of setup (`jpki notices ingest <dir>/notices.jsonl` in a copy of <dir>/ws; passphrase "bench").
    const save = process.env.JPKI_BENCH_NOTICES_SAVE;
    if (save && backend.name === "sqlite") {
      await ws.store.syncCommitted();
      cpSync(dir, save, { recursive: true });
      log(`workspace and feed copied to ${save}`);
    }
    // On PostgreSQL the store is a database, which cannot be copied while this process holds connections to it
    // (CREATE DATABASE … TEMPLATE): the run stops after the setup instead, and the database stays with
    // JPKI_BENCH_KEEP on a JPKI_BENCH_PG server (its name is printed). Each experiment then ingests into a copy
    // (`CREATE DATABASE run TEMPLATE <kept>`, JPKI_STORE naming it) from a copy of <dir>/ws.
    if (save && backend.name === "postgres") {
      cpSync(dir, save, { recursive: true });
      writeFileSync(join(save, "store-url"), `${storeEnv.JPKI_STORE}\n`);
      log(`workspace and feed copied to ${save}, store ${storeEnv.JPKI_STORE}: setup only, no timed run`);
      throw new Error(`bench notices: setup saved to ${save} (JPKI_BENCH_NOTICES_SAVE on PostgreSQL runs no timed run)`);
    }

    // The setup's garbage (a million generated residents, two million issuance records: ≈ 0.9 GB of old
    // generation) is collected before the timed run: a `jpki notices ingest` process never had it. Left there it
    // made each young-generation collection of the run take 5–14 ms instead of ≈ 1 (--trace-gc), ≈ 17 µs of the
    // committing thread per notice that a real ingestion does not pay.
    gc();
    const rssBefore = process.memoryUsage().rss;

    // --- timed -------------------------------------------------------------------------------------------
    const blocksBefore = await blockCounts(backend, storeEnv);
    const before = { ticks: threadTicks(), cpu: processCpuSeconds(), server: backend.serverCpu?.() };
    t0 = process.hrtime.bigint();
    const r = await profiled(`notices-${backend.name}`, () =>
      runIngest(ws, {
        source: file,
        format: "jsonl",
        rejectPath: join(dir, "notices.rejects.jsonl"),
        batchSize: Number(process.env.JPKI_BENCH_BATCH ?? DEFAULT_NOTICE_BATCH),
        crlIntervalMs: 30_000,
        updater,
      }),
    );
    const secs = since(t0);
    const after = { ticks: threadTicks(), cpu: processCpuSeconds(), server: backend.serverCpu?.() };

    // --- light correctness check -------------------------------------------------------------------------
    if (r.rejected > 0) throw new Error(`bench notices: ${r.rejected} of ${r.read} notices rejected (see ${r.rejectFile})`);
    if (r.applied + r.held + r.duplicates !== r.read) {
      throw new Error(`bench notices: applied ${r.applied} + held ${r.held} + duplicates ${r.duplicates} ≠ read ${r.read}`);
    }
    if (r.read !== noticeCount) throw new Error(`bench notices: read ${r.read}, expected ${noticeCount}`);
    const dirty = await ws.store.dirtyCas();
    if (dirty.length) throw new Error(`bench notices: CAs still awaiting a CRL after the run: ${dirty.join(", ")}`);

    const ours = r.read / secs;
    const usage = process.memoryUsage();
    await ws.close(); // (again in finally: a no-op) its sessions end, so the store's counts are whole
    const store = await storeLine(backend, storeEnv, join(dir, "ws"), r.revocations, r.read, blocksBefore);
    const reasons = Object.entries(r.revocationsByReason).map(([k, v]) => `${k} ${v}`).join(", ");
    const crlEntries = r.crls.reduce((s, c) => s + c.entries, 0);
    const note = [
      `goal      ${ours.toFixed(0)} notices/s vs ≥ ${GOAL_PER_SECOND} notices/s: ${ours >= GOAL_PER_SECOND ? "met" : "MISSED"}`,
      `run       ${r.read} read, ${r.applied} applied, ${r.held} held, ${r.duplicates} duplicates, ${r.rejected} rejected in ${secs.toFixed(2)} s`,
      `revoked   ${r.revocations}${reasons ? ` (${reasons})` : ""}`,
      `CRLs      ${r.crls.length} regenerated over ${new Set(r.crls.map((c) => c.ca)).size} CAs (${crlEntries} entries in all) in ${updater.seconds.toFixed(2)} s of the ${secs.toFixed(2)} s`,
      ...(before.server && after.server
        ? [`server    µs CPU a notice (PostgreSQL's processes): backends ${(((after.server.backends - before.server.backends) * 1e6) / r.read).toFixed(1)}, background ${(((after.server.background - before.server.background) * 1e6) / r.read).toFixed(1)}`]
        : []),
      ...(before.ticks && after.ticks ? [threadsLine(sectionThreads({ ticks: before.ticks, cpu: before.cpu }, { ticks: after.ticks, cpu: after.cpu }), r.read, secs, updater)] : []),
      `setup     ${setupSeconds.toFixed(1)} s; certificates' DER ${derKind} (${(derBytes / Math.max(1, certificates)).toFixed(0)} octets on average)`,
      store,
      `memory    RSS ${mb(usage.rss)} at the end (${mb(rssBefore)} before the timed run, ${mb(rssAtStart)} before the setup), process peak ${mb(process.resourceUsage().maxRSS * 1024)}${peakAtStart > rssAtStart * 1.5 ? ` (${mb(peakAtStart)} already before this section)` : ""} (heap used ${mb(usage.heapUsed)})`,
    ].join("\n");
    return {
      name: `notice ingestion (${noticeCount} notices over ${residentCount} residents, ${certificates} certificates; revocations and CRLs included) [${backend.name}]`,
      ours,
      baseline,
      unit: "notices/s",
      baselineName: pgUrl
        ? "raw PostgreSQL inserts/s (node-postgres, id text PRIMARY KEY + body, 1000 per transaction in one INSERT … unnest, same server)"
        : "raw SQLite inserts/s (better-sqlite3, id TEXT PRIMARY KEY + body, 1000 per transaction, WAL, same disk)",
      target: 0.1,
      goals: [{ label: `≥ ${GOAL_PER_SECOND} notices/s`, ok: ours >= GOAL_PER_SECOND }],
      perUnitUs: 1e6 / ours,
      note,
    };
  } finally {
    await ws.close();
    rmSync(dir, { recursive: true, force: true });
  }
}
