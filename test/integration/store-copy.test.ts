/**
 * `jpki store copy` end to end, as real processes (the built CLI, bin/jpki.cjs; the commands that set up and
 * look at the workspaces around the copies run in-process, see {@link ok}): a SQLite workspace with
 * issued, superseded, revoked and notice-revoked certificates, a held notice, a resident-code change and a
 * published CRL is moved to a throwaway PostgreSQL server and back. Each side then publishes CRLs, and openssl
 * and our reader must find the same revoked serials with the same reasons and dates, numbered above the
 * source's. And what an operator must be able to count on: a copy into a used database, or with a password on
 * the command line, is refused; a copy killed midway leaves an empty target and an untouched workspace.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { cpSync, existsSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import Database from "better-sqlite3";
import pg from "pg";
import { beforeAll, describe, expect, it } from "vitest";
import { describeCrl } from "../../src/profile/describe.js";
import { generateResidents } from "../../src/registry/fixtures.js";
import { makeResidentCode } from "../../src/registry/resident-code.js";
import { PostgresStore } from "../../src/store/postgres.js";
import { childOutput } from "../child-output.js";
import { until } from "../until.js";
import { usePostgres } from "../use-postgres.js";
import { cardKeys, cardKey, cli, tempDir, writeJsonl } from "./helpers.js";

const MAIN = join(import.meta.dirname, "..", "..", "bin", "jpki.cjs");
const server = usePostgres();
let dir: string;

beforeAll(() => {
  dir = tempDir("jpki-store-copy-");
});

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
  json<T = any>(): T;
}

function start(ws: string, args: string[], env: Record<string, string> = {}): ChildProcess {
  return spawn(process.execPath, [MAIN, "--workspace", ws, ...args], { cwd: dir, env: { ...process.env, JPKI_STORE: "", JPKI_PASSPHRASE: "correct horse", ...env } });
}

function jpki(ws: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  // its end once its output is read (child-output.ts): the --json result parsed next may come after the exit
  const out = childOutput(start(ws, args, env));
  return out.ended.then(({ code }) => ({ code, stdout: out.stdout(), stderr: out.stderr(), json: () => JSON.parse(out.stdout()) }));
}

/**
 * A command that must succeed, run in-process (the CLI's own code, as the built one runs it): the commands that
 * build the workspaces and read them back are not what this file tests, and each spawned process paid a Node
 * start-up and a PBKDF2 of the CA keys (≈ 1 s, several under load: two dozen of them were about half of this
 * file's time). The copies themselves run as processes: {@link okProcess}, {@link jpki}, {@link start}.
 */
async function ok(ws: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const r = await cli(["--workspace", ws, ...args], { cwd: dir, env: { JPKI_STORE: "", ...env } });
  expect(r.code, `jpki ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r;
}

/** `jpki store copy …` as its own process (the built CLI), which must succeed. */
async function okProcess(ws: string, args: string[], env: Record<string, string> = {}): Promise<Run> {
  const r = await jpki(ws, args, env);
  expect(r.code, `jpki ${args.join(" ")}: ${r.stderr}`).toBe(0);
  return r;
}

/** What openssl reads on a DER CRL: its number and each entry's serial, date and reason. */
function opensslCrl(path: string): { number: string; entries: string[] } {
  const text = execFileSync("openssl", ["crl", "-inform", "DER", "-in", path, "-noout", "-text"], { encoding: "utf8" });
  const number = /X509v3 CRL Number:\s*\n\s*(\d+)/.exec(text)?.[1] ?? "";
  const entries = text
    .split(/Serial Number: /)
    .slice(1)
    .map((e) => {
      const serial = e.split("\n")[0]!.trim().toUpperCase();
      const date = /Revocation Date: (.+)/.exec(e)?.[1]?.trim();
      const reason = /CRL Reason Code:\s*\n\s*(.+)/.exec(e)?.[1]?.trim() ?? "none";
      return `${serial} ${date} ${reason}`;
    })
    .sort();
  return { number, entries };
}

/**
 * What our reader makes of the same file: its entries as a set (sorted), unless `ordered` — the order of the
 * store's revocation log (both backends keep one; a copy rebuilds the source's).
 */
function ourCrl(path: string, ordered = false) {
  const d = describeCrl(readFileSync(path));
  const entries = ordered ? d.entries : [...d.entries].sort((a, b) => (JSON.stringify(a) < JSON.stringify(b) ? -1 : 1));
  return { number: d.crlNumber, entries };
}

const config = (ws: string) => JSON.parse(readFileSync(join(ws, "config.json"), "utf8")) as { store: string };

/** A SQLite workspace with one of everything a copy must carry (see the header). */
async function buildWorkspace(ws: string): Promise<{ revoked: string[]; waitingCode: string }> {
  await ok(ws, ["ca", "init", "-p", "13"]);
  const residents = [...generateResidents({ count: 6, seed: "store-copy", prefectures: ["13"] })] as unknown as Array<Record<string, string>>;
  await ok(ws, ["registry", "import", writeJsonl(join(dir, "residents.jsonl"), residents)]);
  const pub = readFileSync(cardKey(dir, "card").pub, "utf8");
  const key = cardKeys(pub);
  const apps = residents.flatMap((r, i) => ["signature", "authentication"].map((type) => ({ residentCode: r.residentCode, type, publicKey: key(), applicationId: `APP-${i}-${type}` })));
  await ok(ws, ["issue", "--batch", writeJsonl(join(dir, "apps.jsonl"), apps), "--out-dir", join(dir, "certs")]);
  // a second signature certificate for resident 0 supersedes the first (reason superseded)
  await ok(ws, ["issue", "--batch", writeJsonl(join(dir, "apps2.jsonl"), [{ residentCode: residents[0]!.residentCode, type: "signature", publicKey: pub }]), "--out-dir", join(dir, "certs2")]);
  const serialOf = async (code: string, type: string) =>
    ((await ok(ws, ["registry", "show", code, "--json"])).json().certificates as Array<{ serial: string; type: string; status?: string; revocation?: unknown }>).filter(
      (c) => c.type === type,
    );
  const lost = (await serialOf(residents[1]!.residentCode!, "signature"))[0]!.serial;
  await ok(ws, ["revoke", "--serial", lost, "--reason", "keyCompromise"]);
  await ok(ws, ["crl", "generate", "-p", "13"]);
  // after CRL #1: a death (applied, revokes both of resident 2's), a notice for resident 3 waiting for its
  // sequences 1 and 2 (held), and resident 4's code changed (its certificates follow the new code)
  const [dead, waiting, renamed] = [residents[2]!, residents[3]!, residents[4]!];
  const newCode = makeResidentCode("9876543210");
  const feed = writeJsonl(join(dir, "notices.jsonl"), [
    { noticeId: "SC-1", residentCode: dead.residentCode, kind: "death", effectiveDate: "2026-05-01", sequence: 1, municipalityCode: dead.municipalityCode },
    { noticeId: "SC-2", residentCode: waiting.residentCode, kind: "death", effectiveDate: "2026-05-01", sequence: 3, municipalityCode: waiting.municipalityCode },
    { noticeId: "SC-3", residentCode: renamed.residentCode, kind: "resident-code-change", effectiveDate: "2026-05-01", sequence: 1, municipalityCode: renamed.municipalityCode, newResidentCode: newCode },
  ]);
  const ingest = await ok(ws, ["notices", "ingest", feed, "--json"]);
  expect(ingest.json()).toMatchObject({ read: 3, held: 1 });
  // registered verifiers: one with a token (revoked), one with a client certificate from the verifier CA
  const gone = (await ok(ws, ["--json", "verifier", "add", "--name", "行政機関A", "--kind", "government"])).json() as { id: string };
  await ok(ws, ["verifier", "revoke", gone.id]);
  await ok(ws, ["verifier", "add", "--name", "Provider B", "--kind", "private", "--client-cert", "--out", join(dir, `vcert-${Date.now()}`)]);
  const db = new Database(join(ws, "jpki.db"), { readonly: true });
  try {
    const revoked = db.prepare("SELECT serial FROM certified WHERE revoked_at IS NOT NULL ORDER BY serial").pluck().all() as string[];
    return { revoked, waitingCode: waiting.residentCode! };
  } finally {
    db.close();
  }
}

describe("jpki store copy", () => {
  it("moves a SQLite workspace to PostgreSQL and back; both sides then publish the same CRLs, numbered above the source's", async () => {
    const ws = join(dir, "ws");
    const { revoked, waitingCode } = await buildWorkspace(ws);
    expect(revoked.length).toBe(4); // superseded, keyCompromise, and the dead resident's two
    // the source side, kept to compare with: the same workspace, staying on SQLite
    const lite = join(dir, "ws-sqlite");
    cpSync(ws, lite, { recursive: true });
    // the source's latest CRL numbers (ingestion republished the CRLs its revocations touched)
    const numberBefore = Object.fromEntries(["13-sig", "13-auth"].map((id) => [id, Number(opensslCrl(join(ws, "crl", `${id}.crl`)).number)]));
    expect(numberBefore["13-sig"]).toBeGreaterThanOrEqual(1);

    const url = await server.createDatabase();
    const env = { JPKI_STORE: url };
    const copy = await okProcess(ws, ["store", "copy", "--to", "postgres", "--json"], env);
    const report = copy.json();
    expect(report).toMatchObject({ from: { kind: "sqlite" }, to: { kind: "postgres" }, switched: true, counts: { cas: 2, residents: 6, certificates: 13, notices: 3, verifierCa: 1, verifiers: 2 } });
    expect(report.fingerprint.revocations["13-sig"].count + report.fingerprint.revocations["13-auth"].count).toBe(4);
    expect(config(ws).store).toBe("postgres");
    expect(existsSync(join(ws, "jpki.db"))).toBe(false);
    expect(report.previousStore).toMatch(/jpki\.db\.before-postgres-\d{8}T\d{6}Z$/);
    expect(existsSync(report.previousStore)).toBe(true);
    // the old file is a read-only backup: its records are there, a write is refused
    const old = new Database(report.previousStore);
    expect(old.prepare("SELECT count(*) FROM certificates").pluck().get()).toBe(13);
    expect(() => old.prepare("UPDATE certified SET reason = 1").run()).toThrow(/retired/);
    expect(() => old.prepare("DELETE FROM revocation_log").run()).toThrow(/retired/);
    old.close();
    expect(readFileSync(join(ws, "config.json"), "utf8")).not.toContain("postgres:");
    // the verifiers came along: the same registrations, and the same verifier CA signs the next one
    expect((await ok(ws, ["verifier", "list", "--json"], env)).json()).toEqual((await ok(lite, ["verifier", "list", "--json"])).json());
    const caPem = (dirOf: string) => readFileSync(join(dirOf, "verifier-ca.pem"), "utf8");
    await ok(ws, ["verifier", "add", "--name", "after copy", "--kind", "private", "--client-cert", "--out", join(dir, "vc-pg")], env);
    await ok(lite, ["verifier", "add", "--name", "after copy", "--kind", "private", "--client-cert", "--out", join(dir, "vc-lite")]);
    expect(caPem(join(dir, "vc-pg"))).toBe(caPem(join(dir, "vc-lite")));
    // the workspace runs on PostgreSQL now: its held notice is still held there
    const pending = await ok(ws, ["notices", "pending", "--json"], env);
    expect(pending.json().held).toMatchObject([{ noticeId: "SC-2", residentCode: waitingCode, sequence: 3, waitingFor: 1 }]);

    // both sides publish: same revoked serials, dates and reasons, and the next number above the source's
    const numberOnPg: Record<string, number> = {};
    await ok(ws, ["crl", "generate", "-p", "13"], env);
    await ok(lite, ["crl", "generate", "-p", "13"]);
    for (const id of ["13-sig", "13-auth"]) {
      const onPg = opensslCrl(join(ws, "crl", `${id}.crl`));
      const onLite = opensslCrl(join(lite, "crl", `${id}.crl`));
      // one number sequence per CA shared by its scopes (partitions and ARL took numbers too): above the source's
      expect(Number(onPg.number), id).toBeGreaterThan(numberBefore[id]!);
      numberOnPg[id] = Number(onPg.number);
      expect(onPg).toEqual(onLite);
      // in the same order too: PostgreSQL rebuilt the SQLite log's order
      expect(ourCrl(join(ws, "crl", `${id}.crl`), true)).toEqual(ourCrl(join(lite, "crl", `${id}.crl`), true));
    }
    const allSerials = ["13-sig", "13-auth"].flatMap((id) => opensslCrl(join(ws, "crl", `${id}.crl`)).entries.map((e) => e.split(" ")[0]!.replace(/^0+/, "")));
    expect(allSerials.sort()).toEqual(revoked.map((s) => s.toUpperCase().replace(/^0+/, "")).sort());
    expect(opensslCrl(join(ws, "crl", "13-sig.crl")).entries.join("\n")).toMatch(/Key Compromise/);
    expect(opensslCrl(join(ws, "crl", "13-sig.crl")).entries.join("\n")).toMatch(/Superseded/);
    const onPgInOrder = Object.fromEntries(["13-sig", "13-auth"].map((id) => [id, ourCrl(join(ws, "crl", `${id}.crl`), true).entries]));

    // and back to SQLite: the PostgreSQL database keeps its records, read-only; the next CRLs continue
    const back = await okProcess(ws, ["store", "copy", "--to", "sqlite", "--json"], env);
    expect(back.json()).toMatchObject({ from: { kind: "postgres" }, to: { kind: "sqlite", location: join(ws, "jpki.db") }, switched: true });
    // one more CRL row per CA than were copied over: those the PostgreSQL side published
    // (and the audit log's records of what was done on PostgreSQL, with the checkpoint each crl generate signed)
    const backCounts = back.json().counts;
    expect(backCounts).toEqual({ ...report.counts, crls: report.counts.crls + 2, verifiers: report.counts.verifiers + 1, auditLog: backCounts.auditLog, auditCheckpoints: report.counts.auditCheckpoints + 1 });
    expect(backCounts.auditLog).toBeGreaterThan(report.counts.auditLog);
    // the log came through both moves whole: it verifies, checkpoints included
    expect((await ok(ws, ["audit", "verify", "--json"])).json()).toMatchObject({ ok: true, records: backCounts.auditLog, checkpoints: backCounts.auditCheckpoints });
    expect(config(ws).store).toBe("sqlite");
    expect(readdirSync(ws).filter((n) => n.endsWith(".tmp") || n.includes(".tmp-"))).toEqual([]);
    await ok(ws, ["crl", "generate", "-p", "13"]);
    await ok(lite, ["crl", "generate", "-p", "13"]);
    for (const id of ["13-sig", "13-auth"]) {
      const onLiteAgain = opensslCrl(join(ws, "crl", `${id}.crl`));
      expect(onLiteAgain.number, id).toBe(String(numberOnPg[id]! + 1));
      expect(onLiteAgain).toEqual(opensslCrl(join(lite, "crl", `${id}.crl`)));
      // the SQLite copy of a PostgreSQL store lists its entries in the order PostgreSQL did (its log rebuilt so)
      expect(ourCrl(join(ws, "crl", `${id}.crl`), true).entries, id).toEqual(onPgInOrder[id]);
    }
    const pgAfter = await PostgresStore.open(url);
    expect((await pgAfter.latestCrl("13-sig"))?.number).toBe(BigInt(numberOnPg["13-sig"]!));
    await expect(pgAfter.reserveCrl("13-sig", new Date(), new Date())).rejects.toThrow(/retired/);
    await pgAfter.close();
    // Two copies, eight CLI runs and their openssl checks: ≈ 60 s alone on a loaded 2-core machine, so the suite's
    // 60 s default cut it off beside other suites. A hang still fails, at twice that.
  }, 120_000);

  it("refuses a target that is in use, and a password on the command line, changing nothing", async () => {
    const ws = join(dir, "ws-refuse");
    await ok(ws, ["ca", "init", "-p", "27", "--purpose", "signature"]);
    const used = await server.createDatabase();
    const other = join(dir, "ws-other");
    await ok(other, ["ca", "init", "-p", "13", "--purpose", "signature", "--store", "postgres"], { JPKI_STORE: used });
    const r = await jpki(ws, ["store", "copy", "--to", "postgres"], { JPKI_STORE: used });
    expect(r.code).toBe(12);
    expect(r.stderr).toContain("ERR_STORE_NOT_EMPTY");
    expect(config(ws).store).toBe("sqlite");
    expect(existsSync(join(ws, "jpki.db"))).toBe(true);
    expect((await ok(ws, ["ca", "list", "--json"])).json().cas.map((c: { id: string }) => c.id)).toEqual(["27-sig"]);

    const secret = await jpki(ws, ["store", "copy", "--to", "postgresql://jpki:hunter2@localhost/x"]);
    expect(secret.code).toBe(2);
    expect(secret.stderr).toContain("ERR_USAGE");
    expect(secret.stderr).toContain("PGPASSWORD");
    expect(secret.stderr).not.toContain("hunter2");
    const noEnv = await jpki(ws, ["store", "copy", "--to", "postgres"]);
    expect(noEnv.code).toBe(2);
    expect(noEnv.stderr).toContain("JPKI_STORE");
  });

  /**
   * Found by a helper: a move from PostgreSQL switched config.json to the new jpki.db and retired the database
   * after, in the transaction that held its writers off. Killed in between, the workspace ran on jpki.db while the
   * database took writes from every process still on it (other hosts), for good: the rerun refused, the workspace
   * "already runs on jpki.db". Here the retirement is made to wait (another session holds the meta table against
   * writes) and the copy is killed while it waits.
   */
  it("a move to SQLite killed while it retires the database leaves one store taking writes, never two; run again, it finishes", async () => {
    const ws = join(dir, "ws-retiring");
    const url = await server.createDatabase();
    const env = { JPKI_STORE: url };
    await ok(ws, ["ca", "init", "-p", "13", "--purpose", "signature", "--store", "postgres"], env);
    const people = [...generateResidents({ count: 20, seed: "store-copy-retiring", prefectures: ["13"] })];
    await ok(ws, ["registry", "import", writeJsonl(join(dir, "retiring.jsonl"), people.slice(0, 10))], env);
    const retiredNote = async () => {
      const c = new pg.Client({ connectionString: url });
      await c.connect();
      try {
        return (await c.query<{ value: string }>("SELECT value FROM meta WHERE key = 'retired'")).rows[0]?.value;
      } finally {
        await c.end();
      }
    };
    const lock = new pg.Client({ connectionString: url });
    const watch = new pg.Client({ connectionString: url });
    await lock.connect();
    await watch.connect();
    try {
      await lock.query("BEGIN");
      await lock.query("LOCK TABLE meta IN EXCLUSIVE MODE"); // reads go on; the retirement's write to meta waits
      const child = start(ws, ["store", "copy", "--to", "sqlite"], env);
      const exited = new Promise((resolve) => child.on("exit", resolve));
      // a minute by the clock (800 × 25 ms and the queries were ≈ 20 s: a process's start and copy on a loaded host)
      let retiring = false;
      const retirement = async () =>
        (retiring = (await watch.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock' AND query LIKE 'INSERT INTO meta%retired%'",
        )).rows[0]!.n > 0);
      await until(async () => (await retirement()) || child.exitCode !== null, "the copy to reach the retirement", { timeoutMs: 60_000, everyMs: 25 }).catch(() => undefined);
      expect(retiring, "the copy reached the retirement").toBe(true);
      child.kill("SIGKILL");
      await exited;
    } finally {
      await lock.query("ROLLBACK").catch(() => undefined);
      await lock.end();
      await watch.end();
    }
    // never two stores taking writes: the workspace names jpki.db only once the database refuses writes
    const named = config(ws).store;
    const retired = await retiredNote();
    if (named === "sqlite") expect(retired, "config.json names jpki.db while the database still takes writes").toBeDefined();
    // the workspace goes on where config.json says, and writes there
    await ok(ws, ["registry", "import", writeJsonl(join(dir, "retiring-2.jsonl"), people.slice(10, 12))], named === "postgres" ? env : {});
    // run again, the move finishes: the workspace on jpki.db with every record, the database retired
    const again = await okProcess(ws, ["store", "copy", "--to", "sqlite", "--json"], env);
    expect(again.json()).toMatchObject({ switched: true, to: { kind: "sqlite", location: join(ws, "jpki.db") } });
    expect(config(ws).store).toBe("sqlite");
    expect(await retiredNote()).toMatch(/moved to sqlite/);
    const shown = await ok(ws, ["registry", "show", people[11]!.residentCode!, "--json"]);
    expect(shown.json()).toMatchObject({ residentCode: people[11]!.residentCode });
    // the copy the killed move had linked in, older than the store now, is set aside, not deleted
    expect(again.json().setAside).toMatch(/jpki\.db\.unused-\d{8}T\d{6}Z$/);
    expect(existsSync(again.json().setAside)).toBe(true);
    expect(readdirSync(ws).filter((n) => n.includes(".tmp"))).toEqual([]);
  });

  it("a copy killed midway, either way, leaves an empty target and an untouched, usable workspace; the copy then runs again", async () => {
    const ws = join(dir, "ws-kill");
    await ok(ws, ["ca", "init", "-p", "13", "--purpose", "signature"]);
    const many = [...generateResidents({ count: 3000, seed: "store-copy-kill", prefectures: ["13"] })];
    await ok(ws, ["registry", "import", writeJsonl(join(dir, "many.jsonl"), many)]);
    const url = await server.createDatabase();
    const watch = new pg.Client({ connectionString: url });
    await watch.connect();
    try {
      // one record per chunk: slow enough to be caught in the middle of the load
      const child = start(ws, ["store", "copy", "--to", "postgres", "--chunk-size", "1"], { JPKI_STORE: url });
      const exited = new Promise((resolve) => child.on("exit", resolve));
      // a minute by the clock (400 × 25 ms and the queries were ≈ 10 s); it loads a record at a time until then
      let loading = false;
      const load = async () =>
        (loading = (await watch.query<{ n: number }>(
          "SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND state = 'idle in transaction' AND query LIKE 'INSERT INTO residents%'",
        )).rows[0]!.n > 0);
      await until(async () => (await load()) || child.exitCode !== null, "the copy to reach the load", { timeoutMs: 60_000, everyMs: 25 }).catch(() => undefined);
      expect(loading, "the copy reached the load").toBe(true);
      child.kill("SIGKILL");
      await exited;
      // the server rolls the dead connection's transaction back: nothing of the copy is visible
      const s = await PostgresStore.open(url);
      expect(await s.countResidents()).toBe(0);
      expect(await s.listCas()).toEqual([]);
      await s.close();
    } finally {
      await watch.end();
    }
    expect(config(ws).store).toBe("sqlite");
    expect((await ok(ws, ["ca", "list", "--json"])).json().cas.map((c: { id: string }) => c.id)).toEqual(["13-sig"]);
    const again = await okProcess(ws, ["store", "copy", "--to", "postgres", "--json"], { JPKI_STORE: url });
    expect(again.json().counts.residents).toBe(3000);
    expect(config(ws).store).toBe("postgres");

    // back to SQLite, killed while the new file is being written: no jpki.db appears, the workspace stays on
    // PostgreSQL, and the next copy sweeps the leftovers and succeeds
    const child = start(ws, ["store", "copy", "--to", "sqlite", "--chunk-size", "1"], { JPKI_STORE: url });
    const exited = new Promise((resolve) => child.on("exit", resolve));
    const staged = () => readdirSync(ws).filter((n) => /^\.jpki\.db\.\d+~@[0-9a-f]{16}\.[0-9a-f]{12}\.tmp(-wal)?$/.test(n));
    let writing = false;
    const wal = () => (writing = staged().some((n) => n.endsWith("-wal") && statSync(join(ws, n)).size > 64 * 1024));
    // a minute by the clock (400 × 25 ms were 10 s)
    await until(() => wal() || child.exitCode !== null, "the copy to write its new file", { timeoutMs: 60_000, everyMs: 25 }).catch(() => undefined);
    expect(writing, "the copy reached the load").toBe(true);
    child.kill("SIGKILL");
    await exited;
    expect(existsSync(join(ws, "jpki.db"))).toBe(false);
    expect(staged().length).toBeGreaterThan(0);
    expect(config(ws).store).toBe("postgres");
    expect((await ok(ws, ["ca", "list", "--json"], { JPKI_STORE: url })).json().cas.map((c: { id: string }) => c.id)).toEqual(["13-sig"]);
    const back = await okProcess(ws, ["store", "copy", "--to", "sqlite", "--json"], { JPKI_STORE: url });
    expect(back.json().counts.residents).toBe(3000);
    expect(config(ws).store).toBe("sqlite");
    expect(readdirSync(ws).filter((n) => n.includes(".tmp"))).toEqual([]);
  });
});
