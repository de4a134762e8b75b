/**
 * The HTTP routes of `jpki serve` as a fuzz target: the server of the corpus's workspace (CRLs, certificates,
 * OCSP, the verifier API, the page), listening on loopback, sent raw HTTP/1.1 requests over a socket, so the
 * bytes pass through everything a client reaches: node's parser, the access check, the published-file and
 * OCSP GET paths before fastify, then fastify's routes. Methods, paths, headers and bodies are hostile; a
 * verifier's token goes with half of them so the routes behind it are reached.
 *
 * The rule: never a 5xx but 503 (the store away, not here), and every JSON error answer carries a `code`.
 * OCSP errors are OCSP responses (RFC 6960 §2.3, their own status), 304/HEAD answers have no body, and a
 * request node's parser refuses gets node's bare 400 before any route runs: those are not JSON by design.
 */
import { connect, type AddressInfo } from "node:net";
import fc from "fast-check";
import type { FastifyInstance } from "fastify";
import { CertificationAuthority } from "../../src/ca/authority.js";
import { renewOcspSigners } from "../../src/ca/ocsp-signer.js";
import { buildServer } from "../../src/server/app.js";
import { registerVerifier } from "../../src/verifier/registration.js";
import type { Corpus } from "./corpus.js";
import { PropertyViolation, type FuzzTarget } from "./harness.js";
import { derInputs } from "./mutate.js";

export interface HttpInput {
  readonly method: string;
  readonly path: string;
  readonly headers: ReadonlyArray<readonly [string, string]>;
  readonly body: Buffer;
  readonly token: boolean;
}

const PATHS = [
  "/", "/healthz", "/metrics", "/openapi.json", "/crl/index.json", "/crl/13-sig.crl", "/crl/13-auth.crl", "/crl/13-sig-delta.crl", "/arl/13-sig.crl",
  "/crl/13-sig/131016.crl", "/ca/13-sig.crt", "/ca/13-sig.pem", "/ca/13-sig.der", "/ocsp/13-sig", "/ocsp/13-auth", "/ocsp/99-nope", "/v1/validate", "/v1/verify-signature",
  "/v1/status", "/v1/status/history", "/v1/overview", "/ui/index.html", "/ui/app.js",
];
const SEGMENTS = ["..", ".", "%2e%2e", "%00", "%", "%zz", "%ff", "13-sig", "x".repeat(300), "é", "%E3%81%82", ";a=b", "*", "~", "\\", "//", "crl", "ocsp", "MEIwQDA%2B", "AAAA", "%2F"];
const QUERIES = ["", "?", "?days=7", "?days=-1", "?days=1e9", "?days=abc", "?limit=0", "?limit=999999", "?since=not-a-date", "?cursor=%%", "?cursor=" + "A".repeat(500), "?a=1&a=2", "?days[]=1"];
const METHODS = ["GET", "HEAD", "POST", "PUT", "DELETE", "OPTIONS", "PATCH", "TRACE", "PROPFIND", "get", "G\u00c9T"];
const CONTENT_TYPES = ["application/json", "application/json; charset=utf-8", "application/ocsp-request", "text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "application/json; charset=latin1", "", "*/*", "application/jsonx"];
const EXTRA_HEADERS: ReadonlyArray<readonly [string, string]> = [
  ["accept", "application/json"], ["accept", "*/*;q=0"], ["if-none-match", "\"x\""], ["if-none-match", "*"], ["if-modified-since", "Mon, 01 Jan 1990 00:00:00 GMT"],
  ["if-modified-since", "garbage"], ["range", "bytes=0-10"], ["range", "bytes=99999999-"], ["range", "bytes=-0"], ["accept-encoding", "gzip, br"], ["authorization", "Bearer x"],
  ["authorization", "Basic Zm9vOmJhcg=="], ["authorization", "Bearer " + "A".repeat(2000)], ["x-forwarded-for", "1.2.3.4"], ["cache-control", "no-cache"], ["origin", "http://evil"],
  ["transfer-encoding", "chunked"], ["expect", "100-continue"], ["content-encoding", "gzip"], ["connection", "upgrade"], ["upgrade", "websocket"],
];

function jsonBodies(c: Corpus): fc.Arbitrary<Buffer> {
  const cert = c.certificates[0]!.toString("base64");
  const b64 = (b: Buffer) => b.toString("base64");
  const value = fc.oneof(fc.constant(cert), fc.constantFrom("", "x", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----", "13-sig", "0a01", "2026-13-45T00:00:00Z"), fc.string({ maxLength: 20 }), fc.integer(), fc.constant(null), fc.array(fc.constant(cert), { maxLength: 12 }), derInputs(c.certificates).map(b64));
  const shaped = fc.oneof(
    fc.record({ certificate: value, purpose: fc.oneof(fc.constantFrom("signature", "authentication", "x"), value), chain: fc.option(fc.array(value, { maxLength: 5 }), { nil: undefined }), at: fc.option(value, { nil: undefined }) }, { requiredKeys: [] }),
    fc.record({ signature: value, content: fc.option(value, { nil: undefined }), purpose: fc.option(value, { nil: undefined }) }, { requiredKeys: [] }),
    fc.record({ items: fc.array(fc.oneof(fc.record({ caId: value, serial: value }, { requiredKeys: [] }), fc.record({ certificateId: value }), value), { maxLength: 30 }) }, { requiredKeys: [] }),
    fc.jsonValue({ maxDepth: 4 }),
  );
  return fc.oneof(
    { weight: 6, arbitrary: shaped.map((v) => Buffer.from(JSON.stringify(v) ?? "null")) },
    { weight: 1, arbitrary: fc.constantFrom("{", "[".repeat(10_000), "{\"a\":" + "[".repeat(50), "\uFEFF{}", "{\"certificate\":\"\\ud800\"}", "{\"__proto__\":{\"x\":1}}", "1e999999", "\"" + "a".repeat(200_000) + "\"").map((s) => Buffer.from(s)) },
    { weight: 1, arbitrary: fc.uint8Array({ maxLength: 200 }).map((u) => Buffer.from(u)) },
  );
}

export function httpInputs(c: Corpus): fc.Arbitrary<HttpInput> {
  const path = fc.oneof(
    { weight: 6, arbitrary: fc.tuple(fc.constantFrom(...PATHS), fc.constantFrom(...QUERIES)).map(([p, q]) => p + q) },
    { weight: 3, arbitrary: fc.tuple(fc.constantFrom(...PATHS), fc.array(fc.constantFrom(...SEGMENTS), { minLength: 1, maxLength: 3 }), fc.nat(), fc.constantFrom(...QUERIES)).map(([p, segs, at, q]) => {
      const parts = p.split("/");
      parts.splice(1 + (at % parts.length), 0, ...segs);
      return parts.join("/").replace(/^(?!\/)/, "/") + q;
    }) },
    // an OCSP GET: the request's DER in base64 in the path (RFC 6960 Appendix A.1), the DER mutated
    { weight: 2, arbitrary: fc.tuple(fc.constantFrom("/ocsp/13-sig/", "/ocsp/13-auth/"), derInputs(c.ocspRequests), fc.boolean()).map(([p, der, enc]) => p + (enc ? encodeURIComponent(der.toString("base64")) : der.toString("base64"))) },
    { weight: 1, arbitrary: fc.string({ unit: "grapheme-ascii", maxLength: 60 }).map((s) => `/${s.replace(/[\s]/g, "")}`) },
  );
  const body = fc.oneof({ weight: 3, arbitrary: fc.constant(Buffer.alloc(0)) }, { weight: 4, arbitrary: jsonBodies(c) }, { weight: 3, arbitrary: derInputs(c.ocspRequests) });
  return fc.record({
    method: fc.oneof({ weight: 8, arbitrary: fc.constantFrom(...METHODS) }, { weight: 1, arbitrary: fc.stringMatching(/^[A-Z]{1,12}$/) }),
    path,
    headers: fc.array(fc.oneof(fc.constantFrom(...EXTRA_HEADERS), fc.constantFrom(...CONTENT_TYPES).map((v) => ["content-type", v] as const)), { maxLength: 4 }),
    body,
    token: fc.boolean(),
  });
}

interface RawResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: Buffer;
}

/**
 * Sends one request over a fresh connection (Connection: close) and reads the first answer. The socket is not
 * half-closed after the request: node's server drops a connection whose client has ended it, answer or not.
 * A request whose body framing the server cannot know to be complete (chunked, 100-continue) may wait for more:
 * after a while the client gives up, and no answer to it is no finding (`undefined`).
 */
function send(port: number, req: Buffer, complete: boolean): Promise<RawResponse | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    const s = connect(port, "127.0.0.1", () => s.write(req));
    s.setTimeout(complete ? 20_000 : 200, () => s.destroy());
    s.on("data", (d: Buffer) => chunks.push(d));
    s.on("error", (e: NodeJS.ErrnoException) => (e.code === "ECONNRESET" || e.code === "EPIPE" ? s.destroy() : reject(e)));
    s.on("close", () => {
      const all = Buffer.concat(chunks);
      const end = all.indexOf("\r\n\r\n");
      if (end < 0) return complete ? reject(new PropertyViolation("no HTTP answer", `${all.length} bytes`)) : resolve(undefined);
      const [statusLine, ...lines] = all.subarray(0, end).toString("latin1").split("\r\n");
      const headers: Record<string, string> = {};
      for (const l of lines) {
        const i = l.indexOf(":");
        headers[l.slice(0, i).toLowerCase()] = l.slice(i + 1).trim();
      }
      const rest = all.subarray(end + 4);
      const length = headers["content-length"] === undefined ? undefined : Number(headers["content-length"]);
      resolve({ status: Number(statusLine!.split(" ")[1]), headers, body: length !== undefined ? rest.subarray(0, length) : decodeChunked(rest, headers) });
    });
  });
}

function decodeChunked(b: Buffer, headers: Record<string, string>): Buffer {
  if (headers["transfer-encoding"] !== "chunked") return b;
  const out: Buffer[] = [];
  let off = 0;
  while (off < b.length) {
    const eol = b.indexOf("\r\n", off);
    if (eol < 0) break;
    const n = parseInt(b.subarray(off, eol).toString("latin1"), 16);
    if (!n) break;
    out.push(b.subarray(eol + 2, eol + 2 + n));
    off = eol + 2 + n + 2;
  }
  return Buffer.concat(out);
}

function requestBytes(i: HttpInput, token: string): Buffer {
  const head = [`${i.method} ${i.path} HTTP/1.1`, "Host: 127.0.0.1", "Connection: close", ...(i.token ? [`Authorization: Bearer ${token}`] : []), ...i.headers.map(([k, v]) => `${k}: ${v}`)];
  if (i.body.length && !i.headers.some(([k]) => k === "transfer-encoding")) head.push(`Content-Length: ${i.body.length}`);
  return Buffer.concat([Buffer.from(head.join("\r\n") + "\r\n\r\n", "latin1"), i.body]);
}

/** Checks one answer against the rule in the header. */
function judge(i: HttpInput, r: RawResponse): void {
  if (i.method === "HEAD") {
    if (r.status >= 500 && r.status !== 503) throw new PropertyViolation(`answered ${r.status}`, `HEAD ${i.path.slice(0, 80)}`);
    return;
  }
  if (r.status >= 500 && r.status !== 503) throw new PropertyViolation(`answered ${r.status}`, `${i.method} ${i.path.slice(0, 80)}: ${r.body.toString("utf8").slice(0, 200)}`);
  const type = r.headers["content-type"] ?? "";
  if (r.status >= 400 && type.startsWith("application/json")) {
    let body: unknown;
    try {
      body = JSON.parse(r.body.toString("utf8"));
    } catch {
      throw new PropertyViolation(`${r.status} with a JSON type and a body that is not JSON`, r.body.toString("utf8").slice(0, 200));
    }
    if (typeof (body as { code?: unknown })?.code !== "string" || !(body as { code: string }).code) throw new PropertyViolation(`${r.status} error body without a code`, r.body.toString("utf8").slice(0, 200));
  } else if (r.status >= 400 && r.body.length && !type.startsWith("application/ocsp-response")) {
    throw new PropertyViolation(`${r.status} error body of type ${JSON.stringify(type)}, not JSON with a code`, r.body.toString("utf8").slice(0, 120));
  }
}

export async function serverTarget(c: Corpus): Promise<FuzzTarget<HttpInput> & { readonly port: number; close(): Promise<void> }> {
  const cas = await Promise.all(c.caIds.map(async (id) => CertificationAuthority.open((await c.ws.store.getCa(id))!, c.passphrase, c.ws.config)));
  await renewOcspSigners(c.ws.store, cas, { now: c.ws.clock.now(), passphrase: c.passphrase });
  const reg = await registerVerifier(c.ws, { name: "fuzz", kind: "government" });
  const errors: unknown[] = [];
  // the per-verifier rate limit would turn most requests into 429s: the fuzz verifier is not limited
  const { app } = await buildServer(c.ws, { ocsp: { passphrase: c.passphrase }, access: { onError: (e) => errors.push(e) } });
  await (app as FastifyInstance).listen({ host: "127.0.0.1", port: 0 });
  const port = (app.server.address() as AddressInfo).port;
  return {
    name: "http",
    parser: "src/server/app.ts buildServer: every route of `jpki serve` over loopback HTTP/1.1",
    arbitrary: httpInputs(c),
    run: async (i) => {
      const complete = !i.headers.some(([k]) => k === "transfer-encoding" || k === "expect");
      const r = await send(port, requestBytes(i, reg.token!), complete);
      const e = errors.shift();
      if (e) throw e;
      if (r) judge(i, r);
    },
    toVector: (i) => requestBytes(i, "TOKEN"),
    testRuns: 150,
    port,
    close: () => app.close(),
  };
}
