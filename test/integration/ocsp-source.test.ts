/**
 * OCSP as a revocation source against a real `jpki serve` (issue 10 points 5 and 6): OcspClient asks the
 * responder the certificate names in AIA, as a registered verifier (bearer token), and the answer decides the
 * validation — good, revoked (time and reason, after `jpki revoke`), unknown (a serial the CA never issued to this
 * store; another CA's responder) — with every check of RFC 6960 §3.2 shown to bite: a tampered signature, a stale
 * answer, a missing nonce echo, a responder that is down or silent are no-answers, typed, never exceptions.
 * `openssl ocsp` asked the same questions agrees. Then `jpki verify --ocsp` and `--crl-url` end to end.
 *
 * The workspace's baseUrl is the address serve listens on, so the URLs the certificates carry (AIA OCSP, CRL
 * distribution points) reach it directly.
 */
import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { createServer, type Server } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { EXIT_INVALID, EXIT_UNDECIDED } from "../../src/cli/exit-codes.js";
import { pemOrDer } from "../../src/index.js";
import { parseOcspRequest } from "../../src/ocsp/request.js";
import { seq } from "../../src/pki/der.js";
import { generateResidents } from "../../src/registry/fixtures.js";
import { items, tlvAt } from "../../src/validation/asn1.js";
import { validateJpkiAsync } from "../../src/validation/jpki.js";
import { OcspClient, type OcspOutcome } from "../../src/validation/ocsp-source.js";
import { CrlCache } from "../../src/validation/revocation-sources.js";
import { cardKey, cli, copyWorkspace, freePort, setConfig, startServe, tempDir, tokyoWorkspace, type RunningServe, writeJsonl } from "./helpers.js";

let dir: string;
let ws: string;
let token: string;
let tokenFile: string;
let serve: RunningServe;
/** where serve listens: the workspace's baseUrl */
let base: string;
let anchorPem: string;
let anchor: Buffer;
/** issued by 13-sig: one stays good, one is revoked during the tests */
const cert: Record<"good" | "toRevoke" | "stranger" | "auth", { path: string; der: Buffer; serial: string }> = {} as never;

beforeAll(async () => {
  dir = tempDir("jpki-ocspsrc-");
  ws = join(dir, "ws");
  await tokyoWorkspace(ws);
  const port = await freePort();
  setConfig(ws, { baseUrl: `http://127.0.0.1:${port}` });
  const residents = [...generateResidents({ count: 4, seed: "ocspsrc", prefectures: ["13"] })];
  writeJsonl(join(dir, "residents.jsonl"), residents);
  expect((await cli(["--workspace", ws, "registry", "import", join(dir, "residents.jsonl")], { cwd: dir })).code).toBe(0);
  // a copy of the workspace before the next issuances: what it issues is signed by the same CA key but unknown
  // to the store serve answers from — an "unknown" serial
  const twin = join(dir, "twin");
  await copyWorkspace(ws, twin);
  const issue = async (w: string, k: number, name: keyof typeof cert, type = "signature") => {
    const { pub } = cardKey(dir, name);
    const r = await cli(["--workspace", w, "--json", "issue", "--resident", String(residents[k]!.residentCode), "--public-key", pub, "--type", type], { cwd: dir });
    expect(r.code, r.stderr).toBe(0);
    const der = pemOrDer(Buffer.from(r.json().pem as string), ["CERTIFICATE"], "certificate");
    const path = join(dir, `${name}.der`);
    writeFileSync(path, der);
    cert[name] = { path, der, serial: r.json().serial };
  };
  await issue(ws, 0, "good");
  await issue(ws, 1, "toRevoke");
  await issue(ws, 2, "auth", "authentication");
  await issue(twin, 3, "stranger");
  anchorPem = join(ws, "ca", "13-sig.pem");
  anchor = pemOrDer(readFileSync(anchorPem), ["CERTIFICATE"], "the CA certificate");
  const added = await cli(["--workspace", ws, "--json", "verifier", "add", "--name", "ocsp source test", "--kind", "government"], { cwd: dir });
  expect(added.code, added.stderr).toBe(0);
  token = added.json().token;
  tokenFile = join(dir, "verifier.token");
  writeFileSync(tokenFile, `${token}\n`, { mode: 0o600 });
  expect((await cli(["--workspace", ws, "crl", "generate", "--ca", "13-sig", "--partitions", "all"], { cwd: dir })).code).toBe(0);
  serve = await startServe(ws, ["--access-log", "off", "--listen", `127.0.0.1:${port}`]);
  expect(serve.stderr()).toMatch(/OCSP signing certificate for 13-sig issued/);
  base = `http://127.0.0.1:${port}`;
  expect(serve.url).toBe(base);
  expect(serve.stderr()).toContain(`listening on ${base}`);
}, 180_000);

afterAll(() => {
  if (serve?.child.exitCode === null) serve.child.kill("SIGKILL");
});

const ocspUrl = (ca = "13-sig") => `${base}/ocsp/${ca}`;
// the certificates' AIA names serve's origin: the token goes there (by default only to a `url` given)
const client = (p: ConstructorParameters<typeof OcspClient>[0] = {}) => new OcspClient({ bearerToken: token, tokenOrigins: [base], ...p });
const ask = (c: OcspClient, which: Buffer, at = new Date()) => c.check({ certificate: which, issuer: anchor }, at);
const validate = (certificate: Buffer, p: { ocspSource: OcspClient; revocation?: "hard-fail" | "soft-fail"; at?: Date }) =>
  validateJpkiAsync({ certificate, purpose: "signature", trustAnchors: [anchor], revocationSources: ["ocsp"], at: p.at ?? new Date(), revocation: p.revocation ?? "hard-fail", ocspSource: p.ocspSource });

/** openssl ocsp's verdict on the same certificate ("good", "revoked", "unknown"), the delegated signer checked from the CA. */
function opensslSays(path: string): string {
  const pem = join(dir, `${path.split("/").pop()}.pem`);
  execFileSync("openssl", ["x509", "-inform", "DER", "-in", path, "-out", pem]);
  const out = execFileSync("sh", ["-c", `openssl ocsp -issuer '${anchorPem}' -cert '${pem}' -url '${ocspUrl()}' -CAfile '${anchorPem}' -header 'Authorization=Bearer ${token}' 2>&1 || true`], { encoding: "utf8" });
  expect(out).toContain("Response verify OK");
  return /: (good|revoked|unknown)/.exec(out)![1]!;
}

/** A fetch that hands the response to `change` before the client sees it. */
function tampering(change: (der: Buffer) => Buffer | void): typeof fetch {
  return async (input, init) => {
    const res = await fetch(input, init);
    const der = Buffer.from(await res.arrayBuffer());
    return new Response(change(der) ?? der, { status: res.status, headers: res.headers });
  };
}

/** The signature BIT STRING's contents inside a DER OCSPResponse (a view: writing to it changes the response). */
function signatureOf(response: Buffer): Buffer {
  const [, bytes] = items(tlvAt(response));
  const [, octets] = items(items(bytes!)[0]!);
  const [, , sig] = items(tlvAt(octets!.content));
  return sig!.content;
}

describe("OcspClient against jpki serve", () => {
  it("a valid certificate: good, signed by the CA's delegated responder; SHA-1 and SHA-256 CertIDs; openssl agrees", async () => {
    for (const hash of ["sha1", "sha256"] as const) {
      const o = await ask(client({ hash }), cert.good.der);
      expect(o, JSON.stringify(o)).toMatchObject({ status: "good", url: ocspUrl(), signedBy: "delegated-responder", certId: { hash, serial: expect.any(String) } });
    }
    expect(opensslSays(cert.good.path)).toBe("good");
    const r = await validate(cert.good.der, { ocspSource: client() });
    expect(r.status, JSON.stringify(r)).toBe("valid");
    expect(r.status === "valid" && r.revocationChecks).toEqual([{ index: 0, source: "ocsp", status: "good", url: ocspUrl() }]);
    expect(r.crlFetches).toEqual([]);
  });

  it("revoked by `jpki revoke`: the responder answers revoked, and the validation is revoked with time and reason; openssl agrees", async () => {
    const before = await ask(client(), cert.toRevoke.der);
    expect(before.status).toBe("good");
    const revokedAt = Date.now();
    expect((await cli(["--workspace", ws, "revoke", "--serial", cert.toRevoke.serial, "--reason", "affiliationChanged"], { cwd: dir })).code).toBe(0);
    const o = await ask(client(), cert.toRevoke.der);
    expect(o).toMatchObject({ status: "revoked", revocation: { reason: "affiliationChanged" } });
    const time = o.status === "revoked" ? o.revocation.time.getTime() : NaN;
    expect(Math.abs(time - revokedAt)).toBeLessThan(60_000);
    expect(opensslSays(cert.toRevoke.path)).toBe("revoked");
    const r = await validate(cert.toRevoke.der, { ocspSource: client() });
    expect(r).toMatchObject({ status: "revoked", reason: "revoked", index: 0, revocation: { reason: "affiliationChanged", source: "ocsp" } });
  });

  it("a serial this CA's store never issued: unknown; hard-fail revocation-unknown, soft-fail a warning; openssl agrees", async () => {
    const o = await ask(client(), cert.stranger.der);
    expect(o).toMatchObject({ status: "unknown", url: ocspUrl() });
    expect(opensslSays(cert.stranger.path)).toBe("unknown");
    const hard = await validate(cert.stranger.der, { ocspSource: client() });
    expect(hard).toMatchObject({ status: "revocation-unknown", reason: "revocation-unknown", index: 0 });
    expect(hard.status !== "valid" && hard.message).toMatch(/does not know the certificate/);
    const soft = await validate(cert.stranger.der, { ocspSource: client(), revocation: "soft-fail" });
    expect(soft.status).toBe("valid");
    expect(soft.status === "valid" && soft.revocationWarnings).toEqual([{ index: 0, detail: expect.stringMatching(/unknown/) }]);
    expect(soft.status === "valid" && soft.revocationChecks).toEqual([expect.objectContaining({ index: 0, source: "none", status: "unknown" })]);
  });

  it("the wrong issuer's responder (13-auth asked about a 13-sig certificate): unauthorized, no answer, revocation-unknown", async () => {
    const o = await ask(client({ url: ocspUrl("13-auth") }), cert.good.der);
    expect(o).toMatchObject({ status: "no-answer", problem: "response-status", detail: expect.stringMatching(/unauthorized/) });
    const r = await validate(cert.good.der, { ocspSource: client({ url: ocspUrl("13-auth") }) });
    expect(r.status).toBe("revocation-unknown");
  });

  it("a tampered signature: no answer (signature-invalid), never good", async () => {
    const o = await ask(client({ fetch: tampering((der) => void (signatureOf(der)[20]! ^= 0x01)) }), cert.good.der);
    expect(o).toMatchObject({ status: "no-answer", problem: "signature-invalid" });
    // the same bytes untouched pass: it is the tampering that fails
    expect((await ask(client({ fetch: tampering(() => undefined) }), cert.good.der)).status).toBe("good");
  });

  it("a stale answer (the validation time after nextUpdate): no answer (stale), hard-fail revocation-unknown", async () => {
    const later = new Date(Date.now() + 2 * 3600_000); // the responder's answers live 1 hour
    const o = await ask(client(), cert.good.der, later);
    expect(o).toMatchObject({ status: "no-answer", problem: "stale" });
    const r = await validate(cert.good.der, { ocspSource: client(), at: later });
    expect(r).toMatchObject({ status: "revocation-unknown" });
    // before thisUpdate (beyond the skew) neither
    expect(await ask(client(), cert.good.der, new Date(Date.now() - 3600_000))).toMatchObject({ status: "no-answer", problem: "not-yet-valid" });
  });

  it("a response without the nonce echoed (the request relayed without it, as a replaying cache would): no answer (nonce-mismatch)", async () => {
    const sent: Array<Buffer | undefined> = [];
    const stripNonce: typeof fetch = async (input, init) => {
      const req = parseOcspRequest(init!.body as Buffer);
      sent.push(req.nonce);
      return fetch(input, { ...init, body: seq(seq(seq(seq(req.certIds[0]!.der)))) });
    };
    const o = await ask(client({ fetch: stripNonce }), cert.good.der);
    expect(o).toMatchObject({ status: "no-answer", problem: "nonce-mismatch" });
    expect(sent[0]).toBeDefined(); // the client did ask with a nonce
    // without a nonce asked for, the same pre-produced answer is accepted
    expect((await ask(client({ fetch: stripNonce, nonce: false }), cert.good.der)).status).toBe("good");
  });

  it("no registered verifier's token: HTTP 401, no answer", async () => {
    const o = await ask(new OcspClient({ bearerToken: "not-a-registered-token", tokenOrigins: [base] }), cert.good.der);
    expect(o).toMatchObject({ status: "no-answer", problem: "http-status", detail: expect.stringMatching(/401/) });
  });

  it("a responder that is down or silent: no answer (network, timeout), no exception, no stack", async () => {
    const closed = await freePort();
    const down = await ask(client({ url: `http://127.0.0.1:${closed}/ocsp/13-sig` }), cert.good.der);
    expect(down).toMatchObject({ status: "no-answer", problem: "network" });
    expect(JSON.stringify(down)).not.toMatch(/\bat .+\.[jt]s:\d+:\d+/);
    const silent: Server = createServer(() => undefined);
    await new Promise<void>((r) => silent.listen(0, "127.0.0.1", r));
    try {
      const port = (silent.address() as { port: number }).port;
      const t = await ask(client({ url: `http://127.0.0.1:${port}/ocsp/13-sig`, timeoutMs: 300 }), cert.good.der);
      expect(t).toMatchObject({ status: "no-answer", problem: "timeout" });
    } finally {
      silent.close();
    }
    const r = await validate(cert.good.der, { ocspSource: client({ url: `http://127.0.0.1:${closed}/` }), revocation: "soft-fail" });
    expect(r.status).toBe("valid");
    expect(r.status === "valid" && r.revocationWarnings[0]?.detail).toMatch(/OCSP network/);
  });

  it("OCSP first, CRL as the fallback: with the responder unreachable the CRL the certificate names decides", async () => {
    const r = await validateJpkiAsync({
      certificate: cert.good.der,
      purpose: "signature",
      trustAnchors: [anchor],
      at: new Date(),
      revocationSources: ["ocsp", "crl"],
      ocspSource: client({ url: `http://127.0.0.1:${await freePort()}/` }),
      crlSource: new CrlCache({ bearerToken: token, tokenOrigins: [base] }),
    });
    expect(r.status, JSON.stringify(r)).toBe("valid");
    expect(r.status === "valid" && r.revocationChecks).toEqual([{ index: 0, source: "crl", status: "good", detail: expect.stringMatching(/OCSP network/) }]);
    expect(r.ocspResponses.map((o: OcspOutcome) => o.status)).toEqual(["no-answer"]);
    expect(r.crlFetches.length).toBeGreaterThan(0);
  });
});

describe("jpki verify --ocsp and --crl-url, end to end", () => {
  const verify = (args: string[], env: Record<string, string | undefined> = {}) => cli(["verify", ...args], { cwd: dir, env });

  it("--ocsp (the AIA responder) with --token-file: valid, exit 0; --json says OCSP answered", async () => {
    const r = await verify([cert.good.path, "--trust", anchorPem, "--ocsp", "--token-file", tokenFile, "--token-origin", base, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const j = r.json();
    expect(j).toMatchObject({ status: "valid", revocationSources: ["ocsp"], revocationChecks: [{ index: 0, source: "ocsp", status: "good", url: ocspUrl() }] });
    expect(j.ocsp).toEqual([expect.objectContaining({ status: "good", url: ocspUrl(), signedBy: "delegated-responder" })]);
    expect(r.stdout).not.toContain(token);
    const text = await verify([cert.good.path, "--trust", anchorPem, "--ocsp", "--token-origin", base], { JPKI_VERIFIER_TOKEN: token });
    expect(text.code, text.stderr).toBe(0);
    expect(text.stdout).toContain(`revocation: the certificate itself (${cert.good.path}; serial ${cert.good.serial}): good, from OCSP ${ocspUrl()}`);
  });

  it("--ocsp URL on a revoked certificate: exit 1, revoked, with the reason and OCSP as its source", async () => {
    const r = await verify([cert.toRevoke.path, "--trust", anchorPem, `--ocsp=${ocspUrl()}`, "--token-file", tokenFile]);
    expect(r.code).toBe(EXIT_INVALID);
    expect(r.stdout).toContain("NOT VALID: revoked (失効)");
    expect(r.stdout).toMatch(/reason: a certified item changed .*\(affiliationChanged\), says OCSP/);
  });

  it("an unknown serial: hard-fail exit 1 revocation-unknown, soft-fail exit 15; typed, no stack", async () => {
    const hard = await verify([cert.stranger.path, "--trust", anchorPem, "--ocsp", "--token-file", tokenFile, "--token-origin", base, "--json"]);
    expect(hard.code).toBe(EXIT_INVALID);
    expect(hard.json()).toMatchObject({ status: "revocation-unknown", reason: "revocation-unknown", ocsp: [{ status: "unknown" }] });
    const soft = await verify([cert.stranger.path, "--trust", anchorPem, "--ocsp", "--token-file", tokenFile, "--token-origin", base, "--soft-fail"]);
    expect(soft.code).toBe(EXIT_UNDECIDED);
    expect(soft.stdout).toMatch(/but: could not check whether the certificate itself .* is revoked \(失効\): OCSP: the responder .* does not know the certificate/);
    expect(`${soft.stdout}${soft.stderr}`).not.toMatch(/^\s+at .+:\d+:\d+\)?$/m);
  });

  it("a stale answer by --at after nextUpdate: revocation-unknown (exit 1), the problem named in --json", async () => {
    const later = new Date(Date.now() + 2 * 3600_000).toISOString();
    const r = await verify([cert.good.path, "--trust", anchorPem, "--ocsp", "--token-file", tokenFile, "--token-origin", base, "--at", later, "--json"]);
    expect(r.code).toBe(EXIT_INVALID);
    expect(r.json()).toMatchObject({ status: "revocation-unknown", ocsp: [{ status: "no-answer", problem: "stale" }] });
  });

  it("the responder down: no answer; with --crl-url auto the CRL decides (exit 0), without it hard-fail exit 1", async () => {
    const down = `http://127.0.0.1:${await freePort()}/ocsp/13-sig`;
    const alone = await verify([cert.good.path, "--trust", anchorPem, "--ocsp", down, "--token-file", tokenFile, "--json"]);
    expect(alone.code).toBe(EXIT_INVALID);
    expect(alone.json()).toMatchObject({ status: "revocation-unknown", ocsp: [{ status: "no-answer", problem: "network" }] });
    const fallback = await verify([cert.good.path, "--trust", anchorPem, "--ocsp", down, "--crl-url", "auto", "--token-file", tokenFile, "--token-origin", base, "--json"]);
    expect(fallback.code, fallback.stdout).toBe(0);
    expect(fallback.json()).toMatchObject({ status: "valid", revocationSources: ["ocsp", "crl"], revocationChecks: [{ index: 0, source: "crl", status: "good" }] });
    expect(fallback.json().crlFetches.every((f: { status: string }) => f.status === "downloaded")).toBe(true);
  });

  it("--crl-url URL and --crl-url auto: the CRLs fetched decide; the revoked certificate is revoked from its CRL", async () => {
    // the revocation above is in the CRLs serve's schedule publishes next; publish now
    expect((await cli(["--workspace", ws, "crl", "generate", "--ca", "13-sig", "--partitions", "all"], { cwd: dir })).code).toBe(0);
    const full = `${base}/crl/13-sig.crl`;
    const good = await verify([cert.good.path, "--trust", anchorPem, "--crl-url", full, "--token-file", tokenFile, "--json"]);
    expect(good.code, good.stdout).toBe(0);
    expect(good.json()).toMatchObject({ status: "valid", revocationChecks: [{ source: "crl", status: "good" }], crlFetches: [{ url: full, status: "downloaded" }] });
    expect(good.json().crlFetches[0].der).toBeUndefined();
    for (const how of [["--crl-url", full], ["--crl-url", "auto", "--token-origin", base]]) {
      const r = await verify([cert.toRevoke.path, "--trust", anchorPem, ...how, "--token-file", tokenFile, "--json"]);
      expect(r.code, JSON.stringify(how)).toBe(EXIT_INVALID);
      expect(r.json()).toMatchObject({ status: "revoked", revocation: { reason: "affiliationChanged", source: "crl" } });
    }
    // without the token serve refuses: the fetch fails (reported), the status is unknown
    const refused = await verify([cert.good.path, "--trust", anchorPem, "--crl-url", full, "--json"], { JPKI_VERIFIER_TOKEN: undefined });
    expect(refused.code).toBe(EXIT_INVALID);
    expect(refused.json()).toMatchObject({ status: "revocation-unknown", crlFetches: [{ status: "failed", error: expect.stringMatching(/401/) }] });
  });

  it("usage errors: --ocsp or --crl-url without an http(s) URL, a token file that is not a token: exit 2", async () => {
    const notUrl = await verify(["--trust", anchorPem, "--ocsp", cert.good.path]);
    expect(notUrl.code).toBe(2);
    const badCrlUrl = await verify([cert.good.path, "--trust", anchorPem, "--crl-url", "ftp://example/x.crl"]);
    expect(badCrlUrl.code).toBe(2);
    expect(badCrlUrl.stderr).toMatch(/ERR_USAGE|not an http/);
    const empty = join(dir, "empty.token");
    writeFileSync(empty, "\n", { mode: 0o600 });
    const badToken = await verify([cert.good.path, "--trust", anchorPem, "--ocsp", "--token-file", empty]);
    expect(badToken.code).toBe(2);
    expect(badToken.stderr).toMatch(/token/);
  });
});
