/**
 * `jpki serve` as an operator runs it (spawns the built CLI): it serves what the certificates point to, keeps
 * the CRLs current by itself (a revocation reaches the served CRL within --crl-interval), shares one port
 * between worker processes, stops cleanly on SIGTERM, and fails fast with a typed error on a wrong passphrase
 * or a port already in use. It answers registered verifiers (署名検証者) only, and a verifier revoked while it
 * runs is refused within its refresh interval.
 */
import { execFileSync, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync, renameSync, writeFileSync } from "node:fs";
import { Agent, request } from "node:http";
import { connect, createServer, type Socket } from "node:net";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { pemOrDer } from "../../src/pki/pem.js";
import { describeCrl } from "../../src/profile/describe.js";
import { OcspClient } from "../../src/validation/ocsp-source.js";
import { generateResidents } from "../../src/registry/fixtures.js";
import pg from "pg";
import { until } from "../until.js";
import { cardKey, cli, onPostgres, openWorkspace, startServe, tempDir, tokyoWorkspace, workspaceStore, writeJsonl } from "./helpers.js";

let dir: string;
let ws: string;
let serial: string;
/** the issued certificate (PEM) and its holder's resident code */
let pem: string;
let residentCode: string;
/** a registered verifier's token, and the header that carries it */
let token: string;
let auth: { authorization: string };
const children: ChildProcess[] = [];

interface Running {
  child: ChildProcess;
  url: string;
  stderr: () => string;
  exited: Promise<number | null>;
}


async function serve(args: string[], env: Record<string, string> = {}, testing?: Parameters<typeof startServe>[3]): Promise<Running> {
  const log = args.includes("--access-log") ? [] : ["--access-log", "off"];
  const s = await startServe(ws, [...log, ...args], env, testing);
  children.push(s.child);
  return s;
}

/** A raw connection to the server: what the server sent until it ended the connection. */
function rawClient(port: number): { socket: Socket; answer: Promise<string> } {
  const socket = connect(port, "127.0.0.1");
  socket.on("error", () => undefined);
  const chunks: Buffer[] = [];
  socket.on("data", (c: Buffer) => chunks.push(c));
  return { socket, answer: new Promise((resolve) => socket.once("close", () => resolve(Buffer.concat(chunks).toString("utf8")))) };
}

/** The status, headers (lower-case names) and body of the one answer in `text`. */
function parseAnswer(text: string): { status: number; headers: Record<string, string>; body: string } {
  const [headText = "", body = ""] = text.split("\r\n\r\n");
  const [line = "", ...fields] = headText.split("\r\n");
  return { status: Number(line.split(" ")[1]), headers: Object.fromEntries(fields.map((f) => [f.slice(0, f.indexOf(":")).toLowerCase(), f.slice(f.indexOf(":") + 1).trim()])), body };
}

/** Resolves once a new connection to the port is refused: the server has begun to stop. */
async function refused(port: number): Promise<void> {
  for (;;) {
    const code = await new Promise<string | undefined>((resolve) => {
      const c = connect(port, "127.0.0.1");
      c.once("connect", () => (c.destroy(), resolve(undefined)));
      c.once("error", (e: NodeJS.ErrnoException) => resolve(e.code));
    });
    if (code === "ECONNREFUSED") return;
    await new Promise((r) => setTimeout(r, 20));
  }
}

afterEach(() => {
  for (const c of children.splice(0)) if (c.exitCode === null) c.kill("SIGKILL");
});

beforeAll(async () => {
  dir = tempDir("jpki-serve-");
  ws = join(dir, "ws");
  await tokyoWorkspace(ws);
  const residents = [...generateResidents({ count: 3, seed: "serve", prefectures: ["13"] })];
  writeJsonl(join(dir, "residents.jsonl"), residents);
  expect((await cli(["--workspace", ws, "registry", "import", join(dir, "residents.jsonl")], { cwd: dir })).code).toBe(0);
  const { pub } = cardKey(dir, "card");
  const issued = await cli(["--workspace", ws, "--json", "issue", "--resident", String(residents[0]!.residentCode), "--public-key", pub], { cwd: dir });
  expect(issued.code).toBe(0);
  serial = issued.json().serial;
  pem = issued.json().pem;
  residentCode = String(residents[0]!.residentCode);
  const added = await cli(["--workspace", ws, "--json", "verifier", "add", "--name", "serve test", "--kind", "government"], { cwd: dir });
  expect(added.code, added.stderr).toBe(0);
  token = added.json().token;
  auth = { authorization: `Bearer ${token}` };
}, 120_000);

describe("jpki serve", () => {
  it("publishes missing CRLs itself, serves them, publishes a revocation within --crl-interval, stops on SIGTERM", async () => {
    const s = await serve(["--crl-interval", "1"]);
    expect(s.stderr()).toMatch(/listening on http:\/\/127\.0\.0\.1:\d+/);
    expect(s.stderr()).toMatch(/the status page at http:\/\/127\.0\.0\.1:\d+\//);
    // nothing was published before: the schedule publishes every CA's first CRL
    // (asked for a minute by the clock: 100 times 100 ms apart were ≈ 10 s, a loaded host's first round can take longer)
    let crl = await fetch(`${s.url}/crl/13-sig.crl`, { headers: auth });
    await until(async () => (crl = await fetch(`${s.url}/crl/13-sig.crl`, { headers: auth })).status !== 404, "the first CRL", { timeoutMs: 60_000, everyMs: 100 }).catch(() => undefined);
    expect(crl.status).toBe(200);
    const etag = crl.headers.get("etag")!;
    expect(describeCrl(Buffer.from(await crl.arrayBuffer())).entries.length).toBe(0);
    expect((await cli(["--workspace", ws, "revoke", "--serial", serial, "--reason", "keyCompromise"], { cwd: dir })).code).toBe(0);
    // a poller with the old ETag gets 304 until the new CRL is there, then the CRL listing the serial
    // (asked for a minute by the clock: 100 times 100 ms apart, ≈ 10 s, were a loaded host's schedule round's margin)
    let listed = false;
    const statuses = new Set<number>();
    await until(async () => {
      const r = await fetch(`${s.url}/crl/13-sig.crl`, { headers: { ...auth, "if-none-match": etag } });
      statuses.add(r.status);
      if (r.status === 200) listed = describeCrl(Buffer.from(await r.arrayBuffer())).entries.some((e) => e.serialNumber === serial);
      else await r.arrayBuffer();
      return listed || r.status !== 304;
    }, "the CRL listing the serial", { timeoutMs: 60_000, everyMs: 100 }).catch(() => undefined);
    expect([...statuses].filter((c) => c !== 200 && c !== 304)).toEqual([]);
    expect(listed).toBe(true);
    // each CRL it published is named with its scope: a partition's line once read like the full CRL's
    expect(s.stderr()).toMatch(/CRL 13-sig #\d+ published/);
    expect(s.stderr()).toMatch(/CRL 13-sig\/\d{6} #\d+ published/);
    expect(s.stderr()).toMatch(/CRL 13-sig\/arl #\d+ published/);
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
  }, 180_000);

  it("shares one port between --workers 2 and stops them all on SIGTERM, sent as systemd sends it: to every process", async () => {
    const logFile = join(dir, "workers-access.jsonl");
    const s = await serve(["--workers", "2", "--no-schedule", "--access-log", logFile]);
    expect(s.stderr()).toMatch(/2 workers listening/);
    // Said once both listen: a request sent on the line is answered, not refused.
    expect((await fetch(`${s.url}/ca/13-sig.crt`, { headers: auth })).status).toBe(200);
    const codes = await Promise.all(Array.from({ length: 20 }, async () => {
      for (let i = 0; ; i++) {
        try {
          return (await fetch(`${s.url}/ca/13-sig.crt`, { headers: auth })).status;
        } catch (e) {
          if (i > 50) throw e; // a worker that died and is being replaced (not expected here)
          await new Promise((r) => setTimeout(r, 100));
        }
      }
    }));
    expect(codes.every((c) => c === 200)).toBe(true);
    // logrotate: the file moved away, then SIGHUP to the primary, which passes it on; each worker reopens the
    // log by its name. Requests until a line reaches the new file (polled, no timing asserted).
    renameSync(logFile, `${logFile}.1`);
    s.child.kill("SIGHUP");
    // A minute by the clock (200 requests 50 ms apart were ≈ 10 s: a signal passed on to loaded workers and their
    // log threads' next round).
    const afterCodes: number[] = [];
    await until(async () => {
      if (existsSync(logFile) && readFileSync(logFile, "utf8").includes("/ca/13-sig.crt")) return true;
      afterCodes.push((await fetch(`${s.url}/ca/13-sig.crt`, { headers: auth })).status);
      return false;
    }, "a line in the reopened log", { timeoutMs: 60_000, everyMs: 50 }).catch(() => undefined);
    expect(afterCodes.filter((c) => c !== 200)).toEqual([]);
    const after = afterCodes.length;
    expect(readFileSync(logFile, "utf8")).toContain("/ca/13-sig.crt");
    // Each worker gets SIGTERM twice, from systemd and from its primary: the second used to kill it mid-stop.
    const workers = execFileSync("ps", ["-o", "pid=", "--ppid", String(s.child.pid)]).toString().trim().split(/\s+/).map(Number);
    expect(workers).toHaveLength(2);
    s.child.kill("SIGTERM");
    for (const pid of workers) process.kill(pid, "SIGTERM");
    expect(await s.exited).toBe(0);
    expect(s.stderr()).not.toMatch(/while stopping/);
    // every answer in the access log: a worker killed before its log's thread had written them lost them
    // (in the moved file or the new one, each exactly once: the primary and the workers all lived through SIGHUP)
    const logged = [`${logFile}.1`, logFile].flatMap((f) => readFileSync(f, "utf8").trim().split("\n")).filter((l) => l.includes("/ca/13-sig.crt"));
    expect(logged).toHaveLength(codes.length + 1 + after);
    expect(s.stderr()).not.toMatch(/exited \(SIGHUP\)|starting another/);
  }, 180_000);

  it("--workers with JPKI_OCSP_PASSPHRASE: the workers facing the network hold neither the CA passphrase nor the token PIN", async () => {
    // The primary runs the schedule with the CA keys; its workers serve, OCSP under the responders' own passphrase.
    // The responders' passphrase is the CA's here: an earlier test's serve may have wrapped the responder keys under it.
    const s = await serve(["--workers", "2", "--crl-interval", "1"], { JPKI_OCSP_PASSPHRASE: "correct horse", JPKI_PKCS11_PIN: "pin-never-used" });
    expect(s.stderr()).toMatch(/2 workers listening/);
    const workers = execFileSync("ps", ["-o", "pid=", "--ppid", String(s.child.pid)]).toString().trim().split(/\s+/).map(Number);
    expect(workers).toHaveLength(2);
    const environ = (pid: number) => readFileSync(`/proc/${pid}/environ`, "latin1").split("\0");
    expect(environ(s.child.pid!)).toContain("JPKI_PASSPHRASE=correct horse"); // the primary's, as given
    for (const pid of workers) {
      const env = environ(pid);
      expect(env.filter((e) => /^JPKI_(PASSPHRASE|PKCS11_PIN)=/.test(e))).toEqual([]);
      expect(env).toContain("JPKI_OCSP_PASSPHRASE=correct horse");
    }
    // and they serve: the schedule publishes the first CRLs, which a worker hands out
    // (asked for a minute by the clock: 100 times 100 ms apart were ≈ 10 s, a loaded host's first round can take longer)
    let crl = await fetch(`${s.url}/crl/13-sig.crl`, { headers: auth });
    await until(async () => (crl = await fetch(`${s.url}/crl/13-sig.crl`, { headers: auth })).status !== 404, "the first CRL", { timeoutMs: 60_000, everyMs: 100 }).catch(() => undefined);
    expect(crl.status).toBe(200);
    // and answer OCSP with the responder keys the primary issued under JPKI_OCSP_PASSPHRASE
    const certificate = pemOrDer(Buffer.from(pem), ["CERTIFICATE"], "certificate");
    const issuer = pemOrDer(readFileSync(join(ws, "ca", "13-sig.pem")), ["CERTIFICATE"], "certificate");
    const ocsp = new OcspClient({ url: `${s.url}/ocsp/13-sig`, bearerToken: token });
    let answer = await ocsp.check({ certificate, issuer }, new Date());
    await until(async () => (answer = await ocsp.check({ certificate, issuer }, new Date())).status !== "no-answer", "an OCSP answer", { timeoutMs: 60_000, everyMs: 100 }).catch(() => undefined);
    expect(answer.status).not.toBe("no-answer");
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
  }, 180_000);

  it("answers registered verifiers only; refuses a verifier revoked while it runs; never logs a token", async () => {
    const logFile = join(dir, "access.jsonl");
    const other = await cli(["--workspace", ws, "--json", "verifier", "add", "--name", "to be revoked", "--kind", "private"], { cwd: dir });
    expect(other.code, other.stderr).toBe(0);
    const { id, token: doomed } = other.json() as { id: string; token: string };
    const s = await serve(["--no-schedule", "--access-log", logFile]);
    const get = (path: string, headers: Record<string, string> = {}) => fetch(`${s.url}${path}`, { headers });
    expect((await get("/healthz")).status).not.toBe(401); // open by default (503 while no CRL is published: that is health, not access)
    const none = await get("/ca/13-sig.crt");
    expect(none.status).toBe(401);
    expect(none.headers.get("www-authenticate")).toBe('Bearer realm="jpki"');
    expect(await none.text()).toBe('{"error":"unauthorized","code":"unauthorized"}');
    const wrong = await get("/ca/13-sig.crt", { authorization: `Bearer ${doomed.slice(0, -4)}AAAA` });
    expect(wrong.status).toBe(401);
    expect(wrong.headers.get("www-authenticate")).toMatch(/error="invalid_token"/);
    expect((await get("/ca/13-sig.crt", { authorization: `Bearer ${doomed}` })).status).toBe(200);
    expect((await get("/ca/13-sig.crt", auth)).status).toBe(200);
    const revoked = await cli(["--workspace", ws, "verifier", "revoke", id], { cwd: dir });
    expect(revoked.code, revoked.stderr).toBe(0);
    // the running server re-reads the registrations every second: refused within that (polled, no timing asserted:
    // a minute by the clock, where 200 questions 50 ms apart were ≈ 10 s)
    let status = 200;
    await until(async () => (status = (await get("/ca/13-sig.crt", { authorization: `Bearer ${doomed}` })).status) !== 200, "the revoked verifier refused", { timeoutMs: 60_000, everyMs: 50 }).catch(() => undefined);
    expect(status).toBe(401);
    expect((await get("/ca/13-sig.crt", auth)).status).toBe(200); // the others are unaffected
    const again = await cli(["--workspace", ws, "verifier", "revoke", id], { cwd: dir });
    expect(again.code).toBe(14);
    expect(again.stderr).toMatch(/ERR_VERIFIER_REVOKED/);
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
    // what each verifier fetched is in the store (written in batches, flushed at the latest on SIGTERM)
    const w = await openWorkspace(ws);
    try {
      const fetched = await w.store.listVerifierFetches({ verifierId: id });
      expect(fetched.map((f) => [f.scope, f.path, f.status])).toContainEqual(["ca-certificate", "/ca/13-sig.crt", 200]);
    } finally {
      await w.close();
    }
    const lines = readFileSync(logFile, "utf8").trim().split("\n").map((l) => JSON.parse(l) as { url: string; status: number; verifier: string });
    expect(lines.filter((l) => l.status === 401).every((l) => l.verifier === "anonymous")).toBe(true);
    expect(lines.some((l) => l.verifier === id && l.status === 200)).toBe(true);
    for (const secret of [token, doomed]) {
      expect(readFileSync(logFile, "utf8")).not.toContain(secret);
      expect(s.stderr()).not.toContain(secret);
      expect(revoked.stderr + revoked.stdout + again.stderr).not.toContain(secret);
    }
  }, 180_000);

  it("stops on SIGTERM under keep-alive load: the answer in flight is given and recorded, a request arriving then gets 503 stopping, a second SIGTERM changes nothing, exit 0", async () => {
    const s = await serve(["--no-schedule"]);
    const port = Number(new URL(s.url).port);
    const disclosures = async () => {
      const w = await openWorkspace(ws);
      try {
        return (await w.store.listDisclosures({ residentCode })).length;
      } finally {
        await w.close();
      }
    };
    const rowsBefore = await disclosures();
    const body = JSON.stringify({ certificate: pem, purpose: "signature" });
    const head = (extra = "") => `Host: x\r\nAuthorization: ${auth.authorization}\r\n${extra}\r\n`;
    // Keep-alive clients asking POST /v1/validate all through the stop: each 200 they get must be recorded.
    const agent = new Agent({ keepAlive: true, maxSockets: 8 });
    let loading = true;
    let ok = 0;
    const ask = () =>
      new Promise<void>((resolve) => {
        const req = request(`${s.url}/v1/validate`, { method: "POST", agent, headers: { ...auth, "content-type": "application/json" } }, (res) => {
          res.resume();
          res.on("end", () => {
            if (res.statusCode === 200) ok++;
            resolve();
          });
        });
        req.on("error", () => setTimeout(resolve, 20)); // refused or reset once the server stops
        req.end(body);
      });
    const load = Promise.all(Array.from({ length: 8 }, async () => {
      while (loading) await ask();
    }));
    // In flight at the stop: the headers and the start of the body. Arriving during the stop: a request whose
    // first line came before the stop (so its connection is not idle and stays) and the rest after.
    const inFlight = rawClient(port);
    const late = rawClient(port);
    await new Promise((resolve) => inFlight.socket.write(`POST /v1/validate HTTP/1.1\r\n${head(`Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n`)}${body.slice(0, 10)}`, resolve));
    await new Promise((resolve) => late.socket.write("GET /ca/13-sig.crt HTTP/1.1\r\n", resolve));
    // an answer on a new connection: by then the server has read what the two sent before it
    expect((await fetch(`${s.url}/ca/13-sig.crt`, { headers: auth })).status).toBe(200);
    s.child.kill("SIGTERM");
    await refused(port);
    s.child.kill("SIGTERM"); // as systemd does to every process of the unit, beside the --workers primary's own
    late.socket.write(head());
    const refusal = parseAnswer(await late.answer);
    expect(refusal.status).toBe(503);
    expect(refusal.headers.connection).toBe("close");
    expect(JSON.parse(refusal.body)).toMatchObject({ code: "stopping" });
    inFlight.socket.write(body.slice(10));
    const answer = parseAnswer(await inFlight.answer);
    expect(answer.status).toBe(200);
    expect(answer.headers.connection).toBe("close");
    expect(await s.exited).toBe(0);
    loading = false;
    await load;
    agent.destroy();
    expect(ok).toBeGreaterThan(0);
    expect(s.stderr()).not.toMatch(/^\s+at /m); // no stack trace
    // every answer given has its disclosure record: the load's 200s and the one in flight (an answer cut by the
    // stop may have one too: recorded before it was given, never the other way round)
    expect((await disclosures()) - rowsBefore).toBeGreaterThanOrEqual(ok + 1);
  }, 60_000);

  // On SQLite the write gives up at its own deadline (nothing hangs); PostgreSQL cannot take back a statement sent.
  it.skipIf(!onPostgres)("stops on SIGTERM while a disclosure write waits for a lock another session holds: exit 0 while it is still held, saying what it abandoned", async () => {
    // Test-only settings (Io.testing): the store bound is 0.5 s instead of 5 s, and the store's close cuts what is
    // still out after 0.2 s instead of 2 s (the same waits and the same cut, a tenth as long); the lock wait is longer
    // than the test, so a stop that waited for the lock fails it (with the default 20 s lock_timeout it ended anyway,
    // and the test passed as slowly).
    const s = await serve(["--no-schedule"], {}, { storeWaitMs: 500, postgres: { closeWaitMs: 200, lockTimeoutMs: 600_000 } });
    const admin = new pg.Client({ connectionString: await workspaceStore(ws) });
    await admin.connect();
    try {
      await admin.query("BEGIN");
      await admin.query("LOCK TABLE disclosures IN ACCESS EXCLUSIVE MODE");
      // the verifier is told 503 store-unresponsive once the store has not answered within the bound
      const r = await fetch(`${s.url}/v1/validate`, { method: "POST", headers: { ...auth, "content-type": "application/json" }, body: JSON.stringify({ certificate: pem, purpose: "signature", legalBasis: "pension" }), signal: AbortSignal.timeout(30_000) });
      expect(r.status).toBe(503);
      expect(((await r.json()) as { code: string }).code).toBe("store-unresponsive");
      s.child.kill("SIGTERM");
      // it waited for the lock (here longer than the test; on a server that stopped answering, for good) and said nothing of it
      expect(await s.exited).toBe(0);
      expect(s.stderr()).toMatch(/stopping without the disclosure log's write in flight: ERR_STORE_UNRESPONSIVE: .*a disclosure write of 1 record within 500 ms: abandoned/);
      // the lock was still held all along: the stop did not wait for it
      expect((await admin.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_locks WHERE relation = 'disclosures'::regclass AND granted")).rows[0]!.n).toBeGreaterThan(0);
    } finally {
      await admin.query("ROLLBACK").catch(() => undefined);
      await admin.end();
    }
  }, 90_000);

  it("holds at most --max-connections connections: one more gets 503 too-many-connections at once; 0 is refused", async () => {
    const s = await serve(["--no-schedule", "--max-connections", "1"]);
    const port = Number(new URL(s.url).port);
    const held = rawClient(port);
    // the held connection is the server's once it has answered on it (it is kept alive)
    held.socket.write(`GET /ca/13-sig.crt HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth.authorization}\r\n\r\n`);
    await new Promise((resolve) => held.socket.once("data", resolve));
    const over = rawClient(port);
    over.socket.write(`GET /ca/13-sig.crt HTTP/1.1\r\nHost: x\r\nAuthorization: ${auth.authorization}\r\n\r\n`);
    const a = parseAnswer(await over.answer);
    expect(a.status).toBe(503);
    expect(JSON.parse(a.body)).toMatchObject({ code: "too-many-connections" });
    held.socket.destroy();
    await held.answer;
    // below the cap again (the server sees the close a moment after the client): served
    let status = 503;
    for (let i = 0; status === 503 && i < 50; i++) {
      status = (await fetch(`${s.url}/ca/13-sig.crt`, { headers: { ...auth, connection: "close" } })).status;
      if (status === 503) await new Promise((r) => setTimeout(r, 20));
    }
    expect(status).toBe(200);
    s.child.kill("SIGTERM");
    expect(await s.exited).toBe(0);
    const zero = await cli(["--workspace", ws, "serve", "--no-schedule", "--max-connections", "0"], { cwd: dir });
    expect(zero.code).toBe(2);
    expect(zero.stderr).toMatch(/ERR_USAGE.*--max-connections/);
  }, 60_000);

  it("fails fast with a typed error: a wrong passphrase, a port in use, a bad --listen", async () => {
    const wrong = await serve([], { JPKI_PASSPHRASE: "wrong" });
    expect(await wrong.exited).not.toBe(0);
    expect(wrong.stderr()).toMatch(/ERR_PASSPHRASE_WRONG/);
    expect(wrong.stderr()).not.toMatch(/listening/); // the keys open before the port does
    const blocker = createServer().listen(0, "127.0.0.1");
    await new Promise((r) => blocker.once("listening", r));
    const port = (blocker.address() as { port: number }).port;
    const busy = await cli(["--workspace", ws, "serve", "--no-schedule", "--listen", `127.0.0.1:${port}`], { cwd: dir });
    blocker.close();
    expect(busy.code).toBe(2);
    expect(busy.stderr).toMatch(/ERR_USAGE.*EADDRINUSE/);
    const bad = await cli(["--workspace", ws, "serve", "--listen", "nowhere"], { cwd: dir });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/ERR_USAGE/);
    writeFileSync(join(dir, "only-cert.pem"), "x");
    const half = await cli(["--workspace", ws, "serve", "--tls-cert", join(dir, "only-cert.pem")], { cwd: dir });
    expect(half.stderr).toMatch(/both --tls-cert and --tls-key/);
  }, 60_000);
});
