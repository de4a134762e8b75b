/**
 * CrlCache against a small node:http server on loopback: a fresh cache downloads, a warm one costs a 304, a CRL
 * past its nextUpdate is fetched again unconditionally, a failure falls back to the cached copy (stale) or gives
 * none (failed); the bearer token is sent. The clock is injected; nothing sleeps.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { FixedClock } from "../pki/clock.js";
import { bitString, integer, nul, oid, printable, seq, set, time } from "../pki/der.js";
import { CrlCache } from "./revocation-sources.js";

const ISSUER = seq(set(seq(oid("2.5.4.6"), printable("JP"))), set(seq(oid("2.5.4.3"), printable("Source CA"))));
const T0 = Date.UTC(2026, 0, 1);
const DAY = 86_400_000;

function crlDer(thisUpdate: number, nextUpdate: number): Buffer {
  const tbs = seq(integer(1), seq(oid("1.2.840.113549.1.1.11"), nul()), ISSUER, time(new Date(thisUpdate)), time(new Date(nextUpdate)));
  return seq(tbs, seq(oid("1.2.840.113549.1.1.11"), nul()), bitString(Buffer.from([1])));
}

let server: Server;
let base: string;
/** what the server answers: the CRL and its ETag, or a status to fail with */
let body = { der: crlDer(T0, T0 + DAY), etag: '"v1"' };
let failWith: number | undefined;
const seen: Array<{ status: number; headers: IncomingHttpHeaders }> = [];

beforeAll(async () => {
  server = createServer((req, res) => {
    const answer = (status: number, headers: Record<string, string> = {}, data?: Buffer) => {
      seen.push({ status, headers: req.headers });
      res.writeHead(status, headers);
      res.end(data);
    };
    if (req.headers.authorization !== "Bearer s3cret-token") return answer(401);
    if (failWith) return answer(failWith);
    if (req.headers["if-none-match"] === body.etag) return answer(304, { etag: body.etag });
    answer(200, { etag: body.etag, "content-type": "application/pkix-crl", "last-modified": new Date(T0).toUTCString() }, body.der);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});
afterAll(() => new Promise<void>((r) => server.close(() => r())));
beforeEach(() => {
  body = { der: crlDer(T0, T0 + DAY), etag: '"v1"' };
  failWith = undefined;
  seen.length = 0;
});

const make = (clock: FixedClock, extra: { revalidateAfterMs?: number } = {}) => new CrlCache({ clock, bearerToken: "s3cret-token", ...extra });

describe("CrlCache", () => {
  test("fresh: a download; warm: a 304 with If-None-Match, the same bytes, parsed once", async () => {
    const clock = new FixedClock(T0 + 1000);
    const cache = make(clock);
    const a = await cache.get(`${base}/crl/13-sig.crl`);
    expect(a.status).toBe("downloaded");
    expect(a.der!.equals(body.der)).toBe(true);
    const b = await cache.get(`${base}/crl/13-sig.crl`);
    expect(b.status).toBe("not-modified");
    expect(b.der).toBe(a.der);
    expect(seen.map((s) => s.status)).toEqual([200, 304]);
    expect(seen[1]!.headers["if-none-match"]).toBe('"v1"');
    expect(seen.every((s) => s.headers.authorization === "Bearer s3cret-token")).toBe(true);
    expect(cache.stats).toEqual({ requests: 2, notModified: 1, downloads: 1, failures: 0 });
    expect(cache.index.parses).toBe(1);
  });

  test("within revalidateAfterMs no request at all; after it, a 304", async () => {
    const clock = new FixedClock(T0 + 1000);
    const cache = make(clock, { revalidateAfterMs: 60_000 });
    await cache.get(`${base}/a.crl`);
    expect((await cache.get(`${base}/a.crl`)).status).toBe("cached");
    clock.advance(60_000);
    expect((await cache.get(`${base}/a.crl`)).status).toBe("not-modified");
    expect(seen.map((s) => s.status)).toEqual([200, 304]);
  });

  test("past nextUpdate: fetched again without validators, and the new CRL replaces the old", async () => {
    const clock = new FixedClock(T0 + 1000);
    const cache = make(clock, { revalidateAfterMs: 10 * DAY });
    await cache.get(`${base}/a.crl`);
    clock.set(T0 + DAY + 1);
    body = { der: crlDer(T0 + DAY, T0 + 2 * DAY), etag: '"v2"' };
    const again = await cache.get(`${base}/a.crl`);
    expect(again.status).toBe("downloaded");
    expect(again.der!.equals(body.der)).toBe(true);
    expect(seen[1]!.headers["if-none-match"]).toBeUndefined();
    expect((await cache.get(`${base}/a.crl`)).status).toBe("cached");
  });

  test("failure: the cached copy (stale) when there is one, nothing (failed) otherwise; never an exception", async () => {
    const clock = new FixedClock(T0 + 1000);
    const cache = make(clock);
    await cache.get(`${base}/a.crl`);
    failWith = 503;
    const stale = await cache.get(`${base}/a.crl`);
    expect(stale).toMatchObject({ status: "stale", error: expect.stringContaining("HTTP 503") });
    expect(stale.der!.equals(body.der)).toBe(true);
    expect(await cache.get(`${base}/other.crl`)).toMatchObject({ status: "failed", error: expect.stringContaining("HTTP 503") });
    expect(await cache.get("http://127.0.0.1:1/closed.crl")).toMatchObject({ status: "failed" });
    failWith = undefined;
    body = { der: Buffer.from("not a CRL"), etag: '"junk"' };
    expect(await cache.get(`${base}/junk.crl`)).toMatchObject({ status: "failed", error: expect.stringContaining("not a CRL") });
    expect(cache.stats.failures).toBe(4);
  });

  test("a wrong token is a failure (401), and parameters are checked when the cache is made", async () => {
    const cache = new CrlCache({ clock: new FixedClock(T0), bearerToken: "wrong" });
    expect(await cache.get(`${base}/a.crl`)).toMatchObject({ status: "failed", error: expect.stringContaining("401") });
    expect(() => new CrlCache({ revalidateAfterMs: -1 })).toThrow(/revalidateAfterMs/);
    expect(() => new CrlCache({ bearerToken: "two words" })).toThrow(/bearerToken/);
  });

  test("concurrent requests for one URL share one fetch", async () => {
    const cache = make(new FixedClock(T0 + 1000));
    const [a, b] = await Promise.all([cache.get(`${base}/a.crl`), cache.get(`${base}/a.crl`)]);
    expect(a).toBe(b);
    expect(seen).toHaveLength(1);
  });
});
