/**
 * `jpki verify --token-file` sends the verifier's bearer token only to the origins of the URLs given on its command
 * line (--crl-url URL, --ocsp URL) and of --token-origin. It went to every CRL distribution point and AIA responder
 * a trusted certificate names: with J-LIS's roots in --trust, J-LIS's hosts got the token that opens our serve.
 *
 * Two local HTTP servers record the Authorization header of every request: "named", the workspace's baseUrl (so the
 * host the certificates name), and "given", the one a URL on the command line points at.
 */
import { writeFileSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { pemOrDer } from "../../src/index.js";
import { generateResidents } from "../../src/registry/fixtures.js";
import { cardKey, cli, setConfig, tempDir, writeJsonl } from "./helpers.js";

interface Recorder {
  readonly server: Server;
  readonly origin: string;
  readonly seen: Array<{ method: string; url: string; authorization: string | undefined }>;
}

/** A server answering every request `status`, recording what came. */
async function recorder(status: number): Promise<Recorder> {
  const seen: Recorder["seen"] = [];
  const server = createServer((req, res) => {
    seen.push({ method: req.method ?? "", url: req.url ?? "", authorization: req.headers.authorization });
    req.resume();
    req.on("end", () => res.writeHead(status, { "content-type": "text/plain" }).end("no"));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, origin: `http://127.0.0.1:${(server.address() as { port: number }).port}`, seen };
}

const TOKEN = "jpkiv_origin-test-secret-z9";
let dir: string;
let certFile: string;
let anchorPem: string;
let tokenFile: string;
let named: Recorder;
let given: Recorder;

beforeAll(async () => {
  named = await recorder(401); // as our own serve answers a request without the token
  given = await recorder(404);
  dir = tempDir("jpki-token-origin-");
  const ws = join(dir, "ws");
  expect((await cli(["--workspace", ws, "ca", "init", "-p", "13", "--purpose", "signature"], { cwd: dir })).code).toBe(0);
  setConfig(ws, { baseUrl: named.origin });
  const residents = [...generateResidents({ count: 1, seed: "token-origin", prefectures: ["13"] })];
  expect((await cli(["--workspace", ws, "registry", "import", writeJsonl(join(dir, "residents.jsonl"), residents)], { cwd: dir })).code).toBe(0);
  const { pub } = cardKey(dir, "card");
  const r = await cli(["--workspace", ws, "--json", "issue", "--resident", String(residents[0]!.residentCode), "--public-key", pub, "--type", "signature"], { cwd: dir });
  expect(r.code, r.stderr).toBe(0);
  certFile = join(dir, "cert.der");
  writeFileSync(certFile, pemOrDer(Buffer.from(r.json().pem as string), ["CERTIFICATE"], "certificate"));
  anchorPem = join(ws, "ca", "13-sig.pem");
  tokenFile = join(dir, "verifier.token");
  writeFileSync(tokenFile, `${TOKEN}\n`, { mode: 0o600 });
}, 120_000);

// Waited for: the next file of the worker ("sqlite-shared") must not find them listening (test/shared-worker-guard.ts).
afterAll(async () => {
  await Promise.all([named, given].map((r) => r && new Promise((done) => r.server.close(done))));
});

/** `jpki verify` of the certificate with `args`; what each server saw during it. */
async function verify(args: string[]) {
  named.seen.length = 0;
  given.seen.length = 0;
  const r = await cli(["verify", certFile, "--trust", anchorPem, "--token-file", tokenFile, "--json", ...args], { cwd: dir, env: { JPKI_VERIFIER_TOKEN: undefined } });
  return { r, named: [...named.seen], given: [...given.seen] };
}

describe("jpki verify: where the verifier's token goes", () => {
  it("to the origin of --crl-url URL and --ocsp URL, never to the URLs the certificate names on another origin", async () => {
    const { r, named: n, given: g } = await verify(["--crl-url", `${given.origin}/crl/13-sig.crl`, "--crl-url", "auto", "--ocsp"]);
    expect(r.code).not.toBe(2);
    expect(g).toEqual([expect.objectContaining({ method: "GET", url: "/crl/13-sig.crl", authorization: `Bearer ${TOKEN}` })]);
    // the certificate's CRL distribution point and AIA responder, asked without it
    expect(n.some((x) => x.method === "GET" && x.url.startsWith("/crl/"))).toBe(true);
    expect(n.some((x) => x.method === "POST" && x.url.startsWith("/ocsp/"))).toBe(true);
    expect(n.map((x) => x.authorization)).toEqual(n.map(() => undefined));
    // and its 401 says why
    expect(JSON.stringify(r.json().crlFetches)).toContain("--token-origin");

    const ocsp = await verify([`--ocsp=${given.origin}/ocsp/13-sig`, "--crl-url", "auto", "--soft-fail"]);
    expect(ocsp.given).toEqual([expect.objectContaining({ method: "POST", url: "/ocsp/13-sig", authorization: `Bearer ${TOKEN}` })]);
    expect(ocsp.named.length).toBeGreaterThan(0);
    expect(ocsp.named.every((x) => x.authorization === undefined)).toBe(true);
  });

  it("to the certificate's own URLs when their origin is given with --token-origin", async () => {
    const { named: n, given: g } = await verify(["--crl-url", "auto", "--ocsp", "--token-origin", `${named.origin}/`]);
    expect(g).toEqual([]);
    expect(n.length).toBeGreaterThanOrEqual(2);
    expect(n.every((x) => x.authorization === `Bearer ${TOKEN}`)).toBe(true);
  });

  it("refuses a --token-origin that is no http(s) origin (exit 2)", async () => {
    for (const bad of ["ftp://example", `${named.origin}/crl/`, "example.org", `http://user:pw@127.0.0.1:1`]) {
      const { r, named: n } = await verify(["--crl-url", "auto", "--token-origin", bad]);
      expect(r.code, bad).toBe(2);
      expect(r.stderr, bad).toContain("--token-origin");
      expect(n, bad).toEqual([]);
    }
  });
});
