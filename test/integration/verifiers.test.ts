/**
 * Registered verifiers only (issue 9 point 6), over real HTTPS on loopback: `jpki verifier add` issues a token
 * and client certificates (from the verifier CA, for a CSR or a key made here); the server answers them and
 * refuses everything else — no credential, a wrong token, a self-signed client certificate, a certificate of a
 * revoked verifier — with 401, a verifier on an operator route with 403, a verifier past its rate with 429
 * and Retry-After; /healthz stays open; each verifier's fetches land in the store; no token in any log.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { connect, type AddressInfo } from "node:net";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { buildServer } from "../../src/server/app.js";
import type { VerifierAccess } from "../../src/server/access.js";
import { lineSink } from "../../src/server/access-log.js";
import type { Workspace } from "../../src/workspace/workspace.js";
import { cli, openWorkspace, tempDir } from "./helpers.js";

let dir: string;
let wsDir: string;
let ws: Workspace;
let app: FastifyInstance;
let access: VerifierAccess;
let base: string;
const log: string[] = [];
const errors: string[] = [];
let serverCert: Buffer;
/** the verifiers: a token one, a certificate one (key made here), a CSR one (revoked later) */
const v = {} as Record<"token" | "cert" | "csr", { id: string; token?: string; cert?: Buffer; key?: Buffer }>;

interface Res {
  status: number;
  headers: Record<string, string | string[] | undefined>;
  body: string;
}

function get(path: string, o: { headers?: Record<string, string | string[]>; cert?: Buffer; key?: Buffer } = {}): Promise<Res> {
  return new Promise((resolve, reject) => {
    // A new connection each time (agent: false): a client certificate is judged at the handshake.
    const req = request(`${base}${path}`, { ca: serverCert, headers: o.headers ?? {}, agent: false, ...(o.cert ? { cert: o.cert, key: o.key } : {}) }, (res) => {
      let body = "";
      res.setEncoding("latin1");
      res.on("data", (c: string) => (body += c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

const bearer = (token: string) => ({ authorization: `Bearer ${token}` });

/**
 * A verifier's fetch records once at least `n` are written: the server queues a record when its response has
 * finished (onResponse), which may come just after the client has read the whole response.
 */
async function fetchesOf(id: string, n: number) {
  for (let i = 0; ; i++) {
    await access.flush();
    const got = await ws.store.listVerifierFetches({ verifierId: id });
    if (got.length >= n || i === 100) return got;
    await new Promise((r) => setTimeout(r, 20));
  }
}

beforeAll(async () => {
  dir = tempDir("jpki-verifiers-");
  wsDir = join(dir, "ws");
  const env = { JPKI_PASSPHRASE: "pw" };
  expect((await cli(["--workspace", wsDir, "ca", "init", "-p", "13"], { cwd: dir, env })).code).toBe(0);
  // every scope (the ARLs too), so /healthz finds every CRL fresh
  expect((await cli(["--workspace", wsDir, "crl", "generate", "--prefecture", "13", "--partitions", "all"], { cwd: dir, env })).code).toBe(0);
  // a small rate for the test: bursts of 3, one a second after that
  const configPath = join(wsDir, "config.json");
  writeFileSync(configPath, JSON.stringify({ ...JSON.parse(readFileSync(configPath, "utf8")), verifierRateLimit: { perSecond: 1, burst: 3 } }));

  const add = async (args: string[]) => {
    const r = await cli(["--workspace", wsDir, "--json", "verifier", "add", ...args], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    return r.json() as { id: string; token?: string; files?: { key?: string; certificate: string; ca: string } };
  };
  const t = await add(["--name", "デジタル庁", "--kind", "government"]);
  v.token = { id: t.id, token: t.token! };
  const c = await add(["--name", "Example Trust", "--kind", "private", "--no-token", "--client-cert", "--out", join(dir, "cert")]);
  expect(c.token).toBeUndefined();
  expect(statSync(c.files!.key!).mode & 0o777).toBe(0o600);
  v.cert = { id: c.id, cert: readFileSync(c.files!.certificate), key: readFileSync(c.files!.key!) };
  // a CSR: the verifier keeps its key
  const csrKey = join(dir, "csr.key");
  execFileSync("openssl", ["req", "-new", "-newkey", "rsa:2048", "-nodes", "-keyout", csrKey, "-out", join(dir, "v.csr"), "-subj", "/CN=ignored", "-sha256"], { stdio: "pipe" });
  const s = await add(["--name", "CSR Verifier", "--kind", "private", "--no-token", "--csr", join(dir, "v.csr"), "--out", join(dir, "csr")]);
  expect(s.files!.key).toBeUndefined();
  v.csr = { id: s.id, cert: readFileSync(s.files!.certificate), key: readFileSync(csrKey) };
  // the certificates chain to the verifier CA for client authentication, as openssl sees it
  for (const f of [c.files!, s.files!]) {
    expect(execFileSync("openssl", ["verify", "-CAfile", f.ca, "-purpose", "sslclient", f.certificate]).toString()).toMatch(/: OK/);
  }

  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "srv.key"), "-out", join(dir, "srv.crt"), "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
    { stdio: "pipe" },
  );
  serverCert = readFileSync(join(dir, "srv.crt"));
  ws = await openWorkspace(wsDir);
  ({ app, access } = await buildServer(ws, {
    tls: { cert: serverCert, key: readFileSync(join(dir, "srv.key")) },
    accessLog: lineSink((s) => log.push(s)),
    // rate-limit time stands still: no refill during the test, whatever the machine's speed
    access: { now: () => 0, flushMs: 60_000, onError: (e) => errors.push(String(e)) },
    // short, for the connection that never starts its handshake below
    timeouts: { headersMs: 500 },
  }));
  await app.listen({ host: "127.0.0.1", port: 0 });
  base = `https://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
}, 120_000);

afterAll(async () => {
  await app?.close();
  await ws?.close();
});

describe("registered verifiers only, over HTTPS", () => {
  it("refuses no credential and a wrong token with 401 and nothing more; /healthz stays open", async () => {
    const none = await get("/crl/13-sig.crl");
    expect(none.status).toBe(401);
    expect(none.headers["www-authenticate"]).toBe('Bearer realm="jpki"');
    expect(none.body).toBe('{"error":"unauthorized","code":"unauthorized"}');
    // the real token with its last character changed (to another of the 16 a 256-bit token can end with)
    const t = v.token.token!;
    for (const wrong of [`${t.slice(0, -1)}${t.endsWith("A") ? "E" : "A"}`, "not-a-token", ""]) {
      const r = await get("/crl/13-sig.crl", { headers: { authorization: `Bearer ${wrong}` } });
      expect(r.status).toBe(401);
      expect(r.headers["www-authenticate"]).toBe('Bearer realm="jpki", error="invalid_token"');
      expect(r.body).toBe('{"error":"unauthorized","code":"unauthorized"}');
    }
    expect((await get("/crl/13-sig.crl", { headers: { authorization: `Basic ${Buffer.from("a:b").toString("base64")}` } })).status).toBe(401);
    expect((await get("/healthz")).status).toBe(200);
    // unknown paths need a credential too: nothing to probe anonymously
    expect((await get("/nothing-here")).status).toBe(401);
  });

  it("closes a connection that never starts its TLS handshake", async () => {
    const port = (app.server.address() as AddressInfo).port;
    const silent = connect(port, "127.0.0.1");
    await new Promise<void>((resolve) => {
      silent.on("error", () => undefined);
      silent.once("close", () => resolve());
    });
  });

  it("refuses Authorization sent twice with 400 (invalid_request), whichever of the two is the verifier's", async () => {
    // node reads only the first: a proxy reading the last must never see another caller than we do
    const t = v.token.token!;
    for (const pair of [[`Bearer ${t}`, "Bearer not-a-token"], ["Bearer not-a-token", `Bearer ${t}`], [`Bearer ${t}`, `Bearer ${t}`]]) {
      const r = await get("/crl/13-sig.crl", { headers: { authorization: pair } });
      expect(r.status, pair.join(" / ")).toBe(400);
      expect(r.headers["www-authenticate"]).toBe('Bearer realm="jpki", error="invalid_request"');
      expect(r.body).toBe('{"error":"bad request","code":"bad-request"}');
    }
  });

  it("answers a valid token with 200 and records the fetch in the store", async () => {
    const r = await get("/crl/13-sig.crl", { headers: bearer(v.token.token!) });
    expect(r.status).toBe(200);
    expect(r.headers["content-type"]).toBe("application/pkix-crl");
    const fetched = await fetchesOf(v.token.id, 1);
    expect(fetched.map((f) => [f.scope, f.path, f.status, f.count])).toEqual([["crl", "/crl/13-sig.crl", 200, 1]]);
    // polls of one file within a flush interval are one record with their count (two: the burst is 3, and the
    // rate limit's clock stands still here)
    for (let i = 0; i < 2; i++) {
      expect((await get("/crl/13-sig.crl", { headers: { ...bearer(v.token.token!), "if-none-match": r.headers.etag as string } })).status).toBe(304);
    }
    const polled = (await fetchesOf(v.token.id, 2)).filter((f) => f.status === 304);
    expect(polled.reduce((n, f) => n + f.count, 0)).toBe(2);
    // and the operator reads them, newest first
    const out = await cli(["--workspace", wsDir, "--json", "verifier", "fetches", v.token.id], { cwd: dir });
    expect(out.code).toBe(0);
    const listed = (JSON.parse(out.stdout) as { fetches: Array<{ verifier: string; path: string; status: number; count: number }> }).fetches;
    expect(listed.every((f) => f.verifier === v.token.id && f.path === "/crl/13-sig.crl")).toBe(true);
    expect(listed.filter((f) => f.status === 304).reduce((n, f) => n + f.count, 0)).toBe(2);
    expect(listed.at(-1)).toMatchObject({ status: 200, count: 1 });
    const unknown = await cli(["--workspace", wsDir, "verifier", "fetches", "v-nobody"], { cwd: dir });
    expect(unknown.code).toBe(14);
  });

  it("answers a client certificate from the verifier CA over mTLS (key made here, or the verifier's own from a CSR)", async () => {
    for (const who of [v.cert, v.csr]) {
      const r = await get("/ca/13-sig.crt", { cert: who.cert!, key: who.key! });
      expect(r.status, who.id).toBe(200);
      expect(r.headers["content-type"]).toBe("application/pkix-cert");
    }
    expect((await fetchesOf(v.csr.id, 1)).map((f) => f.status)).toEqual([200]);
  });

  it("refuses a self-signed client certificate, and a certificate together with another verifier's token", async () => {
    const self = await get("/ca/13-sig.crt", { cert: serverCert, key: readFileSync(join(dir, "srv.key")) });
    expect(self.status).toBe(401);
    expect(self.headers["www-authenticate"]).toMatch(/invalid_token/);
    const mixed = await get("/ca/13-sig.crt", { cert: v.cert.cert!, key: v.cert.key!, headers: bearer(v.token.token!) });
    expect(mixed.status).toBe(401);
  });

  it("answers 403 to a verifier on an operator route (/metrics)", async () => {
    const r = await get("/metrics", { headers: bearer(v.token.token!) });
    expect(r.status).toBe(403);
    expect(r.body).toBe('{"error":"forbidden","code":"forbidden"}');
  });

  it("answers 429 with Retry-After once a verifier's burst is spent; other verifiers are unaffected", async () => {
    // the token verifier has used 3 requests above (200, 401-mixed counts nothing, 403 counts): spend the rest
    const statuses: number[] = [];
    for (let i = 0; i < 4; i++) statuses.push((await get("/ca/13-sig.crt", { headers: bearer(v.token.token!) })).status);
    expect(statuses).toContain(429);
    expect(statuses.slice(statuses.indexOf(429)).every((s) => s === 429)).toBe(true);
    const limited = await get("/ca/13-sig.crt", { headers: bearer(v.token.token!) });
    expect(limited.status).toBe(429);
    expect(Number(limited.headers["retry-after"])).toBeGreaterThanOrEqual(1);
    expect((await get("/ca/13-sig.crt", { cert: v.cert.cert!, key: v.cert.key! })).status).toBe(200);
  });

  it("refuses a revoked verifier's certificate once the registrations are re-read", async () => {
    expect((await cli(["--workspace", wsDir, "verifier", "revoke", v.csr.id], { cwd: dir })).code).toBe(0);
    await access.refresh(); // what the server does every second by itself (serve.test.ts checks that)
    const r = await get("/ca/13-sig.crt", { cert: v.csr.cert!, key: v.csr.key! });
    expect(r.status).toBe(401);
    const listed = await cli(["--workspace", wsDir, "--json", "verifier", "list"], { cwd: dir });
    const rows = (listed.json() as { verifiers: Array<{ id: string; revokedAt: string | null; credentials: string[] }> }).verifiers;
    expect(rows.find((x) => x.id === v.csr.id)?.revokedAt).toMatch(/^\d{4}-/);
    expect(rows.find((x) => x.id === v.token.id)).toMatchObject({ revokedAt: null, credentials: ["token"] });
    expect(listed.stdout).not.toContain(v.token.token!);
  });

  it("logs every request with the verifier id or anonymous, and never a token", async () => {
    // a token where none belongs (RFC 6750 §2.3's query parameter, or in the path) is refused and not logged
    const t = v.token.token!;
    expect((await get(`/crl/13-sig.crl?access_token=${t}`)).status).toBe(401);
    expect((await get(`/crl/${t}.crl`)).status).toBe(401);
    expect((await get(`/crl/13-sig.crl?x=1&access_token=someone-elses-secret`)).status).toBe(401);
    expect(log.join("")).not.toContain("someone-elses-secret");
    const lines = log.map((l) => JSON.parse(l) as { status: number; verifier: string });
    expect(lines.some((l) => l.verifier === v.token.id && l.status === 200)).toBe(true);
    expect(lines.some((l) => l.verifier === v.cert.id)).toBe(true);
    expect(lines.filter((l) => l.status === 401).every((l) => l.verifier === "anonymous")).toBe(true);
    expect(log.join("")).not.toContain(v.token.token!);
    expect(log.join("")).not.toContain(v.token.token!.slice(6));
    expect(errors).toEqual([]);
  });
});

describe("jpki verifier: typed errors", () => {
  it("refuses an unknown id, a bad kind, a bad CSR, and --no-token without a certificate, each with its code", async () => {
    const run = (args: string[]) => cli(["--workspace", wsDir, ...args], { cwd: dir, env: { JPKI_PASSPHRASE: "pw" } });
    const unknown = await run(["verifier", "revoke", "v-000000000000"]);
    expect(unknown.code).toBe(14);
    expect(unknown.stderr).toMatch(/ERR_VERIFIER_UNKNOWN/);
    expect((await run(["verifier", "add", "--name", "x", "--kind", "court"])).code).toBe(2);
    expect((await run(["verifier", "add", "--name", "x", "--kind", "private", "--no-token"])).stderr).toMatch(/ERR_USAGE/);
    writeFileSync(join(dir, "bad.csr"), "-----BEGIN CERTIFICATE REQUEST-----\nAAAA\n-----END CERTIFICATE REQUEST-----\n");
    expect((await run(["verifier", "add", "--name", "x", "--kind", "private", "--csr", join(dir, "bad.csr")])).stderr).toMatch(/ERR_CSR_MALFORMED/);
    const wrongPass = await cli(["--workspace", wsDir, "verifier", "add", "--name", "x", "--kind", "private", "--client-cert", "--out", join(dir, "x")], { cwd: dir, env: { JPKI_PASSPHRASE: "wrong" } });
    expect(wrongPass.stderr).toMatch(/ERR_PASSPHRASE_WRONG/);
    expect((await run(["verifier", "add", "--name", "\u0007", "--kind", "private"])).stderr).toMatch(/ERR_VERIFIER_INVALID/);
  });
});
