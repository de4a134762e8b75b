/**
 * Card keys and CA keys through the CLI: a key or request that is not the card's RSA-2048/e=65537 DER form
 * is refused with exit 6 and nothing is committed; `ca init` and `ca rewrap` guard the CA passphrase.
 */
import { execFileSync, spawn, spawnSync } from "node:child_process";
import { chmodSync, cpSync, existsSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import pg from "pg";
import { beforeAll, describe, expect, it } from "vitest";
import { CertificationAuthority } from "../../src/ca/authority.js";
import { renewOcspSigners } from "../../src/ca/ocsp-signer.js";
import { decryptPrivateKey } from "../../src/pki/keys.js";
import { generateResidents } from "../../src/registry/fixtures.js";
import { MAIN, cardKey, cli, copyWorkspace, csrFor, jpkiProcess, onPostgres, openWorkspace, tempDir, workspaceStore, writeJsonl } from "./helpers.js";

let dir: string;
let ws: string;
let resident: string;
/**
 * `ca init --prefecture 13` as it left the workspace, before anything else: the tests that rewrap a workspace of
 * their own start from a copy of it ({@link freshTokyo}), where each ran that `ca init` again (two RSA keys).
 */
let initialised: string;
async function freshTokyo(): Promise<string> {
  const copy = join(tempDir(), "ws");
  await copyWorkspace(initialised, copy);
  return copy;
}
const w = () => ["--workspace", ws];
/** How many certificates the store holds, valid or revoked. */
const certificates = async () => {
  const wsp = await openWorkspace(ws);
  try {
    return (await wsp.store.findCertificates({ status: "all" })).length;
  } finally {
    await wsp.close();
  }
};

beforeAll(async () => {
  dir = tempDir();
  ws = join(dir, "ws");
  const init = await cli([...w(), "ca", "init", "--prefecture", "13", "--json"], { cwd: dir });
  expect(init.code, init.stderr).toBe(0);
  initialised = join(dir, "initialised");
  await copyWorkspace(ws, initialised);
  const residents = [...generateResidents({ count: 2, seed: "keys", prefectures: ["13"] })] as unknown as Array<Record<string, string>>;
  writeJsonl(join(dir, "residents.jsonl"), residents);
  const imp = await cli([...w(), "registry", "import", join(dir, "residents.jsonl"), "--json"], { cwd: dir });
  expect(imp.code, imp.stderr).toBe(0);
  resident = residents[0]!.residentCode!;
});

describe("issuance refuses keys that are not the card's", () => {
  it.each([
    [
      "a public key with a non-minimal exponent",
      () => {
        const der = execFileSync("openssl", ["pkey", "-pubin", "-in", cardKey(dir, "nm").pub, "-outform", "DER"]);
        expect(der.subarray(-5).toString("hex")).toBe("0203010001");
        const bad = Buffer.concat([der.subarray(0, -5), Buffer.from("020400010001", "hex")]);
        // lengths of the three enclosing headers grow by one (all long form: 30 82 .. .., 03 82 .. .., 30 82 .. ..)
        for (const at of [2, 2 + 2 + 15 + 2, 2 + 2 + 15 + 2 + 2 + 1 + 2]) bad.writeUInt16BE(bad.readUInt16BE(at) + 1, at);
        const file = join(dir, "nm.der");
        writeFileSync(file, bad);
        return ["--public-key", file];
      },
      "ERR_KEY_MALFORMED",
    ],
    ["an RSA key with e = 3", () => ["--public-key", cardKey(dir, "e3", ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048", "-pkeyopt", "rsa_keygen_pubexp:3"]).pub], "ERR_KEY_UNSUPPORTED"],
    [
      "a request signed with SHA-1",
      () => {
        const k = cardKey(dir, "s1");
        const csr = join(dir, "s1.csr.pem");
        execFileSync("openssl", ["req", "-new", "-key", k.key, "-subj", "/CN=card", "-sha1", "-out", csr], { stdio: "ignore" });
        return ["--csr", csr];
      },
      "ERR_CSR_UNSUPPORTED",
    ],
  ])("%s: exit 6, nothing written or committed", async (_name, args, code) => {
    const out = join(dir, `${code}.pem`);
    const before = await certificates();
    const r = await cli([...w(), "issue", "--resident", resident, ...args(), "-o", out, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(6);
    expect(r.stderr).toContain(code);
    expect(existsSync(out)).toBe(false);
    expect(await certificates()).toBe(before);
  });

  it("the same resident is issued with a good card key and request", async () => {
    const k = cardKey(dir, "good");
    const r = await cli([...w(), "issue", "--resident", resident, "--csr", csrFor(dir, k.key, "good"), "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
  });
});

describe("CA passphrase", () => {
  it("ca init with another passphrase on an existing workspace fails and creates nothing", async () => {
    const r = await cli([...w(), "ca", "init", "--prefecture", "27"], { cwd: dir, env: { JPKI_PASSPHRASE: "not the one" } });
    expect(r.code).toBe(5);
    expect(r.stderr).toContain("ERR_PASSPHRASE_WRONG");
    const list = await cli([...w(), "ca", "list", "--json"], { cwd: dir });
    expect(list.json().cas.map((c: { id: string }) => c.id)).toEqual(["13-sig", "13-auth"]);
    expect(existsSync(join(ws, "ca", "27-sig.pem"))).toBe(false);
  });

  it("ca rewrap moves every key to a new passphrase read from a file; the CAs then sign with it only", async () => {
    const newPass = join(dir, "new-pass.txt");
    writeFileSync(newPass, "a new passphrase\n", { mode: 0o600 });
    const r = await cli([...w(), "ca", "rewrap", "--new-passphrase-file", newPass, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ rewrapped: ["13-sig", "13-auth"], newPassphrase: true });
    expect(r.stdout + r.stderr).not.toContain("a new passphrase");
    const k = cardKey(dir, "after");
    const old = await cli([...w(), "issue", "--resident", resident, "--public-key", k.pub, "--json"], { cwd: dir });
    expect(old.code).toBe(5);
    const now = await cli([...w(), "issue", "--resident", resident, "--public-key", k.pub, "--json"], { cwd: dir, env: { JPKI_PASSPHRASE: readFileSync(newPass, "utf8").trim() } });
    expect(now.code, now.stderr).toBe(0);
  });
});

describe("ca rewrap and the OCSP signing keys", () => {
  it("moves them to the new passphrase with the CA keys, in one transaction, and says so; a damaged one changes nothing", async () => {
    const ows = await freshTokyo();
    // each CA's OCSP signing certificate, as `jpki serve`'s schedule issues it (key under the CA passphrase)
    let wsp = await openWorkspace(ows);
    try {
      const cas = (await wsp.store.listCas()).map((r) => CertificationAuthority.open(r, "correct horse", wsp.config));
      await renewOcspSigners(wsp.store, cas, { now: wsp.clock.now(), passphrase: "correct horse" });
    } finally {
      await wsp.close();
    }
    const newPass = join(dir, "ocsp-new-pass.txt");
    writeFileSync(newPass, "the next passphrase\n", { mode: 0o600 });
    const keys = async () => {
      const x = await openWorkspace(ows);
      try {
        return { cas: await x.store.listCas(), ocsp: await x.store.ocspResponders() };
      } finally {
        await x.close();
      }
    };

    // a damaged OCSP signing key (another key, under the right passphrase): refused before anything is replaced
    const before = await keys();
    const sig = before.ocsp.find((r) => r.caId === "13-sig")!;
    const auth = before.ocsp.find((r) => r.caId === "13-auth")!;
    wsp = await openWorkspace(ows);
    await wsp.store.putOcspResponder({ ...sig, encryptedKeyPem: auth.encryptedKeyPem });
    await wsp.close();
    const damaged = await keys();
    const refused = await cli(["--workspace", ows, "ca", "rewrap", "--new-passphrase-file", newPass], { cwd: dir });
    expect([refused.code, refused.stderr]).toEqual([3, expect.stringContaining("ERR_WORKSPACE_CORRUPT")]);
    expect(refused.stderr).toContain("the OCSP signing key of CA 13-sig does not match its certificate");
    expect(await keys()).toEqual(damaged);
    wsp = await openWorkspace(ows);
    await wsp.store.putOcspResponder(sig);
    await wsp.close();

    const text = await cli(["--workspace", ows, "ca", "rewrap"], { cwd: dir });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain("re-encrypted 2 CA key(s) and 2 OCSP signing key(s): 13-sig, 13-auth, ocsp:13-sig, ocsp:13-auth");
    const r = await cli(["--workspace", ows, "ca", "rewrap", "--new-passphrase-file", newPass, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ rewrapped: ["13-sig", "13-auth", "ocsp:13-sig", "ocsp:13-auth"], newPassphrase: true });
    const after = await keys();
    for (const rec of after.ocsp) {
      expect(() => decryptPrivateKey(rec.encryptedKeyPem, "correct horse")).toThrow(expect.objectContaining({ code: "ERR_PASSPHRASE_WRONG" }));
      expect(decryptPrivateKey(rec.encryptedKeyPem, "the next passphrase").asymmetricKeyType).toBe("rsa");
      expect(rec.serial).toBe(before.ocsp.find((b) => b.caId === rec.caId)!.serial);
    }
  });
});

describe("ca rewrap and the verifier CA key", () => {
  // Left under the old passphrase, 'verifier add --client-cert' refused the new one, and whoever held the old one
  // (a leaked passphrase the rewrap was meant to retire) could still issue client certificates serve accepts.
  it("moves it to the new passphrase with the CA keys: client certificates are then issued under the new one only", async () => {
    const vws = join(tempDir(), "ws");
    expect((await cli(["--workspace", vws, "ca", "init", "--prefecture", "13", "--purpose", "signature"], { cwd: dir })).code).toBe(0);
    const out = tempDir();
    const add = (pass: string, name: string) => cli(["--workspace", vws, "verifier", "add", "--name", name, "--kind", "government", "--client-cert", "--out", out, "--json"], { cwd: dir, env: { JPKI_PASSPHRASE: pass } });
    const first = await add("correct horse", "first");
    expect(first.code, first.stderr).toBe(0);
    const newPass = join(dir, "verifier-new-pass.txt");
    writeFileSync(newPass, "a fresh passphrase\n", { mode: 0o600 });
    const r = await cli(["--workspace", vws, "ca", "rewrap", "--new-passphrase-file", newPass, "--json"], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    expect(r.json()).toMatchObject({ rewrapped: ["13-sig", "verifier-ca"], newPassphrase: true });
    const after = await add("a fresh passphrase", "after");
    expect(after.code, after.stderr).toBe(0);
    const old = await add("correct horse", "old");
    expect([old.code, old.stderr]).toEqual([5, expect.stringContaining("ERR_PASSPHRASE_WRONG")]);
  });
});

describe("an OCSP signer renewal and ca rewrap", () => {
  it("a renewal whose CAs were opened before a rewrap to a new passphrase stores nothing after it (ERR_KEYS_REWRAPPED); opened after, it renews under the new one", async () => {
    const ows = await freshTokyo();
    const wsp = await openWorkspace(ows);
    try {
      // as `jpki serve`'s schedule: the CAs opened with the passphrase it was started with, the signers issued
      const opened = (await wsp.store.listCas()).map((r) => CertificationAuthority.open(r, "correct horse", wsp.config));
      await renewOcspSigners(wsp.store, opened, { now: wsp.clock.now(), passphrase: "correct horse" });
      const newPass = join(dir, "renewal-new-pass.txt");
      writeFileSync(newPass, "the renewal's next passphrase\n", { mode: 0o600 });
      const r = await cli(["--workspace", ows, "ca", "rewrap", "--new-passphrase-file", newPass], { cwd: dir });
      expect(r.code, r.stderr).toBe(0);
      const rewrapped = await wsp.store.ocspResponders();
      const later = new Date(wsp.clock.now().getTime() + 3 * 86_400_000); // both certificates due
      await expect(renewOcspSigners(wsp.store, opened, { now: later, passphrase: "correct horse" })).rejects.toMatchObject({
        code: "ERR_KEYS_REWRAPPED",
        message: expect.stringContaining("restart 'jpki serve' with the new passphrase"),
      });
      expect(await wsp.store.ocspResponders()).toEqual(rewrapped);
      // restarted with the new passphrase
      const reopened = (await wsp.store.listCas()).map((c) => CertificationAuthority.open(c, "the renewal's next passphrase", wsp.config));
      expect((await renewOcspSigners(wsp.store, reopened, { now: later, passphrase: "the renewal's next passphrase" })).map((x) => x.caId)).toEqual(["13-sig", "13-auth"]);
      for (const rec of await wsp.store.ocspResponders()) expect(decryptPrivateKey(rec.encryptedKeyPem, "the renewal's next passphrase").asymmetricKeyType).toBe("rsa");
    } finally {
      await wsp.close();
    }
  });
});

describe("passphrase files", () => {
  const noEnv = { JPKI_PASSPHRASE: undefined };
  // what "ca rewrap moves every key to a new passphrase" above left the keys under
  const PASS = "a new passphrase";

  it("a passphrase file other users can read or write is refused (as the token PIN file is), and the passphrase is not shown", async () => {
    for (const mode of [0o644, 0o604, 0o620]) {
      const f = join(dir, `pass-${mode.toString(8)}.txt`);
      writeFileSync(f, "a new passphrase\n");
      chmodSync(f, mode);
      const before = await certificates();
      const r = await cli([...w(), "--passphrase-file", f, "issue", "--resident", resident, "--public-key", cardKey(dir, `pf-${mode}`).pub], { cwd: dir, env: noEnv });
      expect(r.stderr).toContain("[ERR_PASSPHRASE_FILE_UNSAFE]");
      expect(r.code).toBe(5);
      expect(r.stderr).toContain(f);
      expect(r.stdout + r.stderr).not.toContain("a new passphrase");
      expect(await certificates()).toBe(before);
    }
    // owner-only, also through a symlink (as a mounted secret is): accepted
    const ok = join(dir, "pass-600.txt");
    writeFileSync(ok, "a new passphrase\n", { mode: 0o600 });
    chmodSync(ok, 0o600);
    const link = join(dir, "pass-link.txt");
    symlinkSync(ok, link);
    const r = await cli([...w(), "--passphrase-file", link, "issue", "--resident", resident, "--public-key", cardKey(dir, "pf-ok").pub, "--json"], { cwd: dir, env: noEnv });
    expect(r.code, r.stderr).toBe(0);
  });

  it("ca rewrap --new-passphrase-file: a FIFO is refused, not waited on; a world-readable file is refused; nothing is re-encrypted", async () => {
    const fifo = join(dir, "new-pass.fifo");
    execFileSync("mkfifo", [fifo]);
    // A separate process: a read that waits on the FIFO would otherwise block this test runner for good.
    const r = spawnSync(process.execPath, [MAIN, "--workspace", ws, "ca", "rewrap", "--new-passphrase-file", fifo], {
      env: { ...process.env, JPKI_PASSPHRASE: PASS },
      encoding: "utf8",
      timeout: 60_000,
    });
    expect(r.signal, "waited on the FIFO").toBeNull();
    expect(r.stderr).toContain("[ERR_FILE_UNUSABLE]");
    expect(r.status).toBe(2);
    const open = join(dir, "new-pass-644.txt");
    writeFileSync(open, "a readable passphrase\n");
    chmodSync(open, 0o644);
    const r2 = await cli([...w(), "ca", "rewrap", "--new-passphrase-file", open], { cwd: dir, env: { JPKI_PASSPHRASE: PASS } });
    expect(r2.stderr).toContain("[ERR_PASSPHRASE_FILE_UNSAFE]");
    expect(r2.stdout + r2.stderr).not.toContain("a readable passphrase");
    // the keys still open with the passphrase they had
    const k = cardKey(dir, "after-refused-rewrap");
    const now = await cli([...w(), "issue", "--resident", resident, "--public-key", k.pub, "--json"], { cwd: dir, env: { JPKI_PASSPHRASE: PASS } });
    expect(now.code, now.stderr).toBe(0);
  });
});

describe("two ca init at once on a new workspace", () => {
  it("never leave CA keys under two passphrases: the one that comes second waits its turn or is refused", async () => {
    const fresh = join(tempDir("jpki-init-race-"), "ws");
    // both start before either has a CA: each finds no passphrase to agree with
    const [a, b] = await Promise.all([
      jpkiProcess(fresh, ["ca", "init", "--prefecture", "13", "--json"], { JPKI_PASSPHRASE: "first passphrase" }),
      jpkiProcess(fresh, ["ca", "init", "--prefecture", "27", "--json"], { JPKI_PASSPHRASE: "second passphrase" }),
    ]);
    expect(a.stderr + b.stderr).not.toContain("passphrase\n");
    expect(a.stderr + b.stderr).not.toMatch(/\n\s+at /);
    const wsp = await openWorkspace(fresh);
    const { decryptPrivateKey } = await import("../../src/pki/keys.js");
    try {
      const cas = await wsp.store.listCas();
      const opens = (p: string) => cas.filter((c) => { try { decryptPrivateKey(c.encryptedKeyPem, p); return true; } catch { return false; } }).length;
      // every CA made opens with one passphrase, whichever won
      expect(Math.max(opens("first passphrase"), opens("second passphrase")), JSON.stringify([a.code, b.code, a.stderr, b.stderr])).toBe(cas.length);
      for (const r of [a, b]) if (r.code !== 0) expect(r.stderr).toMatch(/ERR_PASSPHRASE_WRONG|ERR_WORKSPACE_LOCKED/);
    } finally {
      await wsp.close();
    }
  }, 120_000);
});

/**
 * Two hosts on one PostgreSQL database: host A's workspace with Tokyo's CAs, and host B, another directory (its own
 * config.json, ca/, crl/ and lock file) on the same database.
 */
async function twoHosts(prefix: string): Promise<{ base: string; hostA: string; hostB: string; url: string }> {
  const base = tempDir(prefix);
  const hostA = join(base, "host-a");
  const init = await cli(["--workspace", hostA, "ca", "init", "--prefecture", "13", "--json"], { cwd: base });
  expect(init.code, init.stderr).toBe(0);
  const url = (await workspaceStore(hostA))!;
  const hostB = join(base, "host-b");
  cpSync(hostA, hostB, { recursive: true });
  return { base, hostA, hostB, url };
}

/**
 * The application name of the session holding the CA-keys lock in the database `admin` is connected to, as
 * pg_locks shows it now; undefined when none does. Other test files' stores on the same server hold the same
 * key in their own databases at the same time.
 */
async function caKeysHolder(admin: pg.Client): Promise<string | undefined> {
  const { ADVISORY_LOCKS } = await import("../../src/store/postgres.js");
  const r = await admin.query<{ name: string }>(
    `SELECT coalesce(a.application_name, '') AS name FROM pg_locks l LEFT JOIN pg_stat_activity a ON a.pid = l.pid
     WHERE l.locktype = 'advisory' AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
       AND l.classid = $1::bigint::oid AND l.objid = 0 AND l.objsubid = 2 AND l.granted`,
    [ADVISORY_LOCKS.caKeys],
  );
  return r.rows[0]?.name;
}

describe("the CA-keys lock across hosts sharing one PostgreSQL database", () => {
  // Each host has its own workspace directory (its own lock file) on the one database: only a lock in the
  // database keeps a rewrap on one host from storing keys under the passphrase another host is replacing.
  it.skipIf(!onPostgres)("a rewrap or init on one host is refused while another holds the lock, proceeds once it is released, and a killed holder frees it", async () => {
    const { base, hostA, hostB, url } = await twoHosts("jpki-two-hosts-");
    const onB = (args: string[]) => cli(["--workspace", hostB, ...args], { cwd: base, env: { JPKI_STORE: url } });
    const caIds = async () => (await onB(["ca", "list", "--json"])).json().cas.map((c: { id: string }) => c.id);

    // host A holds the lock (in this process), as a long ca init or rewrap would
    const { withCaKeysLock } = await import("../../src/ca/manage.js");
    const a = await openWorkspace(hostA);
    let release!: () => void;
    let held!: Promise<void>;
    await new Promise<void>((entered) => {
      held = withCaKeysLock(a, () => {
        entered();
        return new Promise<void>((r) => (release = r));
      });
    });
    try {
      const rewrap = await onB(["ca", "rewrap"]);
      expect([rewrap.code, rewrap.stderr]).toEqual([3, expect.stringContaining("ERR_WORKSPACE_LOCKED")]);
      expect(rewrap.stderr).toContain("the CA keys of this PostgreSQL store");
      expect(rewrap.stderr).toContain(`pid ${process.pid}`); // the holder, as pg_stat_activity names it
      const initB = await onB(["ca", "init", "--prefecture", "27"]);
      expect([initB.code, initB.stderr]).toEqual([3, expect.stringContaining("ERR_WORKSPACE_LOCKED")]);
      expect(await caIds()).toEqual(["13-sig", "13-auth"]);
    } finally {
      release();
      await held;
      await a.close();
    }
    const after = await onB(["ca", "rewrap", "--json"]);
    expect(after.code, after.stderr).toBe(0);
    expect(after.json().rewrapped).toEqual(["13-sig", "13-auth"]);

    // A holder killed while holding: its connection closes, and PostgreSQL drops the lock with it.
    const dist = join(import.meta.dirname, "../../dist/src");
    const holder = spawn(
      process.execPath,
      [
        "--input-type=module",
        "-e",
        `const { Workspace } = await import(${JSON.stringify(join(dist, "workspace/workspace.js"))});
         const { withCaKeysLock } = await import(${JSON.stringify(join(dist, "ca/manage.js"))});
         const ws = await Workspace.openAsync(process.env.WS, { storeUrl: process.env.JPKI_STORE });
         await withCaKeysLock(ws, () => { process.stdout.write("held\\n"); return new Promise(() => {}); });`,
      ],
      { env: { ...process.env, WS: hostA, JPKI_STORE: url }, stdio: ["ignore", "pipe", "pipe"] },
    );
    let err = "";
    holder.stderr.on("data", (d) => (err += d));
    const exited = new Promise((r) => holder.on("exit", r));
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      await new Promise<void>((r, j) => {
        holder.stdout.on("data", (d) => String(d).includes("held") && r());
        holder.on("exit", () => j(new Error(`the holder exited: ${err}`)));
      });
      // what the server shows as holding it, in this store's database, before host B is asserted to name it
      while (!(await caKeysHolder(admin))?.includes(`pid ${holder.pid}`)) await new Promise((r) => setTimeout(r, 20));
      const locked = await onB(["ca", "rewrap"]);
      expect([locked.code, locked.stderr]).toEqual([3, expect.stringContaining(`pid ${holder.pid}`)]);
      holder.kill("SIGKILL");
      await exited;
      // the server ends the dead holder's backend as soon as it reads the closed socket; its lock goes with it
      while ((await caKeysHolder(admin)) !== undefined) await new Promise((r) => setTimeout(r, 20));
    } finally {
      holder.kill("SIGKILL");
      await admin.end();
    }
    const freed = await onB(["ca", "rewrap", "--json"]);
    expect(freed.code, freed.stderr).toBe(0);
  });

  // The lock lives on a connection of its own: when that connection ends while the holder works (a network break, or
  // an operator ending what looked like a vanished host's lock, as the README says to), another host takes the lock.
  it.skipIf(!onPostgres)("a holder whose lock connection ended writes no CA keys after it: ERR_WORKSPACE_LOCKED, while the host that took the lock over goes on", async () => {
    const { base, hostA, hostB, url } = await twoHosts("jpki-lost-lock-");
    const { withCaKeysLock } = await import("../../src/ca/manage.js");
    const a = await openWorkspace(hostA);
    const admin = new pg.Client({ connectionString: url });
    await admin.connect();
    try {
      const before = await a.store.listCas();
      const outcome = await withCaKeysLock(a, async () => {
        // host A's lock connection is ended from outside; host B then rewraps under the lock it can now take
        const ended = await admin.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name LIKE 'jpki ca-keys %' AND datname = current_database()");
        expect(ended.rowCount).toBe(1);
        const b = await cli(["--workspace", hostB, "ca", "rewrap", "--json"], { cwd: base, env: { JPKI_STORE: url } });
        expect(b.code, b.stderr).toBe(0);
        // host A, still inside its locked operation, writes the keys it prepared before: refused, nothing written
        return a.store.replaceCaKeys(before.map((r) => ({ id: r.id, encryptedKeyPem: r.encryptedKeyPem }))).then(
          () => "written",
          (e: { code?: string; message?: string }) => `${e.code}: ${e.message}`,
        );
      });
      expect(outcome).toMatch(/^ERR_WORKSPACE_LOCKED: the CA-keys lock of this PostgreSQL store was lost/);
      // host B's keys stand: not replaced by those A read before B's rewrap
      const now = await a.store.listCas();
      expect(now.map((r) => r.encryptedKeyPem)).not.toEqual(before.map((r) => r.encryptedKeyPem));
    } finally {
      await admin.end();
      await a.close();
    }
  });
});

