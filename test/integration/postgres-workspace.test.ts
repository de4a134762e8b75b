/**
 * A workspace on PostgreSQL (issue 8 point 4), driven through the CLI in-process: the connection string comes
 * from JPKI_STORE only, config.json records the kind and never the string, the files stay on disk, and the
 * revocations reach the CRLs as openssl reads them.
 */
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { generateResidents } from "../../src/registry/fixtures.js";
import pg from "pg";
import { connectionString, PASSWORD_ROLE } from "../postgres-server.js";
import { usePostgres } from "../use-postgres.js";
import { initToken, makeSoftHsm } from "../softhsm.js";
import { cardKeys, cardKey, cli, sh, tempDir, writeJsonl } from "./helpers.js";

// its own: it creates a role of the server's (PASSWORD_ROLE)
const server = usePostgres({ own: true });

/** The serials openssl lists on a DER CRL, upper-case hex without leading zeros. */
function crlSerials(path: string): Set<string> {
  const text = execFileSync("openssl", ["crl", "-inform", "DER", "-in", path, "-noout", "-text"], { encoding: "utf8" });
  return new Set([...text.matchAll(/Serial Number: ([0-9A-F]+)/gi)].map((m) => m[1]!.toUpperCase().replace(/^0+/, "")));
}
const hex = (serial: string) => serial.toUpperCase().replace(/^0+/, "");

describe("a workspace on PostgreSQL", () => {
  it("runs ca init, registry import, issue --batch, revoke, notices ingest and crl generate with JPKI_STORE", async () => {
    const url = await server.createDatabase();
    const dir = tempDir("jpki-pg-ws-");
    const ws = join(dir, "ws");
    const env = { JPKI_STORE: url };
    const w = ["--workspace", ws];

    const init = await cli([...w, "ca", "init", "-p", "13", "--store", "postgres", "--json"], { cwd: dir, env });
    expect(init.code, init.stderr).toBe(0);
    const configText = readFileSync(join(ws, "config.json"), "utf8");
    expect(JSON.parse(configText).store).toBe("postgres");
    expect(configText).not.toContain(server.socketDir);
    expect(configText).not.toContain("postgres:");
    expect(existsSync(join(ws, "jpki.db"))).toBe(false);
    for (const d of ["ca", "crl", "certs", "rejects"]) expect(existsSync(join(ws, d)), d).toBe(true);
    expect(existsSync(join(ws, "ca", "13-sig.pem"))).toBe(true);

    const residents = [...generateResidents({ count: 6, seed: "pg-workspace", prefectures: ["13"] })] as unknown as Array<Record<string, string>>;
    writeJsonl(join(dir, "residents.jsonl"), residents);
    const imp = await cli([...w, "registry", "import", join(dir, "residents.jsonl"), "--json"], { cwd: dir, env });
    expect(imp.code, imp.stderr).toBe(0);

    const pub = readFileSync(cardKey(dir, "card").pub, "utf8");
    const key = cardKeys(pub);
    const apps = residents.flatMap((r) => ["signature", "authentication"].map((type) => ({ residentCode: r.residentCode, type, publicKey: key() })));
    writeJsonl(join(dir, "apps.jsonl"), apps);
    const issued = await cli([...w, "issue", "--batch", join(dir, "apps.jsonl"), "--out-dir", join(dir, "certs"), "--json"], { cwd: dir, env });
    expect(issued.code, issued.stderr).toBe(0);

    const serialOf = async (code: string, type: string) => {
      const show = await cli([...w, "registry", "show", code, "--json"], { cwd: dir, env });
      expect(show.code, show.stderr).toBe(0);
      return (show.json().certificates as Array<{ serial: string; type: string }>).find((c) => c.type === type)!.serial;
    };
    const lost = await serialOf(residents[0]!.residentCode!, "signature");
    const r = await cli([...w, "revoke", "--serial", lost, "--reason", "loss", "--json"], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);

    // 死亡: a death notice revokes both of the resident's certificates
    const dead = residents[1]!;
    const deadSig = await serialOf(dead.residentCode!, "signature");
    const deadAuth = await serialOf(dead.residentCode!, "authentication");
    const feed = writeJsonl(join(dir, "notices.jsonl"), [
      { noticeId: "PG-1", residentCode: dead.residentCode, kind: "death", effectiveDate: "2026-05-01", sequence: 1, municipalityCode: dead.municipalityCode },
    ]);
    const ingest = await cli([...w, "notices", "ingest", feed, "--json"], { cwd: dir, env });
    expect(ingest.code, ingest.stderr).toBe(0);
    expect(ingest.json()).toMatchObject({ read: 1, applied: 1 });

    const g = await cli([...w, "crl", "generate", "--prefecture", "13", "--json"], { cwd: dir, env });
    expect(g.code, g.stderr).toBe(0);
    const sig = crlSerials(join(ws, "crl", "13-sig.crl"));
    const auth = crlSerials(join(ws, "crl", "13-auth.crl"));
    expect(sig).toEqual(new Set([hex(lost), hex(deadSig)]));
    expect(auth).toEqual(new Set([hex(deadAuth)]));
    // openssl verifies the CRL's signature with the CA certificate on disk
    const v = sh("openssl", ["crl", "-inform", "DER", "-in", join(ws, "crl", "13-sig.crl"), "-CAfile", join(ws, "ca", "13-sig.pem"), "-noout"]);
    expect(v.status, v.out).toBe(0);
    expect(v.out).toContain("verify OK");

    // the connection string never lands in config.json, even after every command ran
    expect(readFileSync(join(ws, "config.json"), "utf8")).toBe(configText);
  });

  it("a token CA's module is loaded only by a host whose own config.json lists it: a second host on the database is refused until its operator adds it, and nothing is adopted from the shared store", async () => {
    const hsm = makeSoftHsm();
    const token = initToken(hsm, "jpki-pg-ca");
    const url = await server.createDatabase();
    const dir = tempDir("jpki-pg-hsm-");
    const env = { JPKI_STORE: url, JPKI_PASSPHRASE: undefined, JPKI_PKCS11_PIN: token.pin };
    const hostA = join(dir, "host-a");
    const init = await cli(["--workspace", hostA, "ca", "init", "-p", "13", "--purpose", "signature", "--store", "postgres", "--pkcs11-module", hsm.modulePath, "--token", token.label], { cwd: dir, env });
    expect(init.code, init.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(hostA, "config.json"), "utf8")).pkcs11Modules).toEqual([hsm.modulePath]);
    // host B: its own directory on the same database, its operator not (yet) having chosen a module
    const hostB = join(dir, "host-b");
    cpSync(hostA, hostB, { recursive: true });
    const configB = join(hostB, "config.json");
    const { pkcs11Modules: _, ...withoutModules } = JSON.parse(readFileSync(configB, "utf8"));
    writeFileSync(configB, JSON.stringify(withoutModules, null, 2) + "\n");
    const refused = await cli(["--workspace", hostB, "crl", "generate", "--ca", "13-sig"], { cwd: dir, env });
    expect([refused.code, refused.stderr]).toEqual([19, expect.stringContaining("ERR_PKCS11_MODULE_NOT_ALLOWED")]);
    expect(refused.stderr).toContain(`add ${JSON.stringify(hsm.modulePath)} there`);
    expect(JSON.parse(readFileSync(configB, "utf8"))).not.toHaveProperty("pkcs11Modules"); // never adopted from PostgreSQL
    writeFileSync(configB, JSON.stringify({ ...withoutModules, pkcs11Modules: [hsm.modulePath] }, null, 2) + "\n");
    const signed = await cli(["--workspace", hostB, "crl", "generate", "--ca", "13-sig"], { cwd: dir, env });
    expect(signed.code, signed.stderr).toBe(0);
  });

  it("takes JPKI_STORE on ca init without --store as postgres; --store sqlite wins over it", async () => {
    const url = await server.createDatabase();
    const dir = tempDir("jpki-pg-env-");
    const pg = join(dir, "pg");
    const init = await cli(["--workspace", pg, "ca", "init", "-p", "13", "--purpose", "signature"], { cwd: dir, env: { JPKI_STORE: url } });
    expect(init.code, init.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(pg, "config.json"), "utf8")).store).toBe("postgres");
    const list = await cli(["--workspace", pg, "ca", "list", "--json"], { cwd: dir, env: { JPKI_STORE: url } });
    expect(list.code, list.stderr).toBe(0);
    expect(list.json().cas.map((c: { id: string }) => c.id)).toEqual(["13-sig"]);

    const lite = join(dir, "lite");
    const s = await cli(["--workspace", lite, "ca", "init", "-p", "13", "--purpose", "signature", "--store", "sqlite"], { cwd: dir, env: { JPKI_STORE: url } });
    expect(s.code, s.stderr).toBe(0);
    expect(JSON.parse(readFileSync(join(lite, "config.json"), "utf8")).store).toBe("sqlite");
    expect(existsSync(join(lite, "jpki.db"))).toBe(true);

    // an existing workspace keeps its store: asking for the other one is refused
    const change = await cli(["--workspace", lite, "ca", "init", "-p", "27", "--store", "postgres"], { cwd: dir, env: { JPKI_STORE: url } });
    expect(change.code).toBe(2);
    expect(change.stderr).toContain("ERR_USAGE");
  });

  it("refuses a postgres workspace without JPKI_STORE, saying what to set", async () => {
    const url = await server.createDatabase();
    const dir = tempDir("jpki-pg-noenv-");
    const ws = join(dir, "ws");
    expect((await cli(["--workspace", ws, "ca", "init", "-p", "13", "--purpose", "signature", "--store", "postgres"], { cwd: dir, env: { JPKI_STORE: url } })).code).toBe(0);
    for (const env of [{}, { JPKI_STORE: "" }]) {
      const r = await cli(["--workspace", ws, "ca", "list"], { cwd: dir, env });
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("ERR_USAGE");
      expect(r.stderr).toContain("JPKI_STORE");
    }
    // --store postgres on a new workspace without JPKI_STORE: the same error, and nothing is made
    const fresh = join(dir, "fresh");
    const r = await cli(["--workspace", fresh, "ca", "init", "-p", "13", "--store", "postgres"], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("JPKI_STORE");
    expect(existsSync(join(fresh, "config.json"))).toBe(false);
    // a string that is not a PostgreSQL URL is refused without being echoed (it may hold a password)
    const bad = await cli(["--workspace", ws, "ca", "list"], { cwd: dir, env: { JPKI_STORE: "mysql://u:hunter2@h/db" } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("JPKI_STORE");
    expect(bad.stderr).not.toContain("hunter2");
  });

  it("a connection that fails — no server, wrong password, no password, no such database — is ERR_STORE_UNREACHABLE (exit 12), and the password is never printed", async () => {
    const admin = new pg.Client({ connectionString: server.url("postgres") });
    await admin.connect();
    try {
      await admin.query(`CREATE ROLE ${PASSWORD_ROLE} LOGIN SUPERUSER PASSWORD 'the-right-one'`);
    } finally {
      await admin.end();
    }
    const good = await server.createDatabase();
    const dir = tempDir("jpki-pg-fail-");
    const ws = join(dir, "ws");
    expect((await cli(["--workspace", ws, "ca", "init", "-p", "13", "--purpose", "signature", "--store", "postgres"], { cwd: dir, env: { JPKI_STORE: good } })).code).toBe(0);
    const database = decodeURIComponent(new URL(good).pathname.slice(1));
    const secret = "hunter2-Zq9";
    const cases: Array<[string, string, string]> = [
      ["network", `postgresql://jpki:${secret}@localhost/${database}?host=${encodeURIComponent(join(dir, "no-such-socket-dir"))}`, "ENOENT"],
      ["network", `postgresql://jpki:${secret}@127.0.0.1:1/${database}`, "ECONNREFUSED"],
      ["authentication", connectionString(server.socketDir, database, PASSWORD_ROLE, secret), "28P01"],
      ["authentication", connectionString(server.socketDir, database, PASSWORD_ROLE), "connection closed"],
      ["database", connectionString(server.socketDir, "no_such_database", "jpki", secret), "3D000"],
    ];
    for (const [reason, url, code] of cases) {
      // an existing workspace, text and --json
      const r = await cli(["--workspace", ws, "ca", "list"], { cwd: dir, env: { JPKI_STORE: url } });
      expect(r.code, `${reason}: ${r.stderr}`).toBe(12);
      expect(r.stderr).toContain("[ERR_STORE_UNREACHABLE]");
      expect(r.stderr).toContain(code === "connection closed" ? "refused the login" : code);
      const j = await cli(["--workspace", ws, "ca", "list", "--json"], { cwd: dir, env: { JPKI_STORE: url } });
      expect(j.code).toBe(12);
      expect(JSON.parse(j.stderr).error).toMatchObject({ code: "ERR_STORE_UNREACHABLE", details: { reason } });
      // a new workspace: refused before anything is written
      const fresh = join(dir, `fresh-${reason}`);
      const init = await cli(["--workspace", fresh, "ca", "init", "-p", "13", "--store", "postgres"], { cwd: dir, env: { JPKI_STORE: url } });
      expect(init.code, init.stderr).toBe(12);
      expect(init.stderr).toContain("ERR_STORE_UNREACHABLE");
      expect(existsSync(join(fresh, "config.json"))).toBe(false);
      for (const out of [r, j, init]) expect(out.stdout + out.stderr).not.toContain(secret);
    }
    // a string node-postgres cannot parse is a usage error, not echoed either
    const bad = await cli(["--workspace", ws, "ca", "list"], { cwd: dir, env: { JPKI_STORE: `postgres://jpki:${secret}@localhost:99999/${database}` } });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("ERR_USAGE");
    expect(bad.stderr).not.toContain(secret);
    // and the right credentials work
    const right = connectionString(server.socketDir, database, PASSWORD_ROLE, "the-right-one");
    const ok = await cli(["--workspace", ws, "ca", "list", "--json"], { cwd: dir, env: { JPKI_STORE: right } });
    expect(ok.code, ok.stderr).toBe(0);
  });

  it("JPKI_STORE set for a SQLite workspace: the command runs on jpki.db and says once, on stderr, that JPKI_STORE is ignored", async () => {
    const url = await server.createDatabase();
    const dir = tempDir("jpki-pg-ignored-");
    const lite = join(dir, "lite");
    const secretUrl = url.replace("postgresql://jpki@", "postgresql://jpki:hunter2-Zq9@");
    const init = await cli(["--workspace", lite, "ca", "init", "-p", "13", "--purpose", "signature", "--store", "sqlite"], { cwd: dir, env: { JPKI_STORE: secretUrl } });
    expect(init.code, init.stderr).toBe(0);
    const warning = /^jpki: warning: JPKI_STORE is set, but the workspace .* keeps its records in its SQLite file jpki\.db: JPKI_STORE is ignored$/;
    expect(init.stderr.trim()).toMatch(warning);
    const list = await cli(["--workspace", lite, "ca", "list", "--json"], { cwd: dir, env: { JPKI_STORE: secretUrl } });
    expect(list.code, list.stderr).toBe(0);
    expect(list.json().cas.map((c: { id: string }) => c.id)).toEqual(["13-sig"]); // stdout is still the JSON document alone
    expect(list.stderr.trim().split("\n")).toHaveLength(1);
    expect(list.stderr.trim()).toMatch(warning);
    expect(list.stderr).toContain(lite);
    expect(list.stderr).not.toContain("hunter2");
    expect(list.stderr).not.toContain(server.socketDir);
    // without JPKI_STORE, nothing to say
    const quiet = await cli(["--workspace", lite, "ca", "list"], { cwd: dir });
    expect(quiet.code).toBe(0);
    expect(quiet.stderr).toBe("");
    // and nothing reached the database JPKI_STORE named
    const c = new pg.Client({ connectionString: url });
    await c.connect();
    try {
      expect((await c.query("SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'public'::regnamespace")).rows).toEqual([{ n: 0 }]);
    } finally {
      await c.end();
    }
  });

  it("an existing workspace pointed at an empty database is refused, by ca init too: nothing is created there, and the message says to check JPKI_STORE", async () => {
    const url = await server.createDatabase();
    const wrong = await server.createDatabase(); // e.g. a typo naming another, empty database
    const dir = tempDir("jpki-pg-empty-");
    const ws = join(dir, "ws");
    expect((await cli(["--workspace", ws, "ca", "init", "-p", "13", "--purpose", "signature", "--store", "postgres"], { cwd: dir, env: { JPKI_STORE: url } })).code).toBe(0);
    for (const args of [["ca", "list"], ["ca", "init", "-p", "27", "--purpose", "signature"]]) {
      const r = await cli(["--workspace", ws, ...args], { cwd: dir, env: { JPKI_STORE: wrong } });
      expect(r.code, args.join(" ")).toBe(3);
      expect(r.stderr).toContain("ERR_WORKSPACE_CORRUPT");
      expect(r.stderr).toContain("JPKI_STORE");
      expect(r.stderr).not.toContain("run 'jpki ca init'");
    }
    expect(existsSync(join(ws, "ca", "27-sig.pem"))).toBe(false);
    const c = new pg.Client({ connectionString: wrong });
    await c.connect();
    try {
      expect((await c.query("SELECT count(*)::int AS n FROM pg_class WHERE relnamespace = 'public'::regnamespace")).rows).toEqual([{ n: 0 }]);
    } finally {
      await c.end();
    }
    // the workspace is intact on its own database
    const list = await cli(["--workspace", ws, "ca", "list", "--json"], { cwd: dir, env: { JPKI_STORE: url } });
    expect(list.json().cas.map((x: { id: string }) => x.id)).toEqual(["13-sig"]);
  });
});
