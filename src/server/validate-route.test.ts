import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { ValidationQuery, VerifierValidationService } from "../verifier/validation-service.js";
import type { VerifierAccess } from "./access.js";
import { BASE64, BODY_LIMIT, parseValidateBody, VALIDATE_ERRORS, validateFastPath } from "./validate-route.js";
import { parseSignatureBody } from "./verify-signature-route.js";

const codeOf = (body: unknown): string | undefined => {
  try {
    parseValidateBody(body);
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
};

const signatureCodeOf = (body: unknown): string | undefined => {
  try {
    parseSignatureBody(body);
    return undefined;
  } catch (e) {
    return (e as { code?: string }).code;
  }
};

describe("POST /v1/validate body (parseValidateBody)", () => {
  it("refuses each malformed part with its typed code", () => {
    expect(codeOf(null)).toBe("body-invalid");
    expect(codeOf("x")).toBe("body-invalid");
    expect(codeOf({ purpose: "signature" })).toBe("certificate-missing");
    expect(codeOf({ certificate: 42, purpose: "signature" })).toBe("certificate-malformed");
    expect(codeOf({ certificate: "not base64!", purpose: "signature" })).toBe("certificate-malformed");
    expect(codeOf({ certificate: Buffer.alloc(64, 0x30).toString("base64"), purpose: "signature" })).toBe("certificate-malformed");
    expect(codeOf({ certificate: "x", purpose: "signature", __proto__: { y: 1 }, evil: 1 })).toBe("field-unknown");
    for (const code of ["body-invalid", "certificate-missing", "certificate-malformed", "field-unknown"]) expect(VALIDATE_ERRORS).toHaveProperty([code]);
  });

  it("refuses a PEM block whose body is not base64 as malformed, the certificate's or a chain entry's, not as an internal failure", () => {
    // parsePemBlocks throws ERR_DER_MALFORMED for such a block: it went out of the route as a 500 "internal".
    const junk = "-----BEGIN CERTIFICATE-----\n!!!\n-----END CERTIFICATE-----\n";
    const cert = Buffer.alloc(64, 0x30);
    cert[1] = 62;
    expect(codeOf({ certificate: junk, purpose: "signature" })).toBe("certificate-malformed");
    expect(codeOf({ certificate: cert.toString("base64"), chain: [junk], purpose: "signature" })).toBe("chain-malformed");
  });

  it("reads `at` strictly: a day the month lacks or an hour 24 is time-invalid, not the next day's time", () => {
    // Date's parser rolled 2026-02-30 over to 03-02: a verdict at a time nobody asked for (as --at did in the CLI).
    const cert = Buffer.alloc(64, 0x30);
    cert[1] = 62; // one whole SEQUENCE: the shape a certificate is checked for here
    const body = (at: string) => ({ certificate: cert.toString("base64"), purpose: "signature", at });
    for (const at of ["2026-02-30T00:00:00Z", "2026-04-31T09:00Z", "2026-04-01T24:00Z", "2026-04-01T09:00", "2026-04-01"]) expect(codeOf(body(at)), at).toBe("time-invalid");
    expect(parseValidateBody(body("2026-04-01T09:00:00+09:00")).at?.toISOString()).toBe("2026-04-01T00:00:00.000Z");
    for (const at of ["2026-02-30T00:00:00Z", "2026-04-01T09:00"]) expect(signatureCodeOf({ signedData: "MAA=", at }), at).toBe("time-invalid");
  });
});

describe("base64 fields (BASE64)", () => {
  it("take whitespace anywhere and padding at the end, and refuse anything else", () => {
    for (const ok of ["QUJD", "QUJD\nRA==\n", "QU JD RA =\r\n=", " QUJDRA== "]) expect(BASE64.test(ok), JSON.stringify(ok)).toBe(true);
    for (const bad of ["", "QUJD!", "QU=JD", "QUJD===", "=QUJD", "QUJD==x"]) expect(BASE64.test(bad), JSON.stringify(bad)).toBe(false);
  });

  it("are checked in linear time: a run of whitespace before a stray character no longer stalls the server", () => {
    // Quadratic before: 40 000 spaces took seconds on the server's one thread (a 2 MiB signed-file body, hours).
    // No clock here: at 400 000 spaces a quadratic check would run for minutes, past the test's timeout, while the
    // linear one takes milliseconds.
    const evil = "A" + " ".repeat(400_000) + "!";
    expect(codeOf({ certificate: evil, purpose: "signature" })).toBe("certificate-malformed");
    expect(() => parseSignatureBody({ signedData: evil })).toThrow();
    expect(() => parseSignatureBody({ signedData: "QUJD", content: evil })).toThrow();
  });
});

describe("validateFastPath: the plain requests it takes on bare node:http, the rest left to fastify", () => {
  const der = Buffer.concat([Buffer.from([0x30, 0x82, 0x00, 0x20]), Buffer.alloc(0x20, 1)]); // one DER SEQUENCE
  let answer: () => Promise<unknown> = async () => ({ view: "private", status: "valid", validationTime: "2026-04-01T00:00:00.000Z" });
  const asked: ValidationQuery[] = [];
  const responses: number[] = [];
  const errors: string[] = [];
  const texts: string[] = [];
  const fast = validateFastPath({
    prefix: "/p",
    service: { validate: async (_caller: unknown, q: ValidationQuery) => (asked.push(q), answer()) } as unknown as VerifierValidationService,
    access: { callerOf: () => ({ id: "v-1", kind: "private" }) } as unknown as VerifierAccess,
    parseJson: (_req, text, done) => {
      texts.push(text);
      let v: unknown;
      try {
        v = JSON.parse(text);
      } catch (e) {
        return done(e as Error);
      }
      done(null, v);
    },
    onResponse: (_req, status) => responses.push(status),
    onError: (e) => errors.push((e as { code?: string }).code ?? "?"),
  });
  let server: Server;
  let port: number;
  beforeAll(async () => {
    server = createServer((req, res) => {
      if (!fast(req, res)) res.writeHead(599).end(); // what fastify would have been given
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const send = (o: { method?: string; path?: string; headers?: Record<string, string>; body?: string | string[] }) =>
    new Promise<{ status: number; headers: Record<string, unknown>; body: string }>((resolve, reject) => {
      const req = request({ host: "127.0.0.1", port, method: o.method ?? "POST", path: o.path ?? "/p/v1/validate", headers: { "content-type": "application/json", ...o.headers } }, (res) => {
        let body = "";
        res.setEncoding("utf8");
        res.on("data", (c: string) => (body += c));
        res.on("end", () => resolve({ status: res.statusCode!, headers: res.headers, body }));
      });
      req.on("error", reject);
      const parts = Array.isArray(o.body) ? o.body : [o.body ?? ""];
      // Parts after the first a moment apart, so the server reads them as chunks of their own.
      void (async () => {
        for (const [i, part] of parts.entries()) {
          if (i) await new Promise((r) => setTimeout(r, 30));
          req.write(part);
        }
        req.end();
      })();
    });
  const body = JSON.stringify({ certificate: der.toString("base64"), purpose: "signature" });

  it("answers a plain POST itself, with the service's answer, uncacheable, counted once", async () => {
    const n = responses.length;
    const r = await send({ body, headers: { "content-length": String(Buffer.byteLength(body)) } });
    expect(r.status).toBe(200);
    expect(JSON.parse(r.body)).toEqual({ view: "private", status: "valid", validationTime: "2026-04-01T00:00:00.000Z" });
    expect(r.headers).toMatchObject({ "content-type": "application/json; charset=utf-8", "cache-control": "no-store", "content-length": String(r.body.length) });
    expect(asked.at(-1)).toMatchObject({ certificate: der, purpose: "signature" });
    expect(responses.slice(n)).toEqual([200]);
    const utf8 = await send({ body, headers: { "content-length": String(body.length), "content-type": "Application/JSON; charset=UTF-8" } });
    expect(utf8.status).toBe(200);
  });

  it("reads a body that comes in several chunks whole, a character split between two of them too", async () => {
    // An unknown field holding 年 (three octets in UTF-8), cut between its first and second octet.
    const b = Buffer.from(JSON.stringify({ certificate: der.toString("base64"), purpose: "signature", note: "年" }));
    const cut = b.indexOf(Buffer.from("年")) + 1;
    const r = await send({ body: [b.subarray(0, 10), b.subarray(10, cut), b.subarray(cut)] as unknown as string[], headers: { "content-length": String(b.length) } });
    expect(texts.at(-1)).toBe(b.toString("utf8"));
    expect(r.status).toBe(400);
    expect(JSON.parse(r.body)).toMatchObject({ code: "field-unknown" });
  });

  it("sends a store that does not answer as 503 with Retry-After, and every answer with its type, nosniff and no-store", async () => {
    answer = () => Promise.reject(Object.assign(new Error("stalled"), { code: "ERR_STORE_UNRESPONSIVE" }));
    try {
      const r = await send({ body, headers: { "content-length": String(Buffer.byteLength(body)) } });
      expect(r.status).toBe(503);
      expect(JSON.parse(r.body)).toMatchObject({ code: "store-unresponsive" });
      const seconds = (VALIDATE_ERRORS["store-unresponsive"] as { retryAfterSeconds?: number }).retryAfterSeconds;
      expect(seconds).toBeGreaterThan(0);
      expect(r.headers).toMatchObject({ "retry-after": String(seconds), "content-type": "application/json; charset=utf-8", "x-content-type-options": "nosniff", "cache-control": "no-store", "content-length": String(Buffer.byteLength(r.body)) });
    } finally {
      answer = async () => ({ view: "private", status: "valid", validationTime: "2026-04-01T00:00:00.000Z" });
    }
    const ok = await send({ body, headers: { "content-length": String(Buffer.byteLength(body)) } });
    expect(ok.headers["retry-after"]).toBeUndefined();
    expect(ok.headers).toMatchObject({ "x-content-type-options": "nosniff" });
  });

  it("leaves everything else to fastify: other methods and paths, a query, chunked or oversized bodies, other media types", async () => {
    const length = { "content-length": String(body.length) };
    expect((await send({ method: "PUT", body, headers: length })).status).toBe(599);
    expect((await send({ path: "/p/v1/validate?x=1", body, headers: length })).status).toBe(599);
    expect((await send({ path: "/v1/validate", body, headers: length })).status).toBe(599);
    expect((await send({ body: [body.slice(0, 10), body.slice(10)] })).status).toBe(599); // no length: chunked
    expect((await send({ body, headers: { ...length, "content-type": "text/plain" } })).status).toBe(599);
    expect((await send({ body, headers: { ...length, "content-type": "application/json; charset=latin1" } })).status).toBe(599);
    const big = JSON.stringify({ certificate: "A".repeat(BODY_LIMIT), purpose: "signature" });
    expect((await send({ body: big, headers: { "content-length": String(big.length) } })).status).toBe(599);
  });

  it("answers the route's typed errors: a body that is not JSON, a bad field, a store that fails, an unexpected failure", async () => {
    const post = async (b: string) => {
      const r = await send({ body: b, headers: { "content-length": String(Buffer.byteLength(b)) } });
      return { status: r.status, code: (JSON.parse(r.body) as { code?: string }).code };
    };
    expect(await post(body.slice(0, -1))).toEqual({ status: 400, code: "body-not-json" });
    expect(await post("")).toEqual({ status: 400, code: "body-not-json" });
    expect(await post(JSON.stringify({ certificate: der.toString("base64"), purpose: "other" }))).toEqual({ status: 400, code: "purpose-invalid" });
    answer = () => Promise.reject(Object.assign(new Error("disk full"), { code: "ERR_STORE" }));
    expect(await post(body)).toEqual({ status: 503, code: "store-unavailable" });
    answer = () => Promise.reject(new Error("boom"));
    expect(await post(body)).toEqual({ status: 500, code: "internal" });
    expect(errors.slice(-2)).toEqual(["ERR_STORE", "?"]);
  });
});
