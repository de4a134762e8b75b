/**
 * OCSP against a real `jpki serve` (the built CLI, listening on loopback), asked by the real `openssl ocsp`:
 * good, revoked (time and reason) and unknown, with and without a nonce, the delegated signer validated from
 * the CA alone (-CAfile) and pinned (-VAfile); RFC 5019 GET with its caching headers; a revocation committed
 * by another process while the server runs reaches the answers; new certificates name the responder in AIA.
 * Every request carries a registered verifier's token (openssl: -header), as `jpki serve` answers no one else.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toPem } from "../../src/pki/pem.js";
import { generateResidents } from "../../src/registry/fixtures.js";
import { until } from "../until.js";
import { cardKey, cli, openWorkspace, startServe, tempDir, tokyoWorkspace, writeJsonl, type RunningServe } from "./helpers.js";

let dir: string;
let ws: string;
let caPem: string;
/** the resident left without a certificate: issued one by the rolled-over CA */
let spareResident = "";
const ee: Array<{ serial: string; path: string }> = [];
let server: RunningServe | undefined;
/** a registered verifier's token */
let token = "";


function ocsp(args: string[]): { out: string; status: number } {
  try {
    const out = execFileSync("openssl", ["ocsp", ...args], { encoding: "utf8", stdio: ["ignore", "pipe", "pipe"] });
    return { out, status: 0 };
  } catch (e) {
    const err = e as { stdout?: string; stderr?: string; status?: number };
    return { out: `${err.stdout ?? ""}${err.stderr ?? ""}`, status: err.status ?? 1 };
  }
}

/** openssl ocsp exits 0 and prints "Response verify OK" on stderr; run it through a shell to collect both. */
function ask(certArgs: string[], extra: string[] = []): string {
  // a responder error makes openssl exit 1: the text says what it was
  const auth = certArgs.includes("-url") ? ["-header", `Authorization=Bearer ${token}`] : [];
  return execFileSync("sh", ["-c", `openssl ocsp ${[...certArgs, ...extra, ...auth].map((a) => `'${a}'`).join(" ")} 2>&1 || true`], { encoding: "utf8" });
}

function httpGet(url: string, headers: Record<string, string> = {}, method = "GET"): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method, headers: { authorization: `Bearer ${token}`, ...headers } }, (res) => {
      const chunks: Buffer[] = [];
      res.on("data", (c: Buffer) => chunks.push(c));
      res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body: Buffer.concat(chunks) }));
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end();
  });
}

beforeAll(async () => {
  dir = tempDir("jpki-ocsp-");
  ws = join(dir, "ws");
  await tokyoWorkspace(ws);
  const residents = [...generateResidents({ count: 4, seed: "ocsp", prefectures: ["13"] })];
  writeJsonl(join(dir, "residents.jsonl"), residents);
  spareResident = String(residents[3]!.residentCode);
  expect((await cli(["--workspace", ws, "registry", "import", join(dir, "residents.jsonl")], { cwd: dir })).code).toBe(0);
  for (let i = 0; i < 3; i++) {
    const { pub } = cardKey(dir, `card${i}`);
    const issued = await cli(["--workspace", ws, "--json", "issue", "--resident", String(residents[i]!.residentCode), "--public-key", pub], { cwd: dir });
    expect(issued.code, issued.stderr).toBe(0);
    ee.push({ serial: issued.json().serial, path: issued.json().path });
  }
  // one revoked before the server starts
  expect((await cli(["--workspace", ws, "revoke", "--serial", ee[1]!.serial, "--reason", "keyCompromise"], { cwd: dir })).code).toBe(0);
  const w = await openWorkspace(ws);
  caPem = join(dir, "ca.pem");
  writeFileSync(caPem, toPem((await w.store.getCa("13-sig"))!.certificateDer, "CERTIFICATE"));
  await w.close();

  // /metrics open to the operator's scraper; everything else for registered verifiers only
  const configPath = join(ws, "config.json");
  writeFileSync(configPath, JSON.stringify({ ...JSON.parse(readFileSync(configPath, "utf8")), openRoutes: ["/healthz", "/metrics"] }));
  const added = await cli(["--workspace", ws, "--json", "verifier", "add", "--name", "ocsp test", "--kind", "government"], { cwd: dir });
  expect(added.code, added.stderr).toBe(0);
  token = added.json().token;

  const started = await startServe(ws, ["--access-log", "off"]);
  expect(started.stderr()).toMatch(/listening/);
  server = started;
}, 180_000);

afterAll(() => {
  if (server?.child.exitCode === null) server.child.kill("SIGKILL");
});

describe("OCSP on jpki serve, asked by openssl", () => {
  it("issues a delegated signing certificate per CA and names the responder in new certificates' AIA", async () => {
    expect(server!.stderr()).toMatch(/OCSP signing certificate for 13-sig issued/);
    const text = execFileSync("openssl", ["x509", "-in", ee[0]!.path, "-noout", "-ext", "authorityInfoAccess"], { encoding: "utf8" });
    expect(text).toContain(`OCSP - URI:http://localhost:8080/ocsp/13-sig`);
    const w = await openWorkspace(ws);
    const responders = await w.store.ocspResponders();
    await w.close();
    expect(responders.map((r) => r.caId).sort()).toEqual(["13-auth", "13-sig"]);
    const r = responders.find((x) => x.caId === "13-sig")!;
    const pem = join(dir, "responder.pem");
    writeFileSync(pem, toPem(r.certificateDer, "CERTIFICATE"));
    const x = execFileSync("openssl", ["x509", "-in", pem, "-noout", "-text"], { encoding: "utf8" });
    expect(x).toContain("OCSP Signing");
    expect(x).toContain("OCSP No Check");
    expect(execFileSync("sh", ["-c", `openssl verify -CAfile '${caPem}' -purpose ocsphelper '${pem}' 2>&1 || true`], { encoding: "utf8" })).toMatch(/OK/);
    // the key is stored encrypted, as CA keys are
    expect(r.encryptedKeyPem).toMatch(/^-----BEGIN ENCRYPTED PRIVATE KEY-----/);
  });

  it("answers good, revoked (time and reason) and unknown, with and without a nonce, the signer validated from the CA", () => {
    const url = `${server!.url}/ocsp/13-sig`;
    for (const nonce of [[], ["-no_nonce"]]) {
      const good = ask(["-issuer", caPem, "-cert", ee[0]!.path, "-url", url, "-CAfile", caPem, "-resp_text", ...nonce]);
      expect(good).toContain("Response verify OK");
      expect(good).toMatch(new RegExp(`${ee[0]!.path.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")}: good`));
      if (nonce.length === 0) expect(good).toMatch(/OCSP Nonce:\s*\n\s*04/);
      else expect(good).not.toMatch(/OCSP Nonce/);
      expect(good).not.toMatch(/WARNING: no nonce in response/);

      const revoked = ask(["-issuer", caPem, "-cert", ee[1]!.path, "-url", url, "-CAfile", caPem, "-resp_text", ...nonce]);
      expect(revoked).toContain("Response verify OK");
      expect(revoked).toMatch(/: revoked/);
      expect(revoked).toMatch(/Reason: keyCompromise/);
      expect(revoked).toMatch(/Revocation Time: \w+ +\d+ \d\d:\d\d:\d\d \d{4} GMT/);

      const unknown = ask(["-issuer", caPem, "-serial", "0x0123456789abcdef", "-url", url, "-CAfile", caPem, "-resp_text", ...nonce]);
      expect(unknown).toContain("Response verify OK");
      expect(unknown).toMatch(/0x0123456789abcdef: unknown/);
    }
    // pinned responder (-VAfile): the signing certificate trusted as such
    const pinned = ask(["-issuer", caPem, "-cert", ee[0]!.path, "-url", url, "-VAfile", join(dir, "responder.pem"), "-resp_text"]);
    expect(pinned).toContain("Response verify OK");
    expect(pinned).toMatch(/: good/);
    // SHA-256 CertIDs are answered too
    const sha256 = ask(["-sha256", "-issuer", caPem, "-cert", ee[1]!.path, "-url", url, "-CAfile", caPem, "-resp_text"]);
    expect(sha256).toContain("Response verify OK");
    expect(sha256).toMatch(/Hash Algorithm: sha256/);
    expect(sha256).toMatch(/: revoked/);
  });

  it("asked about another CA's certificate at a CA's URL: unauthorized, unsigned", () => {
    const r = ask(["-issuer", caPem, "-cert", ee[0]!.path, "-url", `${server!.url}/ocsp/13-auth`, "-CAfile", caPem, "-resp_text"]);
    expect(r).toMatch(/Responder Error: unauthorized \(6\)/);
    const m = ask(["-issuer", caPem, "-cert", ee[0]!.path, "-url", `${server!.url}/ocsp/99-nope`, "-CAfile", caPem]);
    expect(m).toMatch(/Responder Error: unauthorized \(6\)/);
  });

  it("answers a POST to the responder URL with a trailing slash as without one (the GET route takes /ocsp/<ca>/ too), and refuses a coded body 415", async () => {
    // openssl with the URL as a client that appends '/' builds it
    const slashed = ask(["-issuer", caPem, "-cert", ee[0]!.path, "-url", `${server!.url}/ocsp/13-sig/`, "-CAfile", caPem]);
    expect(slashed).toContain("Response verify OK");
    expect(slashed).toMatch(/: good/);
    const reqFile = join(dir, "post.req");
    ocsp(["-issuer", caPem, "-cert", ee[0]!.path, "-no_nonce", "-reqout", reqFile]);
    const der = readFileSync(reqFile);
    const post = (path: string, headers: Record<string, string> = {}) =>
      fetch(`${server!.url}${path}`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/ocsp-request", ...headers }, body: der });
    const plain = await post("/ocsp/13-sig");
    const slash = await post("/ocsp/13-sig/");
    expect(slash.status).toBe(200);
    expect(slash.headers.get("content-type")).toBe("application/ocsp-response");
    expect(Buffer.from(await slash.arrayBuffer()).equals(Buffer.from(await plain.arrayBuffer()))).toBe(true);
    // a body in a content coding is not the DER request: 415, with the OCSP answer an OCSP client reads
    const gzipped = await post("/ocsp/13-sig", { "content-encoding": "gzip" });
    expect(gzipped.status).toBe(415);
    expect(gzipped.headers.get("content-type")).toBe("application/ocsp-response");
    expect(gzipped.headers.get("accept-encoding")).toBe("identity");
    expect(Buffer.from(await gzipped.arrayBuffer()).toString("hex")).toBe("30030a0101"); // malformedRequest
  });

  it("answers RFC 5019 GETs (base64 URL-encoded, or raw, or base64url) from pre-produced answers, with caching headers and 304", async () => {
    const reqFile = join(dir, "get.req");
    ocsp(["-issuer", caPem, "-cert", ee[0]!.path, "-no_nonce", "-reqout", reqFile]);
    const b64 = readFileSync(reqFile).toString("base64");
    const base = `${server!.url}/ocsp/13-sig/`;
    const encoded = await httpGet(base + encodeURIComponent(b64));
    expect(encoded.status).toBe(200);
    expect(encoded.headers["content-type"]).toBe("application/ocsp-response");
    const cc = String(encoded.headers["cache-control"]);
    const maxAge = Number(/max-age=(\d+)/.exec(cc)![1]);
    const expires = Date.parse(String(encoded.headers.expires));
    // max-age never reaches past nextUpdate (Expires)
    expect(Date.parse(String(encoded.headers.date)) + maxAge * 1000).toBeLessThanOrEqual(expires);
    expect(encoded.headers.etag).toMatch(/^"[^"]+"$/);
    expect(Date.parse(String(encoded.headers["last-modified"]))).toBeLessThanOrEqual(Date.parse(String(encoded.headers.date)));
    // the same pre-produced answer whichever way the request is encoded
    const raw = await httpGet(base + b64);
    const url64 = await httpGet(base + b64.replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, ""));
    expect(raw.body.equals(encoded.body)).toBe(true);
    expect(url64.body.equals(encoded.body)).toBe(true);
    const respFile = join(dir, "get.resp");
    writeFileSync(respFile, encoded.body);
    const checked = ask(["-respin", respFile, "-issuer", caPem, "-cert", ee[0]!.path, "-CAfile", caPem, "-resp_text", "-no_nonce"]);
    expect(checked).toContain("Response verify OK");
    expect(checked).toMatch(/: good/);
    const notModified = await httpGet(base + encodeURIComponent(b64), { "If-None-Match": String(encoded.headers.etag) });
    expect(notModified.status).toBe(304);
    // compared as RFC 9110 §13.1.2 says: a weak tag, "*", or the tag in a list match as well
    for (const inm of [`W/${String(encoded.headers.etag)}`, "*", `"other", ${String(encoded.headers.etag)}`]) {
      expect((await httpGet(base + encodeURIComponent(b64), { "If-None-Match": inm })).status, inm).toBe(304);
    }
    expect((await httpGet(base + encodeURIComponent(b64), { "If-None-Match": '"other"' })).status).toBe(200);
    // HEAD as GET: the same headers, no body
    const head = await httpGet(base + encodeURIComponent(b64), {}, "HEAD");
    expect([head.status, head.headers.etag, head.headers["content-length"], head.body.length]).toEqual([200, encoded.headers.etag, String(encoded.body.length), 0]);
    // malformed GETs: an OCSP malformedRequest, never a stack or JSON
    // a path that is not URL-encoding at all is malformed too (GETs never reach fastify's router)
    const badUrl = await httpGet(`${base}%%%`);
    expect(badUrl.status).toBe(200);
    expect(badUrl.headers["content-type"]).toBe("application/ocsp-response");
    expect(badUrl.body.equals(Buffer.from("30030a0101", "hex"))).toBe(true); // OCSPResponse { malformedRequest }
    expect(badUrl.body.toString()).not.toMatch(/\bat \S+:\d+/);
    for (const bad of ["AAAA", "not-base64!", encodeURIComponent(Buffer.from("3003020101", "hex").toString("base64"))]) {
      const r = await httpGet(base + bad);
      expect(r.headers["content-type"]).toBe("application/ocsp-response");
      expect(r.body.toString("hex")).toBe("30030a0101");
    }
  });

  it("a revocation committed by another process while the server runs is answered revoked, not a pre-produced good", async () => {
    const url = `${server!.url}/ocsp/13-sig`;
    const reqFile = join(dir, "live.req");
    ocsp(["-issuer", caPem, "-cert", ee[2]!.path, "-no_nonce", "-reqout", reqFile]);
    const get = `${url}/${encodeURIComponent(readFileSync(reqFile).toString("base64"))}`;
    const before = await httpGet(get);
    writeFileSync(join(dir, "live-before.resp"), before.body);
    expect(ask(["-respin", join(dir, "live-before.resp"), "-issuer", caPem, "-cert", ee[2]!.path, "-CAfile", caPem, "-no_nonce"])).toMatch(/: good/);
    expect((await cli(["--workspace", ws, "revoke", "--serial", ee[2]!.serial, "--reason", "affiliationChanged"], { cwd: dir })).code).toBe(0);
    // The responder polls the store's revision every second: wait for the change (bounded by the test timeout).
    let after = before;
    while (after.body.equals(before.body)) {
      await new Promise((r) => setTimeout(r, 200));
      after = await httpGet(get);
    }
    writeFileSync(join(dir, "live-after.resp"), after.body);
    const text = ask(["-respin", join(dir, "live-after.resp"), "-issuer", caPem, "-cert", ee[2]!.path, "-CAfile", caPem, "-no_nonce", "-resp_text"]);
    expect(text).toMatch(/: revoked/);
    expect(text).toMatch(/Reason: affiliationChanged/);
  });

  it("counts answers by status in /metrics", async () => {
    const m = (await httpGet(`${server!.url}/metrics`)).body.toString();
    for (const s of ["good", "revoked", "unknown", "unauthorized", "malformedRequest"]) expect(m).toMatch(new RegExp(`jpki_ocsp_answers_total\\{status="${s}"`));
    expect(m).toMatch(/jpki_ocsp_answers_total\{status="good",source="pre-produced"\} [1-9]/);
  });

  // Last: it rolls 13-sig over, which the tests above do not expect.
  it("after a 'jpki ca rollover' while the server runs, answers for the new generation: tryLater until its signer is there, never unauthorized, then good", async () => {
    const rolled = await cli(["--workspace", ws, "--json", "ca", "rollover", "--prefecture", "13", "--purpose", "sig"], { cwd: dir });
    expect(rolled.code, rolled.stderr).toBe(0);
    const next = "13-sig-g2";
    const { pub } = cardKey(dir, "card-rolled");
    const issued = await cli(["--workspace", ws, "--json", "issue", "--resident", spareResident, "--type", "signature", "--public-key", pub], { cwd: dir });
    expect(issued.code, issued.stderr).toBe(0);
    const w = await openWorkspace(ws);
    const nextPem = join(dir, "ca-g2.pem");
    writeFileSync(nextPem, toPem((await w.store.getCa(next))!.certificateDer, "CERTIFICATE"));
    await w.close();
    // Until the responder had re-read the CAs (once a minute), the new CA was "not ours" (unauthorized): a client
    // does not ask again about that. Now: tryLater while its signer is being issued (the schedule's next round), then answered.
    const seen: string[] = [];
    for (;;) {
      const text = ask(["-issuer", nextPem, "-cert", issued.json().path, "-url", `${server!.url}/ocsp/${next}`, "-CAfile", nextPem, "-no_nonce"]);
      const got = /: good/.test(text) ? "good" : (/Responder Error: (\w+)/.exec(text)?.[1] ?? text);
      seen.push(got);
      if (got === "good") break;
      await new Promise((r) => setTimeout(r, 250));
    }
    expect(new Set(seen.slice(0, -1))).toEqual(new Set(seen.length > 1 ? ["trylater"] : []));
  });

  it("after 'jpki ca compromised 13-sig' (the retired generation's key stolen) while the server runs: every serial of it, genuine or never issued, revoked cACompromise at the compromise time, signed by its responder certificate from before", async () => {
    const url = `${server!.url}/ocsp/13-sig`;
    expect(ask(["-issuer", caPem, "-cert", ee[0]!.path, "-url", url, "-CAfile", caPem, "-no_nonce"])).toMatch(/: good/); // pre-produced
    const declared = await cli(["--workspace", ws, "--json", "ca", "compromised", "13-sig"], { cwd: dir });
    expect(declared.code, declared.stderr).toBe(0);
    const at = new Date(declared.json().at);
    // openssl prints e.g. "Dec  5 14:30:01 2026 GMT"
    const when = `${at.toUTCString().slice(8, 11)} ${String(at.getUTCDate()).padStart(2, " ")} ${at.toISOString().slice(11, 19)} ${at.getUTCFullYear()} GMT`;
    let text = "";
    for (let i = 0; i < 40 && !/: revoked/.test(text); i++) {
      if (i) await new Promise((r) => setTimeout(r, 250));
      text = ask(["-issuer", caPem, "-cert", ee[0]!.path, "-url", url, "-CAfile", caPem, "-no_nonce"]); // the cached good is not served
    }
    // RFC 6960 §2.2: "revoked" about a serial never issued carries the extended revoke extension (1.3.6.1.5.5.7.48.1.9,
    // value NULL); OpenSSL 3.0 prints that OID as "valid". About the genuine certificate, no such extension.
    const extendedRevoke = Buffer.from("06092b060105050730010904020500", "hex"); // OID, then OCTET STRING { NULL }
    const respOut = join(dir, "resp-compromised.der");
    for (const args of [["-cert", ee[0]!.path], ["-serial", "0x7777"]]) {
      const forged = args[0] === "-serial";
      for (const nonce of [[], ["-no_nonce"]]) {
        const a = ask(["-issuer", caPem, ...args, "-url", url, "-CAfile", caPem, "-resp_text", "-respout", respOut, ...nonce]);
        expect(a, args.join(" ")).toContain("Response verify OK");
        expect(a).toMatch(/: revoked/);
        expect(a).toMatch(/Reason: cACompromise/);
        expect(a).toContain(`Revocation Time: ${when}`);
        const exts = /Response Extensions:\n((?:        .*\n)+)/.exec(a)?.[1] ?? "";
        expect(/^        (valid|1\.3\.6\.1\.5\.5\.7\.48\.1\.9|[^:\n]*[Ee]xtended[ -]?[Rr]evoke[^:\n]*): *$/m.test(exts), `${args.join(" ")} ${nonce.join("")}:\n${exts}`).toBe(forged);
        expect(readFileSync(respOut).includes(extendedRevoke), args.join(" ")).toBe(forged);
      }
    }
    // one revoked before keeps its own reason
    expect(ask(["-issuer", caPem, "-cert", ee[1]!.path, "-url", url, "-CAfile", caPem, "-no_nonce"])).toMatch(/Reason: keyCompromise/);
    // and the schedule issued it no new signing certificate (only the first one, at start)
    expect(server!.stderr().match(/OCSP signing certificate for 13-sig issued/g)).toHaveLength(1);
  });

  it("after 'jpki ca rollover --compromised' of 13-auth while the server runs: its serials are revoked cACompromise within seconds, not at the minute's reload", async () => {
    const w = await openWorkspace(ws);
    const authPem = join(dir, "ca-auth.pem");
    writeFileSync(authPem, toPem((await w.store.getCa("13-auth"))!.certificateDer, "CERTIFICATE"));
    await w.close();
    // A serve without its schedule, the one with it stopped: the schedule's first CRL of 13-auth-g2 would add a row
    // to the revisions the responder polls, and that change alone made it re-read the compromised CAs — this passed
    // without the rollover moving 13-auth's revision. Now only the rollover's own commit can tell it within a poll.
    server!.child.kill("SIGTERM");
    await server!.exited;
    // the responder's minute's reload comes 60 s after this at the earliest
    const started = performance.now();
    server = await startServe(ws, ["--access-log", "off", "--no-schedule"]);
    expect(server.stderr()).toMatch(/listening/);
    const url = `${server.url}/ocsp/13-auth`;
    const q = () => ask(["-issuer", authPem, "-serial", "0x7777", "-url", url, "-CAfile", authPem, "-no_nonce", "-resp_text"]);
    expect(q()).toMatch(/: unknown/);
    const revisions = async () => {
      const v = await openWorkspace(ws);
      try {
        return [...(await v.store.caRevisions()).keys()].sort();
      } finally {
        await v.close();
      }
    };
    const before = await revisions();
    const rolled = await cli(["--workspace", ws, "--json", "ca", "rollover", "--prefecture", "13", "--purpose", "auth", "--compromised"], { cwd: dir });
    expect(rolled.code, rolled.stderr).toBe(0);
    // The server reloads its CAs every 60 s from its start, well after this; the poll of the revisions (1 s) tells it:
    // the rollover moves 13-auth's.
    // Asked until revoked, for as long as only the poll can have told it: up to 50 s after the server's start, 10 s
    // before its reload could (32 questions 250 ms apart, ≈ 8 s, were a loaded host's margin).
    let text = "";
    await until(() => /: revoked/.test((text = q())), "13-auth's serials revoked", { timeoutMs: Math.max(0, started + 50_000 - performance.now()), everyMs: 250 }).catch(() => undefined);
    expect(text).toContain("Response verify OK");
    expect(text).toMatch(/: revoked/);
    expect(text).toMatch(/Reason: cACompromise/);
    // nothing published meanwhile: the CAs with a revision are those of before (13-auth-g2 has none yet)
    expect(await revisions()).toEqual(before);
  });
});
