/**
 * The fault-injection checker catches what it claims to (slow: runs the built CLI, ~20 s). A small
 * workspace is brought to rest by the CLI, run sequentially (in one process), then broken by hand one way at a time: a
 * revocation missing from its CRL, an older CRL written over a newer one, a CRL file deleted, DER and PEM
 * disagreeing, temporary files left behind, a notice lost, a notice held although its predecessor is
 * applied, an --out-dir file that is not the store's, two certificates for one application, a CRL number
 * going down under the monitor, one number naming two CRLs. Each must be reported under its invariant
 * (compared with what the intact workspace already reports, so a bug the lead is still fixing does not
 * hide or fake a detection).
 */
import { cpSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, renameSync, rmSync, unlinkSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import Database from "better-sqlite3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { readCrl, normaliseSerial } from "./der.js";
import {
  CrlMonitor,
  checkWorkspace,
  cliSession,
  classify,
  exitProblem,
  prepareEnvironment,
  privateDistCopy,
  reingestCheck,
  runCli,
  type CheckInput,
  type CliSession,
  type Environment,
  type Invariant,
  type ProcResult,
  type Violation,
} from "./harness.js";

let tmp: string;
let env: Environment;
let clean: string;
let baseline: Violation[];
let issueErrorLines: Set<number>;

const dirsOf = (root: string) => ({ ws: join(root, "ws"), spool: join(root, "spool"), out: join(root, "out") });
const input = (root: string): CheckInput => ({ workspace: dirsOf(root).ws, manifest: env.manifest, inputs: env.inputs, spool: dirsOf(root).spool, outDir: dirsOf(root).out, issueErrorLines });

function copy(name: string): string {
  const to = join(tmp, name);
  cpSync(clean, to, { recursive: true });
  return to;
}

/** The violations of `invariant` that the intact workspace did not already have. */
function fresh(vs: readonly Violation[], invariant: Invariant): string[] {
  const known = new Set(baseline.map((v) => v.detail));
  return vs.filter((v) => v.invariant === invariant && !known.has(v.detail)).map((v) => v.detail);
}

function writable(root: string): Database.Database {
  return new Database(join(dirsOf(root).ws, "jpki.db"));
}

/** Runs jpki on the workspace under `root`: a process of its own, or a command of `session`'s process. */
async function cli(root: string, args: string[], session?: CliSession): Promise<ProcResult> {
  const full = ["--workspace", dirsOf(root).ws, ...args];
  const r = await (session ? session.run(full, root) : runCli(env.cli, full, root));
  expect(exitProblem(r), `${args.join(" ")}: ${r.stderr}`).toBeUndefined();
  return r;
}

beforeAll(async () => {
  tmp = mkdtempSync(join(tmpdir(), "jpki-chaos-checker-"));
  const built = privateDistCopy(join(tmp, "build"));
  env = await prepareEnvironment({ dir: join(tmp, "env"), cli: built, residents: 800, notices: 1600 });
  // The intact workspace: every command once, one after the other, nothing killed: in one process of the CLI
  // (what the checker reads is the workspace they leave, not how each started).
  clean = join(tmp, "clean");
  const d = dirsOf(clean);
  cpSync(env.base, d.ws, { recursive: true });
  mkdirSync(d.spool, { recursive: true });
  const session = cliSession(env.cli);
  try {
    for (const f of env.manifest.ingestFiles) await cli(clean, ["notices", "ingest", join(env.inputs, f)], session);
    await cli(clean, ["registry", "apply", join(env.inputs, "c.jsonl")], session);
    const issued = await cli(clean, ["issue", "--batch", join(env.inputs, "apps-round.jsonl"), "--out-dir", d.out, "--json"], session);
    issueErrorLines = new Set((JSON.parse(issued.stdout) as { errors: Array<{ line: number }> }).errors.map((e) => e.line));
    // with their times: written by prepareEnvironment long before, they are quiet already and the watch reads them
    // at once (a fresh copy waited SPOOL_SETTLE_MS for it to go quiet)
    for (const f of env.manifest.spoolFiles) cpSync(join(env.inputs, f), join(d.spool, f), { preserveTimestamps: true });
    await cli(clean, ["watch", d.spool, "--once"], session);
    await cli(clean, ["crl", "generate", "--prefecture", "all"], session);
  } finally {
    await session.close();
  }
  baseline = checkWorkspace(input(clean));
}, 240_000);

afterAll(() => {
  if (tmp && !process.env.JPKI_CHAOS_KEEP) rmSync(tmp, { recursive: true, force: true });
});

describe("the fault-injection checker (slow: spawns the CLI)", () => {
  it("reads CRLs as openssl does", () => {
    for (const f of readdirSync(join(dirsOf(clean).ws, "crl")).filter((f) => f.endsWith(".crl"))) {
      const path = join(dirsOf(clean).ws, "crl", f);
      const text = execFileSync("openssl", ["crl", "-inform", "DER", "-in", path, "-noout", "-text"], { encoding: "utf8" });
      const ours = readCrl(readFileSync(path));
      expect(ours.serials.slice().sort(), f).toEqual([...text.matchAll(/Serial Number: ([0-9A-F]+)/g)].map((m) => normaliseSerial(m[1]!)).sort());
      expect(String(ours.number), f).toBe(/X509v3 CRL Number:\s*\n\s*(\d+)/.exec(text)![1]);
    }
    expect(() => readCrl(readFileSync(join(dirsOf(clean).ws, "crl", "13-sig.crl")).subarray(0, 100))).toThrow(/DER/);
  });

  it("a revocation missing from the CRL, and a CRL entry the store does not hold revoked", () => {
    const root = copy("revoked");
    const db = writable(root);
    const valid = db.prepare("SELECT serial FROM certified WHERE revoked_at IS NULL AND ca_id = '13-sig' LIMIT 1").pluck().get() as string;
    const listed = db.prepare("SELECT serial FROM certified WHERE revoked_at IS NOT NULL AND ca_id = '27-auth' LIMIT 1").pluck().get() as string | undefined;
    db.prepare("UPDATE certified SET revoked_at = ? WHERE serial = ?").run(Date.now(), valid);
    if (listed) db.prepare("UPDATE certified SET revoked_at = NULL WHERE serial = ?").run(listed);
    db.close();
    const found = fresh(checkWorkspace(input(root)), "revoked-in-crl");
    expect(found.some((d) => d.includes(valid) && d.includes("not on crl/13-sig.crl")), found.join("\n")).toBe(true);
    if (listed) expect(found.some((d) => d.includes(normaliseSerial(listed)) && d.includes("does not hold as revoked")), found.join("\n")).toBe(true);
  });

  it("an older CRL written over a newer one", () => {
    const root = copy("older");
    const ws = dirsOf(root).ws;
    cpSync(join(env.base, "crl", "13-sig.crl"), join(ws, "crl", "13-sig.crl"));
    const vs = checkWorkspace(input(root));
    expect(fresh(vs, "crl-number-store-vs-disk").some((d) => d.startsWith("13-sig: the store's latest published CRL is #") && d.endsWith("crl/13-sig.crl is #1"))).toBe(true);
    expect(fresh(vs, "crl-der-pem").some((d) => d.startsWith("13-sig: crl/13-sig.crl (#1) and crl/13-sig.crl.pem"))).toBe(true);
  });

  it("a deleted CRL file, and DER and PEM of different CRLs", () => {
    const root = copy("deleted");
    const crl = join(dirsOf(root).ws, "crl");
    unlinkSync(join(crl, "27-sig.crl"));
    unlinkSync(join(crl, "27-auth.crl.pem"));
    cpSync(join(crl, "13-auth.crl.pem"), join(crl, "13-sig.crl.pem"));
    const vs = checkWorkspace(input(root));
    expect(fresh(vs, "crl-number-store-vs-disk")).toEqual([expect.stringMatching(/^27-sig: the store records CRL #\d+ as published but crl\/27-sig.crl does not exist$/)]);
    expect(fresh(vs, "crl-der-pem")).toEqual(expect.arrayContaining(["27-auth: crl/27-auth.crl.pem is missing", expect.stringMatching(/^13-sig: crl\/13-sig.crl \(#\d+\) and crl\/13-sig.crl.pem/)]));
  });

  it("temporary files and an unfinished spool file", () => {
    const root = copy("tmpfiles");
    const d = dirsOf(root);
    writeFileSync(join(d.ws, "crl", ".13-sig.crl.0a1b2c.tmp"), "x");
    mkdirSync(join(d.spool, "processing"), { recursive: true });
    writeFileSync(join(d.spool, "processing", ".1700000000.42.rejects.tmp"), "x");
    writeFileSync(join(d.out, "leftover.tmp"), "x");
    renameSync(join(d.spool, "done", "spool2.jsonl"), join(d.spool, "processing", "4242~spool2.jsonl"));
    const vs = checkWorkspace(input(root));
    expect(fresh(vs, "no-temp-files")).toHaveLength(3);
    expect(fresh(vs, "spool-drained")).toEqual(["spool/processing/4242~spool2.jsonl was left unfinished"]);
  });

  it("lost notices, a lost rejection, a notice held although its predecessor is applied; re-ingesting then changes the store", async () => {
    const root = copy("notices");
    const d = dirsOf(root);
    const a = env.manifest.noticeFiles["a.jsonl"]!;
    const b = env.manifest.noticeFiles["b.jsonl"]!;
    const c = env.manifest.noticeFiles["c.jsonl"]!;
    const db = writable(root);
    const status = (id: string | null) => db.prepare("SELECT status FROM notices WHERE notice_id = ?").pluck().get(id);
    // An applied notice and a held one (behind a gap) vanish from the store.
    const applied = a.find((l) => status(l.noticeId) === "applied" && l.sequence === 1)!;
    // A held notice whose resident keeps its code and stays alive: ingesting it again holds it again,
    // whatever `registry apply` did meanwhile.
    const kinds = readFileSync(join(env.inputs, "c.jsonl"), "utf8").split("\n").map((t) => /"kind":"([^"]+)"/.exec(t)?.[1]);
    const codeChange = new Set(c.filter((l) => kinds[l.line - 1] === "resident-code-change").map((l) => l.chain));
    const heldGone = c.find(
      (l) => l.chain !== null && env.manifest.gapChains.includes(l.chain) && !codeChange.has(l.chain) && ["relocation", "name-change", "correction"].includes(kinds[l.line - 1]!) && status(l.noticeId) === "held",
    )!;
    for (const l of [applied, heldGone]) expect(db.prepare("DELETE FROM notices WHERE notice_id = ?").run(l.noticeId).changes).toBe(1);
    const held = b.find((l) => status(l.noticeId) === "applied")!;
    db.prepare("UPDATE notices SET status = 'held' WHERE notice_id = ?").run(held.noticeId);
    db.close();
    const cRejects = readdirSync(join(d.ws, "rejects")).filter((f) => f.startsWith("c.jsonl-"));
    expect(cRejects.length).toBeGreaterThan(0);
    for (const f of cRejects) unlinkSync(join(d.ws, "rejects", f));
    const vs = checkWorkspace(input(root));
    const accounted = fresh(vs, "notice-accounted");
    expect(accounted).toContain(`a.jsonl:${applied.line} notice ${applied.noticeId} is neither applied, held nor in a rejects file: lost`);
    expect(accounted).toContain(`c.jsonl:${heldGone.line} notice ${heldGone.noticeId} is neither applied, held nor in a rejects file: lost`);
    const malformed = c.find((l) => l.bad === "malformed JSON")!;
    expect(accounted).toContain(`c.jsonl:${malformed.line} (malformed JSON) is neither applied, held nor in a rejects file: lost`);
    expect(fresh(vs, "notice-order").some((x) => x.startsWith(`notice ${held.noticeId} (sequence ${held.sequence}) is still held although`))).toBe(true);
    // The held notice comes back when the inputs are ingested again (the applied one is stale by then).
    const again = await reingestCheck(env, d.ws, root, d.spool);
    expect(again.some((v) => v.invariant === "reingest-idempotent" && v.detail.startsWith("re-ingesting took ") && v.detail.includes(heldGone.noticeId!)), JSON.stringify(again)).toBe(true);
  });

  it("--out-dir files that are not the store's, a missing one, and two certificates for one application", () => {
    const root = copy("outdir");
    const d = dirsOf(root);
    const files = readdirSync(d.out).filter((f) => f.endsWith(".pem")).sort();
    expect(files.length).toBeGreaterThan(3);
    // A certificate under another serial's name; one the store does not know (its row deleted); one missing.
    cpSync(join(d.out, files[0]!), join(d.out, "7fffffffffffffffffffffffffffffff.pem"));
    const db = writable(root);
    const gone = files[1]!.slice(0, -4);
    const idx = db.prepare("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'certificates' AND sql LIKE '%UNIQUE%application_id%'").pluck().all() as string[];
    for (const i of idx) db.exec(`DROP INDEX "${i}"`);
    // Two certificates of one application: its row copied under a fresh serial.
    const twice = db.prepare("SELECT application_id FROM certificates WHERE serial = ?").pluck().get(files[2]!.slice(0, -4)) as string;
    db.exec(`CREATE TEMP TABLE c AS SELECT * FROM certificates WHERE serial = '${files[2]!.slice(0, -4)}'`);
    db.exec("UPDATE temp.c SET serial = '7eeeeeeeeeeeeeeeeeeeeeeeeeeeeeee'");
    db.exec("INSERT INTO certificates SELECT * FROM temp.c");
    db.prepare("DELETE FROM certificates WHERE serial = ?").run(gone);
    db.close();
    const missing = files[3]!;
    unlinkSync(join(d.out, missing));
    const vs = checkWorkspace(input(root));
    expect(fresh(vs, "unique-serial")).toEqual(
      expect.arrayContaining([
        `--out-dir/7fffffffffffffffffffffffffffffff.pem holds the certificate with serial ${normaliseSerial(files[0]!.slice(0, -4))}`,
        `--out-dir/${files[1]}: a certificate the store does not hold (issued, then lost or issued again under another serial)`,
      ]),
    );
    const once = fresh(vs, "application-once");
    expect(once.some((x) => x.startsWith(`application ${twice} has 2 certificates`)), once.join("\n")).toBe(true);
    expect(once.some((x) => x.startsWith(`certificate ${missing.slice(0, -4)} of application`) && x.endsWith("is missing from --out-dir")), once.join("\n")).toBe(true);
  });

  it("the monitor: a CRL number going down on disk and in the store, a torn file, one number for two CRLs", async () => {
    const root = copy("monitor");
    const ws = dirsOf(root).ws;
    const m = new CrlMonitor(ws);
    m.sample();
    expect(m.violations).toEqual([]);
    // An older CRL over a newer one.
    cpSync(join(env.base, "crl", "27-sig.crl"), join(ws, "crl", "27-sig.crl"));
    // The store forgets its latest published CRL of 13-auth.
    const db = writable(root);
    db.prepare("DELETE FROM crls WHERE ca_id = '13-auth' AND number = (SELECT max(number) FROM crls WHERE ca_id = '13-auth' AND scope = '' AND path IS NOT NULL)").run();
    db.close();
    writeFileSync(join(ws, "crl", "13-sig.crl.pem"), readFileSync(join(ws, "crl", "13-sig.crl.pem"), "latin1").slice(0, 200));
    m.sample();
    expect(m.violations.map((v) => v.invariant).sort()).toEqual(["crl-number-monotonic", "crl-number-monotonic", "crl-readable"]);
    expect(m.violations.map((v) => v.detail)).toEqual(
      expect.arrayContaining([expect.stringMatching(/^crl\/27-sig.crl: CRL number went down on disk from \d+ to 1$/), expect.stringMatching(/^13-auth: the store's latest published CRL number went down from \d+ to \d+$/)]),
    );
    // Two workspaces publish their next 13-sig CRL from different revocations: same number, different CRLs.
    const other = copy("monitor-other");
    const odb = writable(other);
    const serial = odb.prepare("SELECT serial FROM certified WHERE ca_id = '13-sig' AND revoked_at IS NULL LIMIT 1").pluck().get() as string;
    odb.close();
    // root and other are two workspaces: other's revocation and root's CRL run side by side (one process start
    // less to wait for), other's CRL after its revocation
    await Promise.all([cli(other, ["revoke", "--serial", serial, "--reason", "loss"]), cli(root, ["crl", "generate", "--ca", "13-sig"])]);
    await cli(other, ["crl", "generate", "--ca", "13-sig"]);
    m.sample();
    cpSync(join(dirsOf(other).ws, "crl", "13-sig.crl"), join(ws, "crl", "13-sig.crl"));
    m.sample();
    expect(m.violations.filter((v) => v.invariant === "crl-number-reused").map((v) => v.detail)).toEqual([expect.stringMatching(/^13-sig: two different CRLs were published under number \d+/)]);
    unlinkSync(join(ws, "crl", "13-auth.crl"));
    m.sample();
    expect(m.violations.map((v) => v.detail)).toContain("crl/13-auth.crl was published and then disappeared");
  });

  it("exit statuses: 0, 13 and a lock-out are fine; another code or a stack trace is not", () => {
    const r = (code: number | null, stderr = "", signal: NodeJS.Signals | null = null): ProcResult => ({ args: [], code, signal, stdout: "", stderr, ms: 1 });
    expect(exitProblem(r(0))).toBeUndefined();
    expect(exitProblem(r(13, "jpki: error [ERR_PARTIAL] 3 of 9 notices were rejected"))).toBeUndefined();
    expect(classify(r(3, "jpki: error [ERR_WORKSPACE_LOCKED] the workspace is busy"), false)).toBe("locked");
    expect(classify(r(3, "jpki: error [ERR_WORKSPACE_CORRUPT] damaged"), false)).toBe("failed");
    expect(classify(r(null, "", "SIGKILL"), true)).toBe("killed");
    expect(classify(r(null, "", "SIGKILL"), false)).toBe("failed");
    expect(exitProblem(r(70, "jpki: error [ERR_INTERNAL] unexpected failure: TypeError: x is not a function\n    at CrlPublisher.publish (file:///x/publisher.js:28:42)"))).toMatch(/^stack trace/);
    expect(exitProblem(r(13, "TypeError: boom\n    at async run (file:///x/program.js:54:9)"))).toMatch(/^stack trace/);
  });
});
