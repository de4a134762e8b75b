/**
 * Issue 13, point 4: `jpki backup` and `jpki restore`, end to end through the CLI, on the project's store
 * (STORE_SUITES: SQLite, then PostgreSQL with pg_dump/pg_restore).
 *
 * - A backup taken while another process issues certificates restores into a workspace that opens and
 *   publishes a CRL OpenSSL verifies.
 * - A backup with one byte of a CRL changed, a file deleted, or a file added is refused (exit 21,
 *   ERR_BACKUP_CORRUPT naming the file) and nothing is made.
 * - An old backup restored over the workspace after more CRLs were published: the next `crl generate`
 *   publishes a CRL number higher than any published before (`openssl crl -text`), and it verifies; the next
 *   liveness check gets an id above those given out after the backup, so a verifier's cursor still sees it.
 */
import { cardKeyVariant } from "../card-fixtures.js";
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createHmac, pbkdf2Sync, randomBytes } from "node:crypto";
import { appendFileSync, cpSync, existsSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { beforeAll, describe, expect, it } from "vitest";
import { makeResidentCode } from "../../src/registry/resident-code.js";
import { restoreBackup } from "../../src/backup/restore.js";
import { manifestMacInput } from "../../src/backup/authentication.js";
import { strongKeyWrapParams } from "../../src/pki/keys.js";
import { verifyAuditLog } from "../../src/audit/verify.js";
import { thisNamespace } from "../../src/store/pid-namespace.js";
import { PostgresStore, UNVERIFIED_COPY } from "../../src/store/postgres.js";
import { retirementNote } from "../../src/store/retirement.js";
import { SqliteStore } from "../../src/store/sqlite.js";
import { cardKey, cli, copyWorkspace, jpkiProcess, MAIN, onPostgres, openWorkspace, setConfig, sh, startServe, storeEnv, tempDir, tokyoWorkspace, workspaceStore, writeJsonl } from "./helpers.js";

/** The passphrase the helpers' cli() gives every command: backups taken with it are authenticated under it. */
const PASSPHRASE = "correct horse";
let dir: string;
let ws: string;
let cert: string;
let revokedCert: string;
let revokedSerial: string;
let pub: string;
const people = ["0000000960", "0000000961", "0000000962"].map((c, i) => ({
  residentCode: makeResidentCode(c),
  municipalityCode: "131016",
  name: ["山田　太郎", "山田　花子", "山田　一郎"][i],
  address: "東京都千代田区千代田１番１号",
  birthDate: "1980-12-31",
  gender: "male",
  status: "active",
}));

/** The CRL number `openssl crl -text` reads from a DER CRL (an independent parser). */
function opensslCrlNumber(path: string): bigint {
  const r = sh("openssl", ["crl", "-inform", "DER", "-in", path, "-noout", "-text"]);
  expect(r.status, r.out).toBe(0);
  const m = /X509v3 CRL Number:\s*\n\s*(\d+)\s*\n/.exec(r.out);
  expect(m, r.out).not.toBeNull();
  return BigInt(m![1]!);
}

/** Every CRL file (current and history links) under a workspace's crl/ and arl/. */
function crlFiles(root: string): string[] {
  const out: string[] = [];
  const walk = (d: string) => {
    if (!existsSync(d)) return;
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.crl(\.\d+)?$/.test(n)) out.push(p);
    }
  };
  walk(join(root, "crl"));
  walk(join(root, "arl"));
  return out;
}

function highestPublished(root: string): bigint {
  return crlFiles(root).map(opensslCrlNumber).reduce((a, b) => (b > a ? b : a), 0n);
}

async function generate(workspace: string, extra: string[] = []): Promise<void> {
  const which = extra.includes("--ca") ? [] : ["--prefecture", "13"];
  const g = await cli(["-w", workspace, "crl", "generate", ...which, ...extra, "--json"], { cwd: dir });
  expect(g.code, g.stderr).toBe(0);
}

function verifyWithCrl(workspace: string, certPath: string) {
  return sh("openssl", ["verify", "-crl_check", "-CAfile", join(workspace, "ca", "13-sig.pem"), "-CRLfile", join(workspace, "crl", "13-sig.crl"), certPath]);
}

beforeAll(async () => {
  dir = tempDir("jpki-backup-");
  ws = join(dir, "ws");
  await tokyoWorkspace(ws);
  writeJsonl(join(dir, "residents.jsonl"), people);
  const imp = await cli(["-w", ws, "registry", "import", join(dir, "residents.jsonl")], { cwd: dir });
  expect(imp.code, imp.stderr).toBe(0);
  const k = cardKey(dir, "card");
  pub = k.pub;
  cert = join(dir, "good.pem");
  revokedCert = join(dir, "revoked.pem");
  const a = await cli(["-w", ws, "issue", "--resident", people[0]!.residentCode, "--public-key", pub, "-o", cert], { cwd: dir });
  expect(a.code, a.stderr).toBe(0);
  const b = await cli(["-w", ws, "issue", "--resident", people[1]!.residentCode, "--public-key", cardKey(dir, "card-b").pub, "-o", revokedCert, "--json"], { cwd: dir });
  expect(b.code, b.stderr).toBe(0);
  revokedSerial = b.json().serial;
  expect((await cli(["-w", ws, "revoke", "--serial", revokedSerial, "--reason", "loss"], { cwd: dir })).code).toBe(0);
  await generate(ws, ["--partitions", "all"]);
});

describe("jpki backup", () => {
  it("takes an online backup while another process issues certificates; it restores, opens and publishes a CRL openssl verifies", async () => {
    // a second process committing certificates in batches while the backup runs (renewals of the third
    // resident's: the first two residents' certificates stay as they are for the checks below)
    // the card's two keys (one per type), each renewed with its own
    const keys = [cardKeyVariant(readFileSync(pub, "utf8"), 1), cardKeyVariant(readFileSync(pub, "utf8"), 2)];
    const apps = Array.from({ length: 40 }, (_, i) => ({ applicationId: `renewal-${i}`, residentCode: people[2]!.residentCode, type: i % 2 ? "signature" : "authentication", publicKey: keys[i % 2] }));
    writeJsonl(join(dir, "apps.jsonl"), apps);
    const writer = jpkiProcess(ws, ["issue", "--batch", join(dir, "apps.jsonl")]);
    const dest = join(dir, "online");
    const b = await cli(["-w", ws, "backup", dest, "--json"], { cwd: dir });
    expect(b.code, b.stderr).toBe(0);
    const w = await writer;
    expect(w.code, w.stderr).toBe(0);
    const report = b.json();
    expect(report.manifest.format).toBe("jpki-backup/1");
    expect(report.manifest.crlNumbers.length).toBeGreaterThan(0);
    // owner-only, and every file listed with its hash
    expect(statSync(dest).mode & 0o777).toBe(0o700);
    expect(statSync(join(dest, "manifest.json")).mode & 0o777).toBe(0o600);
    const listed = (report.manifest.files as Array<{ path: string }>).map((f) => f.path);
    expect(listed).toContain(report.manifest.store === "sqlite" ? "store/jpki.db" : "store/jpki.pgdump");
    expect(listed).toContain("workspace/crl/13-sig.crl");
    for (const f of report.manifest.files as Array<{ path: string }>) expect(statSync(join(dest, f.path)).mode & 0o777).toBe(0o600);
    // no temporary directory left beside it
    expect(readdirSync(dir).filter((n) => n.includes("partial"))).toEqual([]);

    const copy = join(dir, "from-online");
    const r = await cli(["-w", copy, "restore", dest, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const v = await cli(["-w", copy, "restore", "--verify-only", dest], { cwd: dir });
    expect(v.code, v.stderr).toBe(0);
    await generate(copy);
    const ok = verifyWithCrl(copy, cert);
    expect(ok.status, ok.out).toBe(0);
    const revoked = verifyWithCrl(copy, revokedCert);
    expect(revoked.out).toMatch(/error 23 at 0 depth lookup: certificate revoked/);
    const wsp = await openWorkspace(copy);
    try {
      expect((await wsp.store.getCertificate(revokedSerial))?.revocation?.reason).toBe(1);
    } finally {
      await wsp.close();
    }
  });

  it("refuses a destination inside a tree it copies (crl/), which every later backup would copy again", async () => {
    const b = await cli(["-w", ws, "backup", join(ws, "crl", "bk")], { cwd: dir });
    expect(b.code, b.stderr).toBe(2);
    expect(b.stderr).toContain("ERR_USAGE");
    expect(existsSync(join(ws, "crl", "bk"))).toBe(false);
  });

  it("refuses a destination that exists", async () => {
    const b = await cli(["-w", ws, "backup", join(dir, "online")], { cwd: dir });
    expect(b.code).toBe(2);
    expect(b.stderr).toContain("ERR_BACKUP_EXISTS");
  });
});

/**
 * A backup killed mid-way (kill -9) left its partial directory, a whole copy of the store, beside DEST for ever:
 * named with a bare pid, and removed by nothing. Now it carries its PID namespace, and the next backup into the same
 * directory removes it — never the partial of a backup still running there.
 */
describe("a backup killed mid-way", () => {
  /** `jpki backup DEST` as its own process, and its partial directory once it is copying the published files. */
  async function backupUnderWay(target: string, dest: string) {
    const child = spawn(process.execPath, [MAIN, "--workspace", target, "backup", dest], { env: { ...process.env, JPKI_PASSPHRASE: PASSPHRASE, ...(await storeEnv(target)) }, stdio: "ignore" });
    const exited = new Promise<number | null>((resolve) => child.on("exit", (code, signal) => resolve(code ?? (signal ? -1 : null))));
    const parent = join(dest, "..");
    const prefix = `.${dest.split("/").pop()}.partial-`;
    for (;;) {
      const p = existsSync(parent) ? readdirSync(parent).find((n) => n.startsWith(prefix) && existsSync(join(parent, n, "workspace", "crl"))) : undefined;
      if (p) {
        child.kill("SIGSTOP"); // held mid-copy: alive, its partial in place, for as long as the test needs
        expect(existsSync(dest)).toBe(false);
        return { child, partial: p, exited };
      }
      await new Promise((r) => setTimeout(r, 2));
    }
  }

  it("leaves a partial directory named with its pid and namespace, which the next backup there removes, keeping a running backup's", async () => {
    const target = join(dir, "killed-ws");
    await copyWorkspace(ws, target);
    // a large published file (sparse: no disk until copied) keeps each backup copying long enough to catch it at it
    const big = join(target, "crl", "big.bin");
    writeFileSync(big, "");
    truncateSync(big, 64 << 20);
    const parent = join(dir, "killed");
    mkdirSync(parent);

    // a backup running (stopped mid-copy) while the next one starts: its partial is its work in progress
    const b = await backupUnderWay(target, join(parent, "b"));
    try {
      const a = await backupUnderWay(target, join(parent, "a"));
      expect(a.partial).toBe(`.a.partial-${a.child.pid}~@${thisNamespace()}-${a.partial.slice(-8)}`);
      a.child.kill("SIGKILL");
      expect(await a.exited).toBe(-1);
      expect(existsSync(join(parent, a.partial, "workspace"))).toBe(true);

      const c = await cli(["-w", target, "--json", "backup", join(parent, "c")], { cwd: dir });
      expect(c.code, c.stderr).toBe(0);
      expect(c.json().swept).toEqual([a.partial]);
      expect(existsSync(join(parent, a.partial))).toBe(false);
      expect(existsSync(join(parent, b.partial))).toBe(true);
    } finally {
      b.child.kill("SIGCONT");
    }
    expect(await b.exited).toBe(0);
    expect(readdirSync(parent).sort()).toEqual(["b", "c"]);
    const v = await cli(["-w", target, "restore", "--verify-only", join(parent, "b")], { cwd: dir });
    expect(v.code, v.stderr).toBe(0);
  });
});

describe("jpki restore refuses a backup that fails its manifest", () => {
  let good: string;
  beforeAll(async () => {
    good = join(dir, "tamper-base");
    const b = await cli(["-w", ws, "backup", good], { cwd: dir });
    expect(b.code, b.stderr).toBe(0);
  });

  const cases: Array<[string, (d: string) => void, RegExp, string]> = [
    ["one byte of a CRL changed", (d) => {
      const p = join(d, "workspace", "crl", "13-sig.crl");
      const bytes = readFileSync(p);
      bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x01;
      writeFileSync(p, bytes);
    }, /does not match its SHA-256/, "workspace/crl/13-sig.crl"],
    ["a file deleted", (d) => rmSync(join(d, "workspace", "ca", "13-auth.pem")), /listed in the manifest .* but missing/, "workspace/ca/13-auth.pem"],
    ["a file added", (d) => writeFileSync(join(d, "workspace", "crl", "extra.crl"), "x"), /not in its manifest/, "workspace/crl/extra.crl"],
    ["a manifest changed", (d) => appendFileSync(join(d, "manifest.json"), "}"), /no readable manifest.json/, "manifest.json"],
    // a FIFO blocked the read of the manifest for ever; a symbolic link points outside the backup
    ["a manifest that is a FIFO", (d) => {
      rmSync(join(d, "manifest.json"));
      expect(sh("mkfifo", [join(d, "manifest.json")]).status).toBe(0);
    }, /no readable manifest.json \(not a regular file\)/, "manifest.json"],
    ["a manifest that is a symbolic link", (d) => {
      cpSync(join(d, "manifest.json"), join(d, "..", `${d.split("/").pop()}.manifest`));
      rmSync(join(d, "manifest.json"));
      symlinkSync(join(d, "..", `${d.split("/").pop()}.manifest`), join(d, "manifest.json"));
    }, /no readable manifest.json \(a symbolic link\)/, "manifest.json"],
  ];
  for (const [name, tamper, message, file] of cases) {
    it(`${name}: exit 21, ERR_BACKUP_CORRUPT naming ${file}, nothing made`, async () => {
      const bad = join(dir, `tampered-${name.replace(/\W+/g, "-")}`);
      cpSync(good, bad, { recursive: true });
      tamper(bad);
      const target = join(dir, `target-${name.replace(/\W+/g, "-")}`);
      const r = await cli(["-w", target, "restore", bad, "--json"], { cwd: dir });
      expect(r.code, r.stderr).toBe(21);
      const err = JSON.parse(r.stderr.slice(r.stderr.indexOf("{"))).error; // after the progress lines
      expect(err.code).toBe("ERR_BACKUP_CORRUPT");
      expect(err.message).toMatch(message);
      expect(err.details.file).toBe(file);
      expect(existsSync(target)).toBe(false);
      const v = await cli(["-w", target, "restore", "--verify-only", bad], { cwd: dir });
      expect(v.code).toBe(21);
    });
  }
});

/**
 * The manifest's authentication (backup/authentication.ts): the hashes catch damage, not someone who can write the
 * backup — here, a CRL file changed and its size and SHA-256 put right in manifest.json, which the hashes alone
 * accept. Taken with the CA passphrase (the helpers' cli() sets JPKI_PASSPHRASE), the manifest's HMAC no longer
 * verifies; with the authentication removed, a restore holding the passphrase refuses it too.
 */
describe("a backup's manifest authenticated under the CA passphrase", () => {
  let good: string;
  beforeAll(async () => {
    good = join(dir, "auth-base");
    const b = await cli(["-w", ws, "backup", good, "--json"], { cwd: dir });
    expect(b.code, b.stderr).toBe(0);
    const a = b.json().manifest.authentication;
    // keyed from the KEK of the CA keys the passphrase was checked against: their key-wrap salt and count
    const w = await openWorkspace(ws);
    const keyWrap = strongKeyWrapParams((await w.store.listCas()).find((c) => !c.keyRef)!.encryptedKeyPem)!;
    await w.close();
    expect(a).toMatchObject({ alg: "HMAC-SHA256", kdf: "PBKDF2-HMAC-SHA256+HKDF-SHA256", iterations: 600000, salt: Buffer.from(keyWrap.salt).toString("base64") });
    expect(a.hkdfSalt).not.toBe(a.salt);
    expect(a.mac).toMatch(/^[0-9a-f]{64}$/);
  });

  /** A copy of the good backup with one CRL byte changed and the manifest's size and hash of that file rewritten to match. */
  function forged(name: string, manifestEdit: (m: Record<string, unknown>) => void = () => undefined): string {
    const d = join(dir, name);
    cpSync(good, d, { recursive: true });
    const crl = join(d, "workspace", "crl", "13-sig.crl");
    const bytes = readFileSync(crl);
    bytes[bytes.length - 1] = bytes[bytes.length - 1]! ^ 0x01;
    writeFileSync(crl, bytes);
    const m = JSON.parse(readFileSync(join(d, "manifest.json"), "utf8"));
    const f = m.files.find((x: { path: string }) => x.path === "workspace/crl/13-sig.crl");
    f.sha256 = execFileSync("sha256sum", [crl], { encoding: "utf8" }).split(" ")[0];
    f.size = bytes.length;
    manifestEdit(m);
    writeFileSync(join(d, "manifest.json"), JSON.stringify(m, null, 2) + "\n");
    return d;
  }
  const errorOf = (stderr: string) => JSON.parse(stderr.slice(stderr.indexOf("{"))).error;

  it("verifies and restores with the passphrase; --verify-only says it authenticated", async () => {
    const v = await cli(["-w", join(dir, "auth-verify"), "restore", "--verify-only", good, "--json"], { cwd: dir });
    expect(v.code, v.stderr).toBe(0);
    expect(v.json()).toMatchObject({ verified: true, authenticated: true });
    const r = await cli(["-w", join(dir, "auth-restored"), "restore", good, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().authenticated).toBe(true);
  });

  it("in the earlier form (the HMAC key a PBKDF2 of its own salt, before the KEK served): still verifies and restores, not under another passphrase", async () => {
    const old = join(dir, "auth-earlier-form");
    cpSync(good, old, { recursive: true });
    const m = JSON.parse(readFileSync(join(old, "manifest.json"), "utf8"));
    const salt = randomBytes(16);
    // the lowest count a manifest may name: what is tested is the form, not PBKDF2's cost
    const key = pbkdf2Sync(PASSPHRASE, salt, 2048, 32, "sha256");
    m.authentication = { alg: "HMAC-SHA256", kdf: "PBKDF2-HMAC-SHA256", iterations: 2048, salt: salt.toString("base64"), mac: createHmac("sha256", key).update(manifestMacInput(m)).digest("hex") };
    writeFileSync(join(old, "manifest.json"), JSON.stringify(m, null, 2) + "\n");
    const v = await cli(["-w", join(dir, "auth-earlier-verify"), "restore", "--verify-only", old, "--json"], { cwd: dir });
    expect(v.code, v.stderr).toBe(0);
    expect(v.json()).toMatchObject({ verified: true, authenticated: true });
    const other = await cli(["-w", join(dir, "auth-earlier-other"), "restore", old, "--json"], { cwd: dir, env: { JPKI_PASSPHRASE: "not the one" } });
    expect(other.code, other.stderr).toBe(21);
    expect(errorOf(other.stderr)).toMatchObject({ code: "ERR_BACKUP_CORRUPT", details: { file: "manifest.json" } });
    const r = await cli(["-w", join(dir, "auth-earlier-restored"), "restore", old, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().authenticated).toBe(true);
  });

  it("rewritten with matching hashes: the hashes pass, the authentication does not (exit 21, ERR_BACKUP_CORRUPT naming manifest.json), nothing made", async () => {
    const bad = forged("auth-forged");
    const target = join(dir, "auth-forged-target");
    for (const args of [["restore", bad], ["restore", "--verify-only", bad]]) {
      const r = await cli(["-w", target, ...args, "--json"], { cwd: dir });
      expect(r.code, r.stderr).toBe(21);
      expect(errorOf(r.stderr)).toMatchObject({ code: "ERR_BACKUP_CORRUPT", details: { file: "manifest.json" } });
      expect(errorOf(r.stderr).message).toMatch(/does not authenticate under the passphrase given/);
      expect(existsSync(target)).toBe(false);
    }
    // the hashes alone took it: without the authentication member and without a passphrase it verifies
    const stripped = forged("auth-forged-stripped", (m) => delete m.authentication);
    const v = await cli(["-w", target, "restore", "--verify-only", stripped, "--json"], { cwd: dir, env: { JPKI_PASSPHRASE: undefined } });
    expect(v.code, v.stderr).toBe(0);
    expect(v.json().authenticated).toBe(false);
  });

  it("its authentication removed: refused with the passphrase (exit 21, ERR_BACKUP_UNAUTHENTICATED) unless --accept-unauthenticated", async () => {
    const stripped = join(dir, "auth-stripped");
    cpSync(good, stripped, { recursive: true });
    const m = JSON.parse(readFileSync(join(stripped, "manifest.json"), "utf8"));
    delete m.authentication;
    writeFileSync(join(stripped, "manifest.json"), JSON.stringify(m, null, 2) + "\n");
    const target = join(dir, "auth-stripped-target");
    const r = await cli(["-w", target, "restore", stripped, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(21);
    expect(errorOf(r.stderr)).toMatchObject({ code: "ERR_BACKUP_UNAUTHENTICATED", details: { file: "manifest.json" } });
    expect(existsSync(target)).toBe(false);
    const ok = await cli(["-w", target, "restore", stripped, "--accept-unauthenticated", "--json"], { cwd: dir });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.json().authenticated).toBe(false);
  });

  it("another passphrase: refused at restore (ERR_BACKUP_CORRUPT), and needed at all (ERR_PASSPHRASE_MISSING, exit 5)", async () => {
    const target = join(dir, "auth-other-target");
    const r = await cli(["-w", target, "restore", good, "--json"], { cwd: dir, env: { JPKI_PASSPHRASE: "not the one" } });
    expect(r.code, r.stderr).toBe(21);
    expect(errorOf(r.stderr).code).toBe("ERR_BACKUP_CORRUPT");
    const none = await cli(["-w", target, "restore", good, "--json"], { cwd: dir, env: { JPKI_PASSPHRASE: undefined } });
    expect(none.code, none.stderr).toBe(5);
    expect(errorOf(none.stderr).code).toBe("ERR_PASSPHRASE_MISSING");
    expect(existsSync(target)).toBe(false);
  });

  it("jpki backup with a passphrase that opens no CA key is refused (ERR_PASSPHRASE_WRONG, exit 5), no backup left; without one it is taken unauthenticated and says so", async () => {
    const wrong = join(dir, "auth-wrong-passphrase");
    const b = await cli(["-w", ws, "backup", wrong, "--json"], { cwd: dir, env: { JPKI_PASSPHRASE: "not the one" } });
    expect(b.code, b.stderr).toBe(5);
    expect(errorOf(b.stderr).code).toBe("ERR_PASSPHRASE_WRONG");
    expect(existsSync(wrong)).toBe(false);
    expect(readdirSync(dir).filter((n) => n.includes("auth-wrong-passphrase"))).toEqual([]);
    const plain = join(dir, "auth-none");
    const p = await cli(["-w", ws, "backup", plain], { cwd: dir, env: { JPKI_PASSPHRASE: undefined } });
    expect(p.code, p.stderr).toBe(0);
    expect(p.stdout).toMatch(/manifest not authenticated \(hashes only\)/);
    expect(JSON.parse(readFileSync(join(plain, "manifest.json"), "utf8")).authentication).toBeUndefined();
  });
});

/**
 * The PostgreSQL dump is checked against the manifest, then restored: pg_restore read the file again by its name, so
 * a dump rewritten between the two (someone with write access to the backup's directory) was restored unchecked.
 * The restore now feeds pg_restore the bytes it hashes, and commits only when they are the manifest's.
 */
describe("a PostgreSQL dump rewritten after the backup was verified", () => {
  it.skipIf(!onPostgres)("is rolled back: ERR_BACKUP_CORRUPT, the database as it was", async () => {
    const target = join(dir, "pg-dump-swapped");
    await copyWorkspace(ws, target);
    const url = (await workspaceStore(target))!;
    const src = join(dir, "pg-dump-swapped-b0");
    expect((await cli(["-w", target, "backup", src], { cwd: dir })).code).toBe(0);
    // another valid dump of the same store, taken after a certificate was issued: pg_restore would take it
    const issued = await cli(["-w", target, "issue", "--resident", people[1]!.residentCode, "--public-key", cardKey(dir, "pg-dump-swapped").pub, "--json"], { cwd: dir });
    expect(issued.code, issued.stderr).toBe(0);
    const later = join(dir, "pg-dump-swapped-b1");
    expect((await cli(["-w", target, "backup", later], { cwd: dir })).code).toBe(0);
    const serial: string = issued.json().serial;
    expect((await cli(["-w", target, "revoke", "--serial", serial, "--reason", "loss"], { cwd: dir })).code).toBe(0);
    const dump = join(src, "store", "jpki.pgdump");
    const swap = (p: { phase: string }) => void (p.phase === "store" && cpSync(join(later, "store", "jpki.pgdump"), dump));
    await expect(restoreBackup({ passphrase: PASSPHRASE, source: src, workspaceDir: target, storeUrl: url, force: true, onProgress: swap })).rejects.toMatchObject({
      code: "ERR_BACKUP_CORRUPT",
      message: expect.stringContaining("store/jpki.pgdump changed while it was restored"),
    });
    // nothing of either dump committed: the certificate is still there, still revoked
    const store = await PostgresStore.open(url);
    try {
      // b0 restored: no such certificate; the later dump restored: not revoked
      expect((await store.certificateStatus(serial))?.revocation).toBeDefined();
    } finally {
      await store.close();
    }
  });
});

describe("restoring an old backup never reuses a CRL number", () => {
  it("after more CRLs were published, the next crl generate publishes a higher number than any before, and openssl verifies it", async () => {
    // the Bridge CA numbers its ARL in bridge/state.json, outside the store: it must move too
    const bridge = async () => {
      const b = await cli(["-w", ws, "ca", "bridge"], { cwd: dir });
      expect(b.code, b.stderr).toBe(0);
    };
    await bridge();
    // an authentication certificate issued before the backup and revoked after it, one issued and revoked after it
    // a new authentication key each time (the card reissued: a key revoked as compromised is never certified again)
    const issueAuth = async (name: string) => {
      const authPub = cardKey(dir, `card-auth-${name}`).pub;
      const r = await cli(["-w", ws, "issue", "--resident", people[0]!.residentCode, "--type", "authentication", "--public-key", authPub, "-o", join(dir, name), "--json"], { cwd: dir });
      expect(r.code, r.stderr).toBe(0);
      return r.json().serial as string;
    };
    const lostRevocation = await issueAuth("lost-revocation.pem");
    // A verifier's liveness checks (現況確認): one before the backup, two after it, whose ids the restored store
    // never saw. The verifier holds the id of its last one as its paging cursor.
    const check = (at: number) => ({ verifierId: "v-backup", at: new Date(at), caId: "13-sig", serial: "0b01", certificateId: undefined, status: "good" as const, reason: undefined, revokedAt: undefined, replacedBy: undefined });
    const recordCheck = async (at: number) => {
      const w = await openWorkspace(ws);
      try {
        await w.store.recordStatusChecks([check(at)], []);
        return (await w.store.listStatusChecks({ verifierId: "v-backup", limit: 1000 })).at(-1)!.id;
      } finally {
        await w.close();
      }
    };
    await recordCheck(1);
    const old = join(dir, "old");
    expect((await cli(["-w", ws, "backup", old], { cwd: dir })).code).toBe(0);
    await recordCheck(2);
    const cursor = await recordCheck(3);
    expect((await cli(["-w", ws, "revoke", "--serial", lostRevocation, "--reason", "keyCompromise"], { cwd: dir })).code).toBe(0);
    const afterBackup = await issueAuth("after-backup.pem"); // supersedes lost-revocation (revoked already)
    expect((await cli(["-w", ws, "revoke", "--serial", afterBackup, "--reason", "loss"], { cwd: dir })).code).toBe(0);
    // more CRLs after the backup: full, partitions and ARLs, every scope numbering from the CA's sequence
    for (let i = 0; i < 3; i++) await generate(ws, ["--partitions", "all"]);
    await bridge();
    await bridge();
    const before = highestPublished(ws);
    const bridgeBefore = opensslCrlNumber(join(ws, "arl", "bridge.crl"));
    expect(bridgeBefore).toBeGreaterThanOrEqual(3n);

    // a live workspace is not replaced without --force
    const refused = await cli(["-w", ws, "restore", old], { cwd: dir });
    expect(refused.code, refused.stderr).toBe(3);
    expect(refused.stderr).toContain("ERR_BACKUP_TARGET_LIVE");

    const r = await cli(["-w", ws, "restore", old, "--force", "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const report = r.json();
    const sig = (report.crlNumbers as Array<{ caId: string; highestKnown: string; next: string }>).find((c) => c.caId === "13-sig")!;
    expect(BigInt(sig.highestKnown)).toBe(before); // the live CRL files were counted, not only the backup
    expect(BigInt(sig.next)).toBeGreaterThan(before + 1000n);
    expect(report.previous).toMatch(/before-restore-/);
    expect(existsSync(join(report.previous, "crl", "13-sig.crl"))).toBe(true);
    // the restored CRL files carry the backup's numbers: every scope of every CA is due, to be published anew
    {
      const w = await openWorkspace(ws);
      try {
        expect((await w.store.dirtyCas()).sort()).toEqual((await w.store.listCas()).map((c) => c.id).sort());
        const scopes = await w.store.crlScopeStatus();
        expect(scopes.some((x) => x.scope !== "arl")).toBe(true);
        expect(scopes.filter((x) => !x.dirty).map((x) => `${x.caId}/${x.scope}`)).toEqual([]);
      } finally {
        await w.close();
      }
    }

    await generate(ws, ["--ca", "13-sig"]);
    const after = opensslCrlNumber(join(ws, "crl", "13-sig.crl"));
    expect(after).toBeGreaterThan(before);
    expect(after).toBe(BigInt(sig.next));
    const ok = verifyWithCrl(ws, cert);
    expect(ok.status, ok.out).toBe(0);
    expect(verifyWithCrl(ws, revokedCert).out).toMatch(/error 23 at 0 depth lookup: certificate revoked/);
    expect(report.crlNumbers.find((c: { caId: string }) => c.caId === "bridge")).toMatchObject({ highestKnown: bridgeBefore.toString() });
    // a restore never un-revokes: the revocation made after the backup is made again, the unknown serial reported
    expect(report.reRevoked).toEqual([{ caId: "13-auth", serial: lostRevocation, reason: 1 }]);
    expect(report.revokedUnknown).toEqual([{ caId: "13-auth", serial: afterBackup, carriedOver: true }]);
    // liveness-check ids moved past the two given out after the backup: the verifier's cursor sees the next check
    expect(report.statusCheckIds).toMatchObject({ replaced: cursor + 1 });
    expect(report.statusCheckIds.next).toBeGreaterThan(cursor + 1_000_000);
    const next = await recordCheck(4);
    expect(next).toBe(report.statusCheckIds.next);
    {
      const w = await openWorkspace(ws);
      expect((await w.store.listStatusChecks({ verifierId: "v-backup", after: cursor })).map((c) => c.at.getTime())).toEqual([4]);
      await w.close();
    }
    await generate(ws, ["--ca", "13-auth"]);
    const auth = sh("openssl", ["verify", "-crl_check", "-CAfile", join(ws, "ca", "13-auth.pem"), "-CRLfile", join(ws, "crl", "13-auth.crl"), join(dir, "lost-revocation.pem")]);
    expect(auth.out).toMatch(/error 23 at 0 depth lookup: certificate revoked/);
    // the Bridge's ARL put back carries the backup's number: it is due, and the next publication round renews it
    await generate(ws, ["--partitions", "due"]);
    expect(opensslCrlNumber(join(ws, "arl", "bridge.crl"))).toBeGreaterThan(bridgeBefore + 1000n);
    await bridge();
    expect(opensslCrlNumber(join(ws, "arl", "bridge.crl"))).toBeGreaterThan(bridgeBefore + 1000n);

    // restored where no CRL file survived (a new disk): the time gap alone still moves past every number
    const fresh = join(dir, "fresh");
    const f = await cli(["-w", fresh, "restore", old, "--json"], { cwd: dir });
    expect(f.code, f.stderr).toBe(0);
    // and the liveness-check ids by the time gap alone (no store was there to read)
    expect(f.json().statusCheckIds.replaced).toBeUndefined();
    expect(f.json().statusCheckIds.next).toBeGreaterThan(cursor + 1_000_000);
    await generate(fresh, ["--ca", "13-sig", "--partitions", "all"]);
    // every scope of 13-sig (full, partition, ARL) numbers from the moved sequence
    const current = ["crl/13-sig.crl", "crl/13-sig/131016.crl", "arl/13-sig.crl"].map((p) => opensslCrlNumber(join(fresh, p)));
    for (const n of current) expect(n).toBeGreaterThan(before);
    expect(verifyWithCrl(fresh, cert).status).toBe(0);
  });
});

describe("a CA id whose CRLs were published after the backup", () => {
  it("is retired by the restore, and the next rollover makes the generation after it: no second CRL #1 under the same issuer and URL", async () => {
    // The audit's repro: backup, rollover, 13-sig-g2 publishes CRL #1, restore; the next rollover made 13-sig-g2
    // again (a second key) and 'crl generate --ca 13-sig-g2' published another, different CRL #1.
    const w2 = join(dir, "rid");
    expect((await cli(["-w", w2, "ca", "init", "--prefecture", "13"], { cwd: dir })).code).toBe(0);
    const b = join(dir, "rid-backup");
    expect((await cli(["-w", w2, "backup", b], { cwd: dir })).code).toBe(0);
    const r1 = await cli(["-w", w2, "ca", "rollover", "--prefecture", "13"], { cwd: dir });
    expect(r1.code, r1.stderr).toBe(0);
    await generate(w2);
    const g2Crl = readFileSync(join(w2, "crl", "13-sig-g2.crl"));
    expect(opensslCrlNumber(join(w2, "crl", "13-sig-g2.crl"))).toBe(1n);

    const text = await cli(["-w", w2, "restore", b, "--force"], { cwd: dir });
    expect(text.code, text.stderr).toBe(0);
    // the operator is told what will happen, not asked to remember an id
    expect(text.stdout).toContain("retired 13-sig-g2: its CRLs were published, but the backup has no CA 13-sig-g2; no CA is made under that id again: the next 'jpki ca rollover' of its prefecture and purpose makes 13-sig-g3");
    expect(text.stdout).not.toContain("never create a CA with that id again");
    {
      const w = await openWorkspace(w2);
      try {
        expect((await w.store.listRetiredCaIds()).map((x) => x.id)).toEqual(["13-auth-g2", "13-sig-g2"]);
        expect((await w.store.listCas()).map((c) => c.id).sort()).toEqual(["13-auth", "13-sig"]);
      } finally {
        await w.close();
      }
    }

    const r2 = await cli(["-w", w2, "ca", "rollover", "--prefecture", "13", "--purpose", "sig", "--json"], { cwd: dir });
    expect(r2.code, r2.stderr).toBe(0);
    const rolled = r2.json().rolled[0];
    expect(rolled.current.id).toBe("13-sig-g3");
    expect(rolled.generation).toBe(3);
    expect(rolled.passedOver.map((p: { id: string }) => p.id)).toEqual(["13-sig-g2"]);
    // 13-sig-g2 is no CA of this store: nothing publishes under its name again
    const g = await cli(["-w", w2, "crl", "generate", "--ca", "13-sig-g2"], { cwd: dir });
    expect(g.code).not.toBe(0);
    expect(g.stderr).toContain("ERR_CA_UNKNOWN");
    // the CRL 13-sig-g2 published before the restore is the only #1 under its URL (kept in before-restore-<time>/)
    expect(existsSync(join(w2, "crl", "13-sig-g2.crl"))).toBe(false);
    await generate(w2, ["--ca", "13-sig-g3"]);
    expect(opensslCrlNumber(join(w2, "crl", "13-sig-g3.crl"))).toBe(1n);
    expect(readFileSync(join(w2, "crl", "13-sig-g3.crl")).equals(g2Crl)).toBe(false);
    // the store itself refuses the id, whoever asks
    {
      const w = await openWorkspace(w2);
      try {
        const g1 = (await w.store.getCa("13-sig"))!;
        await expect(w.store.putCa({ ...g1, id: "13-sig-g2" })).rejects.toMatchObject({ code: "ERR_CA_RETIRED" });
      } finally {
        await w.close();
      }
    }
    // The same backup restored again: 13-sig-g2's CRL file is no longer in crl/ (the first restore moved it aside),
    // but the store being replaced had retired it, and had 13-sig-g3: both stay retired, the next rollover makes g4.
    const again = await cli(["-w", w2, "restore", b, "--force", "--json"], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
    expect(again.json().retiredCaIds).toEqual([
      { id: "13-auth-g2", why: "retired", next: "13-auth-g3", by: "rollover" },
      { id: "13-sig-g2", why: "retired", next: "13-sig-g4", by: "rollover" },
      { id: "13-sig-g3", why: "crls", next: "13-sig-g4", by: "rollover" },
    ]);
    const r3 = await cli(["-w", w2, "ca", "rollover", "--prefecture", "13", "--json"], { cwd: dir });
    expect(r3.code, r3.stderr).toBe(0);
    expect(r3.json().rolled.map((r: { current: { id: string } }) => r.current.id)).toEqual(["13-sig-g4", "13-auth-g3"]);
  });
});

describe("a revocation of a certificate issued after the backup", () => {
  // Found by an audit: the restored store had no row of the certificate, the restore only reported it
  // (revokedUnknown), and the next CRL no longer listed a key compromise verifiers had already seen.
  it("is carried over: the next full CRL still lists it, with its date and reason (openssl crl -text), and the store still does not know the certificate", async () => {
    const base = join(dir, "carry-base");
    await copyWorkspace(ws, base);
    const b = join(dir, "carry-backup");
    expect((await cli(["-w", base, "backup", b], { cwd: dir })).code).toBe(0);
    const issued = await cli(["-w", base, "issue", "--resident", people[0]!.residentCode, "--public-key", cardKey(dir, "carry-new").pub, "-o", join(dir, "carry-new.pem"), "--json"], { cwd: dir });
    expect(issued.code, issued.stderr).toBe(0);
    const serial = issued.json().serial as string;
    const rv = await cli(["-w", base, "revoke", "--serial", serial, "--reason", "key-compromise"], { cwd: dir });
    expect(rv.code, rv.stderr).toBe(0);
    await generate(base, ["--ca", "13-sig", "--partitions"]);
    const entryOf = (path: string) => {
      const t = sh("openssl", ["crl", "-inform", "DER", "-in", path, "-noout", "-text"]);
      expect(t.status, t.out).toBe(0);
      const m = new RegExp(`Serial Number: ${serial}\\s*\\n\\s*Revocation Date: ([^\\n]+)\\n\\s*CRL entry extensions:\\s*\\n\\s*X509v3 CRL Reason Code:\\s*\\n\\s*([^\\n]+)`, "i").exec(t.out);
      return m ? { date: m[1]!.trim(), reason: m[2]!.trim() } : undefined;
    };
    const published = entryOf(join(base, "crl", "13-sig.crl"));
    expect(published).toEqual({ date: expect.any(String), reason: "Key Compromise" });
    // its municipality's partition CRL lists it too: the one the certificate's distribution point names
    const partitions = () => readdirSync(join(base, "crl", "13-sig")).filter((f) => /^\d{6}\.crl$/.test(f));
    const partition = partitions().find((f) => entryOf(join(base, "crl", "13-sig", f)) !== undefined);
    expect(partition).toBeDefined();

    const r = await cli(["-w", base, "restore", b, "--force", "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json().revokedUnknown).toEqual([{ caId: "13-sig", serial, carriedOver: true }]);
    await generate(base, ["--ca", "13-sig", "--partitions"]);
    // a CRL numbered past the restore's gap, which lists the entry as the one verifiers saw
    expect(opensslCrlNumber(join(base, "crl", "13-sig.crl"))).toBe(BigInt(r.json().crlNumbers.find((c: { caId: string }) => c.caId === "13-sig").next));
    expect(entryOf(join(base, "crl", "13-sig.crl"))).toEqual(published);
    // and so does that partition's, republished above the gap too (it was, before: only the full CRL listed it)
    expect(entryOf(join(base, "crl", "13-sig", partition!))).toEqual(published);
    expect(opensslCrlNumber(join(base, "crl", "13-sig", partition!))).toBeGreaterThan(BigInt(r.json().crlNumbers.find((c: { caId: string }) => c.caId === "13-sig").highestKnown));
    expect(partitions().filter((f) => f !== partition && entryOf(join(base, "crl", "13-sig", f)) !== undefined)).toEqual([]);
    const v = verifyWithCrl(base, join(dir, "carry-new.pem"));
    expect(v.out).toMatch(/error 23 at 0 depth lookup: certificate revoked/);
    // and again after the next revocation of the CA: the entry stays in its log
    const later = await cli(["-w", base, "issue", "--resident", people[2]!.residentCode, "--public-key", cardKey(dir, "carry-later").pub, "-o", join(dir, "carry-later.pem"), "--json"], { cwd: dir });
    expect(later.code, later.stderr).toBe(0);
    const rv2 = await cli(["-w", base, "revoke", "--serial", later.json().serial, "--reason", "loss"], { cwd: dir });
    expect(rv2.code, rv2.stderr).toBe(0);
    await generate(base, ["--ca", "13-sig", "--partitions"]);
    expect(entryOf(join(base, "crl", "13-sig.crl"))).toEqual(published);
    const w = await openWorkspace(base);
    try {
      expect(await w.store.getCertificate(serial)).toBeUndefined();
    } finally {
      await w.close();
    }
    // OCSP answers it revoked, with the date the CRL gave (it said "unknown": the store has no row of it)
    const added = await cli(["-w", base, "--json", "verifier", "add", "--name", "after the restore", "--kind", "government"], { cwd: dir });
    expect(added.code, added.stderr).toBe(0);
    const serve = await startServe(base, ["--access-log", "off"]);
    try {
      expect(serve.stderr()).toMatch(/listening/);
      const caPem = join(base, "ca", "13-sig.pem");
      const o = sh("openssl", ["ocsp", "-issuer", caPem, "-cert", join(dir, "carry-new.pem"), "-url", `${serve.url}/ocsp/13-sig`, "-header", `Authorization=Bearer ${added.json().token}`, "-CAfile", caPem, "-resp_text"]);
      expect(o.status, o.out).toBe(0);
      expect(o.out).toMatch(/carry-new\.pem: revoked/);
      expect(o.out).toMatch(/Reason: keyCompromise/);
    } finally {
      serve.child.kill("SIGTERM");
      await serve.exited;
    }
    // and the restored workspace can still be moved: a copy refused the carried entry (ERR_STORE_COPY_MISMATCH,
    // "not a certificate of that CA it revoked"), so no such workspace could go to PostgreSQL
    const copied = join(dir, "carry-new-copy.db");
    const c = await cli(["-w", base, "--json", "store", "copy", "--to", `sqlite:${copied}`], { cwd: dir });
    expect(c.code, c.stderr).toBe(0);
    const t = SqliteStore.open(copied);
    try {
      expect([...(await t.carriedRevocations([serial])).values()]).toMatchObject([{ caId: "13-sig", reason: 1 }]);
    } finally {
      await t.close();
    }
  });
  // Found in review: a backup taken after a restore (its store has the carried entry, its crl/ still the files of
  // the backup restored, which do not list it) and restored once the CRLs were generated again carried the entry a
  // second time: the full and partition CRLs listed the serial twice, which RFC 5280 readers (this toolkit's
  // crl-index among them) refuse as malformed.
  it("is carried once only: a backup taken after the restore, restored after the CRLs listed the entry, does not list it twice", async () => {
    const base = join(dir, "carry-twice");
    await copyWorkspace(ws, base);
    const b0 = join(dir, "carry-twice-b0");
    expect((await cli(["-w", base, "backup", b0], { cwd: dir })).code).toBe(0);
    const issued = await cli(["-w", base, "issue", "--resident", people[1]!.residentCode, "--public-key", cardKey(dir, "carry-twice").pub, "-o", join(dir, "carry-twice.pem"), "--json"], { cwd: dir });
    expect(issued.code, issued.stderr).toBe(0);
    const serial = issued.json().serial as string;
    expect((await cli(["-w", base, "revoke", "--serial", serial, "--reason", "key-compromise"], { cwd: dir })).code).toBe(0);
    await generate(base, ["--ca", "13-sig", "--partitions"]);
    const r1 = await cli(["-w", base, "restore", b0, "--force", "--json"], { cwd: dir });
    expect(r1.code, r1.stderr).toBe(0);
    expect(r1.json().revokedUnknown).toEqual([{ caId: "13-sig", serial, carriedOver: true }]);
    const b1 = join(dir, "carry-twice-b1");
    expect((await cli(["-w", base, "backup", b1], { cwd: dir })).code).toBe(0);
    await generate(base, ["--ca", "13-sig", "--partitions"]);
    const r2 = await cli(["-w", base, "restore", b1, "--force", "--json"], { cwd: dir });
    expect(r2.code, r2.stderr).toBe(0);
    await generate(base, ["--ca", "13-sig", "--partitions"]);
    const times = (path: string) => {
      const t = sh("openssl", ["crl", "-inform", "DER", "-in", path, "-noout", "-text"]);
      expect(t.status, t.out).toBe(0);
      return t.out.split(new RegExp(`Serial Number: ${serial}\\s`, "i")).length - 1;
    };
    expect(times(join(base, "crl", "13-sig.crl"))).toBe(1);
    const partitions = readdirSync(join(base, "crl", "13-sig")).filter((f) => /^\d{6}\.crl$/.test(f));
    expect(partitions.map((f) => times(join(base, "crl", "13-sig", f))).reduce((a, n) => a + n, 0)).toBe(1);
    expect(verifyWithCrl(base, join(dir, "carry-twice.pem")).out).toMatch(/error 23 at 0 depth lookup: certificate revoked/);
  });
  // Found in review: the first restore moved the CRLs that listed the entry to before-restore-<time>/ and put the
  // backup's in crl/; run again before any CRL was generated, the restore read only crl/ (and the directories of
  // interrupted restores), found the entry nowhere, and replaced the store that carried it: the revocation was gone.
  it("stays carried when the restore is run again before a CRL was generated", async () => {
    const base = join(dir, "carry-again");
    await copyWorkspace(ws, base);
    const b0 = join(dir, "carry-again-b0");
    expect((await cli(["-w", base, "backup", b0], { cwd: dir })).code).toBe(0);
    const issued = await cli(["-w", base, "issue", "--resident", people[1]!.residentCode, "--public-key", cardKey(dir, "carry-again").pub, "-o", join(dir, "carry-again.pem"), "--json"], { cwd: dir });
    expect(issued.code, issued.stderr).toBe(0);
    const serial = issued.json().serial as string;
    expect((await cli(["-w", base, "revoke", "--serial", serial, "--reason", "key-compromise"], { cwd: dir })).code).toBe(0);
    await generate(base, ["--ca", "13-sig", "--partitions"]);
    for (const run of [1, 2]) {
      const r = await cli(["-w", base, "restore", b0, "--force", "--json"], { cwd: dir });
      expect(r.code, r.stderr).toBe(0);
      expect(r.json().revokedUnknown, `run ${run}`).toEqual([{ caId: "13-sig", serial, carriedOver: true }]);
    }
    await generate(base, ["--ca", "13-sig", "--partitions"]);
    expect(verifyWithCrl(base, join(dir, "carry-again.pem")).out).toMatch(/error 23 at 0 depth lookup: certificate revoked/);
  });
  // Found by a helper (kill/restore drills): revoked and published with `crl generate` alone (no --partitions), the
  // entry named no partition; carried over without one, no partition CRL listed it again, and `openssl verify
  // -crl_check` with the CRL the certificate's distribution point names said OK. The replaced store knows where.
  it("stays on the partition CRL its certificate names when only the full CRL listed it (and when the restore is run again)", async () => {
    const base = join(dir, "carry-full-only");
    await copyWorkspace(ws, base);
    const b0 = join(dir, "carry-full-only-b0");
    expect((await cli(["-w", base, "backup", b0], { cwd: dir })).code).toBe(0);
    const certPath = join(dir, "carry-full-only.pem");
    const issued = await cli(["-w", base, "issue", "--resident", people[1]!.residentCode, "--public-key", cardKey(dir, "carry-partition").pub, "-o", certPath, "--json"], { cwd: dir });
    expect(issued.code, issued.stderr).toBe(0);
    const serial = issued.json().serial as string;
    expect((await cli(["-w", base, "revoke", "--serial", serial, "--reason", "key-compromise"], { cwd: dir })).code).toBe(0);
    await generate(base, ["--ca", "13-sig"]);
    const dp = /URI:\S+\/crl\/13-sig\/(\d{6})\.crl/.exec(sh("openssl", ["x509", "-in", certPath, "-noout", "-ext", "crlDistributionPoints"]).out);
    expect(dp).not.toBeNull();
    const partition = join(base, "crl", "13-sig", `${dp![1]}.crl`);
    const verifyOnPartition = () => sh("openssl", ["verify", "-crl_check", "-CAfile", join(base, "ca", "13-sig.pem"), "-CRLfile", partition, certPath]).out;
    for (const run of [1, 2]) {
      const r = await cli(["-w", base, "restore", b0, "--force", "--json"], { cwd: dir });
      expect(r.code, r.stderr).toBe(0);
      expect(r.json().revokedUnknown, `run ${run}`).toEqual([{ caId: "13-sig", serial, carriedOver: true }]);
      await generate(base, ["--ca", "13-sig", "--partitions", "all"]);
      expect(verifyOnPartition(), `run ${run}`).toMatch(/error 23 at 0 depth lookup: certificate revoked/);
    }
  });
  // And on PostgreSQL when the first run was stopped after pg_restore committed: the run again finds the backup's
  // tables, without the certificate; the partition is in the restore's mark (found by the same drills).
  it.skipIf(!onPostgres)("stays on its partition CRL when a PostgreSQL restore stopped after pg_restore is run again", async () => {
    const base = join(dir, "carry-full-only-pg");
    await copyWorkspace(ws, base);
    const url = (await workspaceStore(base))!;
    const b0 = join(dir, "carry-full-only-pg-b0");
    expect((await cli(["-w", base, "backup", b0], { cwd: dir })).code).toBe(0);
    const certPath = join(dir, "carry-full-only-pg.pem");
    const issued = await cli(["-w", base, "issue", "--resident", people[1]!.residentCode, "--public-key", cardKey(dir, "carry-partition-again").pub, "-o", certPath, "--json"], { cwd: dir });
    expect(issued.code, issued.stderr).toBe(0);
    expect((await cli(["-w", base, "revoke", "--serial", issued.json().serial, "--reason", "key-compromise"], { cwd: dir })).code).toBe(0);
    await generate(base, ["--ca", "13-sig"]);
    const crash = new Error("killed between pg_restore and the renumbering");
    const stop = (p: { phase: string }) => {
      if (p.phase === "numbers") throw crash;
    };
    await expect(restoreBackup({ passphrase: PASSPHRASE, source: b0, workspaceDir: base, storeUrl: url, force: true, onProgress: stop })).rejects.toBe(crash);
    // stopped twice: the second run's mark must carry what the first one read
    await expect(restoreBackup({ passphrase: PASSPHRASE, source: b0, workspaceDir: base, storeUrl: url, force: true, onProgress: stop })).rejects.toBe(crash);
    await restoreBackup({ passphrase: PASSPHRASE, source: b0, workspaceDir: base, storeUrl: url, force: true });
    await generate(base, ["--ca", "13-sig", "--partitions", "all"]);
    const dp = /URI:\S+\/crl\/13-sig\/(\d{6})\.crl/.exec(sh("openssl", ["x509", "-in", certPath, "-noout", "-ext", "crlDistributionPoints"]).out);
    const partition = join(base, "crl", "13-sig", `${dp![1]}.crl`);
    expect(sh("openssl", ["verify", "-crl_check", "-CAfile", join(base, "ca", "13-sig.pem"), "-CRLfile", partition, certPath]).out).toMatch(/error 23 at 0 depth lookup: certificate revoked/);
  });
});

/**
 * A restore that dies while it swaps the workspace's files (kill -9, a power cut) leaves some of the target's
 * files in before-restore-<time>/ and some of the backup's in their place. The operator runs the restore again;
 * that second run must still know what the target had published — its revocations (a restore never un-revokes)
 * and its CRL numbers — though those files are no longer where a workspace keeps them.
 */
describe("a restore interrupted while it swaps the files", () => {
  it.skipIf(onPostgres)("a second restore in the same second keeps both previous workspaces' files", async () => {
    const target = join(dir, "same-second");
    await copyWorkspace(ws, target);
    const src = join(dir, "same-second-backup");
    expect((await cli(["-w", ws, "backup", src], { cwd: dir })).code).toBe(0);
    const at = new Date();
    const clock = { now: () => at };
    const first = await restoreBackup({ passphrase: PASSPHRASE, source: src, workspaceDir: target, force: true, clock });
    const second = await restoreBackup({ passphrase: PASSPHRASE, source: src, workspaceDir: target, force: true, clock });
    expect(second.previous).not.toBe(first.previous);
    for (const p of [first.previous!, second.previous!]) expect(existsSync(join(p, "crl", "13-sig.crl"))).toBe(true);
    const w = await openWorkspace(target);
    try {
      expect((await w.store.listCas()).length).toBeGreaterThan(0);
    } finally {
      await w.close();
    }
  });

  it.skipIf(onPostgres)("killed after any step of the swap, the restore run again re-revokes what the target published and moves past its CRL numbers", async () => {
    const base = join(dir, "swap-base");
    await copyWorkspace(ws, base);
    const r = await cli(["-w", base, "issue", "--resident", people[0]!.residentCode, "--type", "authentication", "--public-key", cardKey(dir, "swap").pub, "-o", join(dir, "swap.pem"), "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const serial = r.json().serial as string;
    const src = join(dir, "swap-backup");
    expect((await cli(["-w", base, "backup", src], { cwd: dir })).code).toBe(0);
    expect((await cli(["-w", base, "revoke", "--serial", serial, "--reason", "keyCompromise"], { cwd: dir })).code).toBe(0);
    await generate(base, ["--ca", "13-auth"]);
    const published = opensslCrlNumber(join(base, "crl", "13-auth.crl"));

    let completed = false;
    for (let step = 0; !completed; step++) {
      expect(step).toBeLessThan(40);
      const target = join(dir, `swap-${step}`);
      await copyWorkspace(base, target);
      let moves = 0;
      const crash = new Error("killed");
      try {
        await restoreBackup({ passphrase: PASSPHRASE,
          source: src,
          workspaceDir: target,
          force: true,
          onProgress: (p) => {
            if (p.phase === "swap" && moves++ === step) throw crash;
          },
        });
        completed = true; // every step of the swap was passed: nothing was interrupted
      } catch (e) {
        expect(e).toBe(crash);
      }
      if (completed) break;
      // kill -9 runs no finally: the staging directory of the dead process stays, and the run again removes it
      const stale = join(target, `.restore-${spawnSync("true").pid}~@${thisNamespace()}-0badf00d`);
      mkdirSync(stale);
      // Run again without --force: where the killed run left a config or store in place it is refused as any
      // workspace would be, saying that --force finishes the interrupted restore; where it left neither, it finishes.
      const leftInPlace = existsSync(join(target, "config.json")) || existsSync(join(target, "jpki.db"));
      const unforced = await restoreBackup({ passphrase: PASSPHRASE, source: src, workspaceDir: target }).then(
        (r) => ({ r }),
        (e: unknown) => ({ e }),
      );
      expect("e" in unforced, `step ${step}`).toBe(leftInPlace);
      if ("e" in unforced) {
        expect(unforced.e, `step ${step}`).toMatchObject({ code: "ERR_BACKUP_TARGET_LIVE", message: expect.stringMatching(/interrupted while it moved the files: before-restore-[^ ]+ holds what it moved aside; running the restore again with --force finishes it/) });
      }
      const again = "r" in unforced ? unforced.r : await restoreBackup({ passphrase: PASSPHRASE, source: src, workspaceDir: target, force: true });
      const auth = again.crlNumbers.find((c) => c.caId === "13-auth")!;
      expect(BigInt(auth.highestKnown), `step ${step}`).toBeGreaterThanOrEqual(published);
      const w = await openWorkspace(target);
      try {
        expect((await w.store.getCertificate(serial))?.revocation?.reason, `step ${step}`).toBe(1);
        expect((await verifyAuditLog(w.store)).ok).toBe(true);
      } finally {
        await w.close();
      }
      // the interrupted run's staging directory (with its copy of the store) does not stay behind
      expect(readdirSync(target).filter((n) => n.startsWith(".restore-")), `step ${step}`).toEqual([]);
    }
  });
});

/**
 * A workspace on a volume containers share: a restore running in another PID namespace stages there under a pid
 * that means nothing here. Swept by that pid, its staged copy of the store was deleted under it.
 */
describe("a restore's staging directory in a workspace other PID namespaces share", () => {
  it.skipIf(onPostgres)("is named with its PID namespace; another namespace's in use is kept whatever its pid, this namespace's dead one is removed", async () => {
    const target = join(dir, "shared-volume");
    await copyWorkspace(ws, target);
    const src = join(dir, "shared-volume-backup");
    expect((await cli(["-w", ws, "backup", src], { cwd: dir })).code).toBe(0);
    const other = thisNamespace() === "0123456789abcdef" ? "fedcba9876543210" : "0123456789abcdef";
    const foreign = `.restore-${spawnSync("true").pid}~@${other}-0badf00d`;
    mkdirSync(join(target, foreign, "ws"), { recursive: true });
    writeFileSync(join(target, foreign, "jpki.db"), "being copied");
    const dead = `.restore-${spawnSync("true").pid}~@${thisNamespace()}-0badf00d`;
    mkdirSync(join(target, dead));
    let staged: string[] = [];
    await restoreBackup({ passphrase: PASSPHRASE,
      source: src,
      workspaceDir: target,
      force: true,
      onProgress: (p) => void (p.phase === "files" && (staged = readdirSync(target).filter((n) => n.startsWith(".restore-") && n !== foreign))),
    });
    expect(staged).toHaveLength(1);
    expect(staged[0]).toMatch(new RegExp(`^\\.restore-${process.pid}~@${thisNamespace()}-[0-9a-f]{8}$`));
    expect(readdirSync(target).filter((n) => n.startsWith(".restore-"))).toEqual([foreign]);
    expect(readFileSync(join(target, foreign, "jpki.db"), "utf8")).toBe("being copied");
  });
});

/**
 * The municipality's card administrative key (`card issue` makes counter-admin.key in the workspace): the only key
 * that unblocks a card's PIN or renews it. Backups left it out: restored onto a new disk, no card issued before
 * could be unblocked or renewed, and the next `card issue` made a new key without a word.
 */
describe("the card administrative key", () => {
  it.skipIf(onPostgres)("is backed up and put back on a new disk; a target's own key stays, the backup's kept beside it when they differ", async () => {
    const base = join(dir, "admin-key");
    await copyWorkspace(ws, base);
    const key = `${"ab".repeat(32)}\n`;
    writeFileSync(join(base, "counter-admin.key"), key, { mode: 0o600 });
    const src = join(dir, "admin-key-backup");
    expect((await cli(["-w", base, "backup", src], { cwd: dir })).code).toBe(0);

    const fresh = join(dir, "admin-key-new-disk");
    const r = await restoreBackup({ passphrase: PASSPHRASE, source: src, workspaceDir: fresh });
    expect(r.counterAdminKey).toEqual({ restored: true });
    expect(readFileSync(join(fresh, "counter-admin.key"), "utf8")).toBe(key);
    expect(statSync(join(fresh, "counter-admin.key")).mode & 0o777).toBe(0o600);

    // Cards personalised under the target's key after the backup stay usable: it is never replaced.
    const own = `${"cd".repeat(32)}\n`;
    writeFileSync(join(base, "counter-admin.key"), own, { mode: 0o600 });
    const again = await restoreBackup({ passphrase: PASSPHRASE, source: src, workspaceDir: base, force: true });
    expect(readFileSync(join(base, "counter-admin.key"), "utf8")).toBe(own);
    expect(again.counterAdminKey?.restored).toBe(false);
    expect(readFileSync(again.counterAdminKey!.backupCopy!, "utf8")).toBe(key);
  });
});

/**
 * What sits at a file's name in the workspace is read only when it is a regular file. A FIFO at a CRL's name hung
 * `jpki restore` for ever (it reads the target's CRLs), a link to /dev/zero read until memory ran out, and a FIFO
 * at counter-admin.key hung `jpki backup`. Run as processes, with a timeout: a hang blocks the thread that reads.
 */
describe("a FIFO or a device link where jpki reads a workspace file", () => {
  it.skipIf(onPostgres)("is reported (restore: an unreadable CRL; backup: ERR_FILE_UNUSABLE), never waited on", async () => {
    const base = join(dir, "odd-files");
    await copyWorkspace(ws, base);
    const src = join(dir, "odd-files-backup");
    expect((await cli(["-w", base, "backup", src], { cwd: dir })).code).toBe(0);
    execFileSync("mkfifo", [join(base, "crl", "13-sig-delta.crl")]);
    symlinkSync("/dev/zero", join(base, "crl", "13-auth-delta.crl"));
    const env = { ...process.env, JPKI_PASSPHRASE: "correct horse" };
    const restore = spawnSync(process.execPath, [MAIN, "-w", base, "--json", "restore", src, "--force"], { env, encoding: "utf8", timeout: 60_000 });
    expect(restore.signal, "the restore hung").toBeNull();
    expect(restore.status, restore.stderr).toBe(0);
    expect(JSON.parse(restore.stdout).unreadableCrlFiles).toEqual(expect.arrayContaining(["crl/13-sig-delta.crl", "crl/13-auth-delta.crl"].map((f) => expect.stringContaining(f))));

    execFileSync("mkfifo", [join(base, "counter-admin.key")]);
    const backup = spawnSync(process.execPath, [MAIN, "-w", base, "--json", "backup", join(dir, "odd-files-backup-2")], { env, encoding: "utf8", timeout: 60_000 });
    expect(backup.signal, "the backup hung").toBeNull();
    expect(backup.status).toBe(2);
    expect(JSON.parse(backup.stderr.slice(backup.stderr.indexOf("{"))).error).toMatchObject({ code: "ERR_FILE_UNUSABLE", message: expect.stringContaining("counter-admin.key: is not a regular file") });
    expect(existsSync(join(dir, "odd-files-backup-2"))).toBe(false);
  });
});

/** A small tmpfs at `path`, where the test may mount one (root, CAP_SYS_ADMIN); undefined elsewhere. */
function smallDisk(path: string, size: string): (() => void) | undefined {
  mkdirSync(path, { recursive: true });
  if (sh("mount", ["-t", "tmpfs", "-o", `size=${size}`, "tmpfs", path]).status !== 0) return undefined;
  return () => void sh("umount", [path]);
}

describe("a full disk", () => {
  const mountable = process.getuid?.() === 0 && (() => {
    const probe = join(tempDir("jpki-mount-probe-"), "d");
    const un = smallDisk(probe, "64k");
    un?.();
    return un !== undefined;
  })();

  it.skipIf(!mountable || onPostgres)("under a backup or a restore is ERR_FILE_UNUSABLE naming the place, with nothing left behind", async () => {
    const disk = join(dir, "full");
    const unmount = smallDisk(disk, "64k")!;
    try {
      const b = await cli(["-w", ws, "--json", "backup", join(disk, "b")], { cwd: dir });
      expect(b.code, b.stderr).toBe(2);
      const err = JSON.parse(b.stderr.slice(b.stderr.indexOf("{"))).error;
      expect(err.code).toBe("ERR_FILE_UNUSABLE");
      expect(err.message).toMatch(/no space left/);
      expect(err.details.path).toBe(disk);
      expect(readdirSync(disk)).toEqual([]);

      const src = join(dir, "full-src");
      expect((await cli(["-w", ws, "backup", src], { cwd: dir })).code).toBe(0);
      const r = await cli(["-w", join(disk, "ws"), "--json", "restore", src], { cwd: dir });
      expect(r.code, r.stderr).toBe(2);
      const rerr = JSON.parse(r.stderr.slice(r.stderr.indexOf("{"))).error;
      expect(rerr.code).toBe("ERR_FILE_UNUSABLE");
      expect(rerr.message).toMatch(/no space left/);
      expect(readdirSync(join(disk, "ws"))).toEqual([]);
    } finally {
      unmount();
    }
  });
});

describe("restore --force onto a workspace another process has open", () => {
  // On PostgreSQL the serve's connections to the database are what is seen (pg_stat_activity), and the message
  // names them; on SQLite the store file open in another process.
  it("is refused (ERR_WORKSPACE_LOCKED, exit 3) while jpki serve runs on it, and nothing is moved", async () => {
    const target = join(dir, "served");
    await copyWorkspace(ws, target);
    const src = join(dir, "served-backup");
    expect((await cli(["-w", ws, "backup", src], { cwd: dir })).code).toBe(0);
    const serve = await startServe(target, []);
    try {
      expect(serve.stderr()).toMatch(/listening/);
      const r = await cli(["-w", target, "--json", "restore", src, "--force"], { cwd: dir });
      expect(r.code, r.stderr).toBe(3);
      const refused = JSON.parse(r.stderr.slice(r.stderr.indexOf("{"))).error;
      expect(refused.code).toBe("ERR_WORKSPACE_LOCKED");
      if (onPostgres) expect(refused.message).toMatch(/other clients? connected \(.*jpki/);
      expect(readdirSync(target).filter((n) => n.startsWith("before-restore-") || n.startsWith(".restore-"))).toEqual(readdirSync(ws).filter((n) => n.startsWith("before-restore-")));
      expect(serve.child.exitCode).toBeNull(); // serve goes on
    } finally {
      serve.child.kill("SIGTERM");
      await serve.exited;
    }
    // stopped, the same restore goes through
    const again = await cli(["-w", target, "restore", src, "--force"], { cwd: dir });
    expect(again.code, again.stderr).toBe(0);
  });

  // node-postgres's pool closes a connection idle for 10 s: a jpki serve with nothing to do had none left, and the
  // restore replaced the database under it. Its pool's connections ended here stand for that.
  it.runIf(onPostgres)("is refused while an idle jpki serve has no pooled connection left: the serve's own connection shows it", async () => {
    const target = join(dir, "served-idle");
    await copyWorkspace(ws, target);
    const src = join(dir, "served-idle-backup");
    expect((await cli(["-w", ws, "backup", src], { cwd: dir })).code).toBe(0);
    const serve = await startServe(target, []);
    const url = (await workspaceStore(target))!;
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'jpki' AND pid <> pg_backend_pid()");
      await admin.end();
      const r = await cli(["-w", target, "--json", "restore", src, "--force"], { cwd: dir });
      expect(r.code, r.stderr).toBe(3);
      const refused = JSON.parse(r.stderr.slice(r.stderr.indexOf("{"))).error;
      expect(refused.code).toBe("ERR_WORKSPACE_LOCKED");
      expect(refused.message).toContain(`jpki serve ${hostname()} pid ${serve.child.pid}`);
      expect(serve.child.exitCode).toBeNull();
    } finally {
      await admin.end().catch(() => undefined);
      serve.child.kill("SIGTERM");
      await serve.exited;
    }
  });

  // Another role's sessions show their backend_type only to superusers and pg_read_all_stats: a restore run under its
  // own role counted none of them - a jpki serve on another host under its role, an operator's psql as a superuser.
  it.runIf(onPostgres)("is refused while an operator's psql under another role is connected, and says how to find it", async () => {
    const target = join(dir, "psql-open");
    await copyWorkspace(ws, target);
    const src = join(dir, "psql-open-backup");
    expect((await cli(["-w", ws, "backup", src], { cwd: dir })).code).toBe(0);
    const url = new URL((await workspaceStore(target))!);
    const admin = new pg.Client({ connectionString: url.toString(), application_name: "psql" });
    await admin.connect();
    const role = `restorer_${process.pid}`;
    await admin.query(`DROP ROLE IF EXISTS ${role}`);
    await admin.query(`CREATE ROLE ${role} LOGIN`);
    try {
      url.username = role;
      const r = await cli(["-w", target, "--json", "restore", src, "--force"], { cwd: dir, env: { JPKI_STORE: url.toString() } });
      expect(r.code, r.stderr).toBe(3);
      const refused = JSON.parse(r.stderr.slice(r.stderr.indexOf("{"))).error;
      expect(refused.code).toBe("ERR_WORKSPACE_LOCKED");
      expect(refused.message).toMatch(/1 other client connected \(psql \(pid \d+, role jpki\)\)/);
      expect(refused.message).toContain("pg_stat_activity");
      expect(readdirSync(target).filter((n) => n.startsWith("before-restore-") || n.startsWith(".restore-"))).toEqual(readdirSync(ws).filter((n) => n.startsWith("before-restore-")));
    } finally {
      await admin.query(`DROP ROLE IF EXISTS ${role}`).catch(() => undefined);
      await admin.end();
    }
  });
});

/**
 * A PostgreSQL restore puts the tables back in one transaction and then moves the CRL numbering on. Found by a
 * helper: the two were separate commits, so a restore stopped between them (killed, its connection lost) left the
 * backup's numbering live — below numbers verifiers had seen — and the next `crl generate` numbered CRLs from it
 * (a delta, whose file was not there to object, went out under a number used before; RFC 5280 §5.2.3). Now the
 * restored tables carry a mark, from the same commit, that keeps every jpki process off the store until the
 * restore has moved the numbering on.
 */
describe("a PostgreSQL restore stopped between restoring the tables and moving the numbering on", () => {
  it.skipIf(!onPostgres)("leaves a store nothing numbers a CRL from; run again, the restore completes", async () => {
    const target = join(dir, "pg-stopped");
    await copyWorkspace(ws, target);
    const url = (await workspaceStore(target))!;
    setConfig(target, { deltaCrlIntervalMinutes: 5 });
    await generate(target, ["--ca", "13-sig"]);
    const src = join(dir, "pg-stopped-backup");
    expect((await cli(["-w", target, "backup", src], { cwd: dir })).code).toBe(0);
    // after the backup: full CRLs, partitions and deltas published, every scope numbering from the CA's sequence
    await generate(target, ["--partitions", "all"]);
    await generate(target, ["--ca", "13-sig", "--delta"]);
    await generate(target, ["--partitions", "all"]);
    const before = highestPublished(target);
    // the delta file goes (a new disk, a scope the target never published): nothing on disk then stops a number
    rmSync(join(target, "crl", "13-sig-delta.crl"));
    const published = () => new Map(crlFiles(target).map((f) => [f, opensslCrlNumber(f)]));
    const was = published();

    const crash = new Error("killed between pg_restore and the renumbering");
    await expect(
      restoreBackup({ passphrase: PASSPHRASE,
        source: src,
        workspaceDir: target,
        storeUrl: url,
        force: true,
        onProgress: (p) => {
          if (p.phase === "numbers") throw crash;
        },
      }),
    ).rejects.toBe(crash);

    // every CRL the workspace publishes now is one it published before, or numbered above all of those
    const d = await cli(["-w", target, "--json", "crl", "generate", "--ca", "13-sig", "--delta"], { cwd: dir });
    const g = await cli(["-w", target, "--json", "crl", "generate", "--ca", "13-sig", "--partitions", "all"], { cwd: dir });
    for (const [f, n] of published()) if (was.get(f) !== n) expect(n, f).toBeGreaterThan(before);
    // … because the store is refused, saying what to do
    for (const r of [g, d]) {
      expect(r.code, r.stderr).toBe(3);
      const err = JSON.parse(r.stderr.slice(r.stderr.indexOf("{"))).error;
      expect(err).toMatchObject({ code: "ERR_WORKSPACE_CORRUPT", details: { reason: "restore-incomplete" } });
      expect(err.message).toContain(`jpki restore ${src} --force`);
    }
    // a process that had the database open before the restore: it reserves no CRL number either
    const early = await PostgresStore.open(url, { restoring: true });
    try {
      await expect(early.reserveCrl("13-sig", new Date(), new Date(Date.now() + 86_400_000))).rejects.toMatchObject({ details: { reason: "restore-incomplete" } });
      await expect(early.reserveDeltaCrl("13-sig", new Date(), new Date(Date.now() + 86_400_000))).rejects.toMatchObject({ details: { reason: "restore-incomplete" } });
    } finally {
      await early.close();
    }

    // run again, the restore completes: the numbering moves past everything published
    const again = await restoreBackup({ passphrase: PASSPHRASE, source: src, workspaceDir: target, storeUrl: url, force: true });
    expect(BigInt(again.crlNumbers.find((c) => c.caId === "13-sig")!.highestKnown)).toBeGreaterThanOrEqual(before);
    await generate(target, ["--ca", "13-sig", "--partitions", "all"]);
    await generate(target, ["--ca", "13-sig", "--delta"]);
    for (const p of ["crl/13-sig.crl", "crl/13-sig/131016.crl", "crl/13-sig-delta.crl"]) expect(opensslCrlNumber(join(target, p)), p).toBeGreaterThan(before);
    expect(verifyWithCrl(target, cert).status).toBe(0);
    const w = await openWorkspace(target);
    try {
      expect((await verifyAuditLog(w.store)).ok).toBe(true);
    } finally {
      await w.close();
    }
  });

  it.skipIf(!onPostgres)("a restore whose pg_restore fails midway changes nothing in the database", async () => {
    const target = join(dir, "pg-truncated");
    await copyWorkspace(ws, target);
    const url = (await workspaceStore(target))!;
    const src = join(dir, "pg-truncated-backup");
    expect((await cli(["-w", target, "backup", src], { cwd: dir })).code).toBe(0);
    const { restorePostgres } = await import("../../src/backup/postgres-tools.js");
    const dump = join(src, "store", "jpki.pgdump");
    const cut = join(dir, "pg-truncated.dump");
    writeFileSync(cut, readFileSync(dump).subarray(0, Math.floor(statSync(dump).size * 0.7)));
    const w0 = await openWorkspace(target);
    const residents = await w0.store.countResidents();
    const cas = (await w0.store.listCas()).map((c) => c.id);
    await w0.store.appendAudit({ action: "store.restore", subject: "after the backup" });
    await w0.close();
    await expect(restorePostgres(url, cut, { clean: true, finalSql: PostgresStore.restorePendingStatement("{}") })).rejects.toMatchObject({ code: "ERR_BACKUP_TOOL" });
    // the database as it was: the tables not dropped, no mark, the record made after the backup still there
    const w = await openWorkspace(target);
    try {
      expect(await w.store.countResidents()).toBe(residents);
      expect((await w.store.listCas()).map((c) => c.id)).toEqual(cas);
      const subjects: string[] = [];
      for await (const r of w.store.auditRecords()) subjects.push(r.subject);
      expect(subjects).toContain("after the backup");
    } finally {
      await w.close();
    }
  });
});

/**
 * A mark a store holds while it must not be copied (a restore not finished, a store copy never verified), committed
 * once the workspace is open and before the dump's snapshot, and then there from the start: the backup is refused
 * both times with `refused`'s error, and nothing is left behind.
 */
async function backupRefusedOverMark(name: string, markSql: (url: string) => string | Promise<string>, refused: (e: unknown) => boolean): Promise<void> {
  const target = join(dir, name);
  await copyWorkspace(ws, target);
  const url = (await workspaceStore(target))!;
  const { findPgTools, libpqEnv } = await import("../../src/backup/postgres-tools.js");
  const { takeBackup } = await import("../../src/backup/backup.js");
  const mark = await markSql(url);
  // psql, synchronously: the mark is committed before takeBackup goes on from its progress report
  const commitMark = () => execFileSync(findPgTools(0).psql, ["--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "-c", mark], { env: { ...process.env, ...libpqEnv(url).env } });

  const raced = join(dir, `${name}-raced`);
  await expect(
    takeBackup({ workspaceDir: target, dest: raced, storeUrl: url, onProgress: (p) => void (p.phase === "store" && commitMark()) }),
  ).rejects.toSatisfy(refused);
  expect(existsSync(raced)).toBe(false);
  expect(readdirSync(dir).filter((n) => n.startsWith(`.${name}-raced.`))).toEqual([]);

  // the mark there when the command starts: the same answer, exit 3
  const cmd = await cli(["-w", target, "--json", "backup", join(dir, `${name}-cli`)], { cwd: dir });
  expect(cmd.code, cmd.stderr).toBe(3);
  expect(JSON.parse(cmd.stderr.slice(cmd.stderr.indexOf("{"))).error).toSatisfy(refused);
  expect(existsSync(join(dir, `${name}-cli`))).toBe(false);
}

/**
 * A backup of a store a restore has not finished with would hold the backup's CRL numbering under the mark, and a
 * restore of it would number from there. Opening the workspace refuses a marked store, but the restore's commit
 * can land after that and before the dump's snapshot: the dump itself must refuse what its snapshot holds.
 */
describe("jpki backup of a PostgreSQL store a restore has not finished with", () => {
  it.skipIf(!onPostgres)("is refused, saying which restore to run again, also when the restore's mark lands after the workspace was opened; no backup is left", async () => {
    await backupRefusedOverMark(
      "pg-pending",
      () => PostgresStore.restorePendingStatement(JSON.stringify({ source: "/backups/monday", startedAt: "2026-01-05T00:00:00.000Z" })),
      (e) => {
        expect(e).toMatchObject({ code: "ERR_WORKSPACE_CORRUPT", details: { reason: "restore-incomplete" } });
        expect((e as Error).message).toMatch(/^a restore of \/backups\/monday into this PostgreSQL database did not finish \(started 2026-01-05T00:00:00\.000Z\).* Run 'jpki restore \/backups\/monday --force' again, which completes it$/);
        return true;
      },
    );
  });
});

/**
 * The same window for a 'jpki store copy' into the database that loaded it and was stopped before it verified it:
 * a dump would carry the mark, and a restore of it would replace its target's tables with a store it cannot open.
 */
describe("jpki backup of a PostgreSQL store a copy loaded and never verified", () => {
  it.skipIf(!onPostgres)("is refused as opening it is, also when the copy's mark lands after the workspace was opened; no backup is left", async () => {
    await backupRefusedOverMark(
      "pg-unverified",
      // the mark as PostgresStore.load leaves it: when, whose, what it holds
      () => `INSERT INTO meta (key, value) VALUES ('${UNVERIFIED_COPY}', '2026-01-05T00:00:00.000Z 0badf00d cas=1') ON CONFLICT (key) DO UPDATE SET value = excluded.value`,
      (e) => {
        expect(e).toMatchObject({ code: "ERR_WORKSPACE_CORRUPT", details: { reason: "unverified-copy" } });
        expect((e as Error).message).toMatch(/^the PostgreSQL database holds a store copy that was never verified \(a 'jpki store copy' into it stopped on 2026-01-05T00:00:00\.000Z\): run the copy again/);
        return true;
      },
    );
  });
});

/**
 * A store 'jpki store copy' moved the workspace away from is retired: read-only, no longer the workspace's truth (a
 * move stopped before config.json named the new store, or a JPKI_STORE still naming the old database). A backup
 * of it was taken all the same, a stale one that looks current. Now it is refused, naming where the live store is,
 * also when the retirement lands after the workspace was opened and before the backup's snapshot.
 */
describe("jpki backup of a retired store", () => {
  it("is refused (ERR_STORE_RETIRED, exit 3) naming the live store, also when the retirement lands after the workspace was opened; no backup is left", async () => {
    const target = join(dir, "retired");
    await copyWorkspace(ws, target);
    const url = await workspaceStore(target);
    const live = onPostgres ? { kind: "sqlite" as const, location: join(target, "jpki.db") } : { kind: "postgres" as const, location: "postgres://jpki@db.example/jpki" };
    const note = retirementNote(target, live, new Date("2026-01-05T00:00:00.000Z"));
    const refused = (e: unknown) => {
      expect(e).toMatchObject({ code: "ERR_STORE_RETIRED", details: { reason: "retired", liveStore: live, movedAt: "2026-01-05T00:00:00.000Z" } });
      expect((e as Error).message).toContain(`its workspace moved to the ${live.kind} store ${live.location} on 2026-01-05T00:00:00.000Z`);
      expect((e as Error).message).toContain(`run 'jpki store copy --to ${live.kind}' again`);
      return true;
    };

    // the retirement's mark committed once the workspace is open, before the store's snapshot (synchronously, from
    // the progress report): the snapshot the backup copies holds it
    const markRetired = () => {
      const sql = `INSERT INTO meta (key, value) VALUES ('retired', '${note.replace(/'/g, "''")}')`;
      if (url) execFileSync(findPgTools(0).psql, ["--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", "-c", sql], { env: { ...process.env, ...libpqEnv(url).env } });
      else {
        const db = new Database(join(target, "jpki.db"));
        db.exec(sql);
        db.close();
      }
    };
    const { findPgTools, libpqEnv } = await import("../../src/backup/postgres-tools.js");
    const { default: Database } = await import("better-sqlite3");
    const { takeBackup } = await import("../../src/backup/backup.js");
    const raced = join(dir, "retired-raced");
    await expect(takeBackup({ workspaceDir: target, dest: raced, ...(url ? { storeUrl: url } : {}), onProgress: (p) => void (p.phase === "store" && markRetired()) })).rejects.toSatisfy(refused);
    expect(existsSync(raced)).toBe(false);
    expect(readdirSync(dir).filter((n) => n.startsWith(".retired-raced."))).toEqual([]);

    // retired as a move retires it (every write refused from then on), there when the command starts
    const w = await openWorkspace(target);
    try {
      for await (const _ of w.store.dump({ retire: () => note })) void _;
    } finally {
      await w.close();
    }
    const cmd = await cli(["-w", target, "--json", "backup", join(dir, "retired-cli")], { cwd: dir });
    expect(cmd.code, cmd.stderr).toBe(3);
    expect(JSON.parse(cmd.stderr.slice(cmd.stderr.indexOf("{"))).error).toSatisfy(refused);
    expect(existsSync(join(dir, "retired-cli"))).toBe(false);
  });
});
