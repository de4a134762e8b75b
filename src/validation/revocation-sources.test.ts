/**
 * CrlCache against a small node:http server on loopback: a fresh cache downloads, a warm one costs a 304, a CRL
 * past its nextUpdate is fetched again unconditionally, a failure falls back to the cached copy (stale) or gives
 * none (failed); the bearer token is sent. The clock is injected; nothing sleeps, but for the download timeouts
 * at the end, which are of real time.
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, beforeEach, describe, expect, test } from "vitest";
import { slowly } from "../../test/slow-body.js";
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

/**
 * The download's clocks (download-clock.ts) over a server of each test's own, which sends the CRL in pieces: the
 * timeout is of inactivity, so a steady download runs past it, a stall fails after it, and a trickle that never
 * ends meets the total. Real time, kept short by the options.
 */
describe("CrlCache: an inactivity timeout plus a total", () => {
  const servers: Server[] = [];
  afterAll(() => Promise.all(servers.map((s) => new Promise<void>((r) => (s.closeAllConnections(), s.close(() => r()))))));
  const serve = async (handler: Parameters<typeof createServer>[1]) => {
    const s = createServer(handler);
    servers.push(s);
    await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
    return `http://127.0.0.1:${(s.address() as AddressInfo).port}/slow.crl`;
  };
  const der = crlDer(T0, T0 + DAY);

  test("a CRL that comes slowly but steadily, for longer than the timeout, is downloaded", async () => {
    // Pieces of one byte, one every 50 ms (a timer never fires early): the last ≥ 3050 ms after the first for this CRL
    // of > 62 bytes, longer than the 3000 ms timeout, which once bounded the whole of it. The pieces counted out, not a
    // clock read, say the body took that long. (A 400 ms timeout left a loaded host 350 ms of slack between two
    // pieces, and 1000 ms still had a paused process — server and client share it — wake with the inactivity timer
    // due before the piece read.)
    const pieces = der.length;
    expect(pieces * 50).toBeGreaterThan(3000 + 50);
    let sent = 0;
    const url = await serve(slowly(der, { pieces, everyMs: 50, onPiece: (n) => (sent = n) }));
    const r = await new CrlCache({ clock: new FixedClock(T0 + 1000), timeoutMs: 3000, totalTimeoutMs: 600_000 }).get(url);
    expect(sent).toBe(pieces);
    expect(r.status).toBe("downloaded");
    expect(r.der!.equals(der)).toBe(true);
  });

  test("a download that stalls midway fails once no byte has come for the timeout, well before the total; a cached copy is given instead", async () => {
    const clock = new FixedClock(T0 + 1000);
    let stall = false;
    const steady = slowly(der, { pieces: 20, everyMs: 20 });
    // steady for 65 pieces of one byte, one every 50 ms (≥ 3200 ms, longer than the timeout), then nothing, the
    // connection left open
    expect(der.length).toBeGreaterThan(65);
    let sent = 0;
    const stalling = slowly(der, { pieces: der.length, everyMs: 50, stallAfter: 65, onPiece: (n) => (sent = n) });
    const url = await serve((q, res) => (stall ? stalling : steady)!(q, res));
    const cache = new CrlCache({ clock, timeoutMs: 3000, totalTimeoutMs: 600_000 });
    stall = true;
    const failed = await cache.get(url);
    // the inactivity timeout's message (the total's names itself), and only once the stall began: every piece before
    // it went out, over longer than the timeout, so it is the stall, not the time the download had run, that counted
    expect(failed).toMatchObject({ status: "failed", error: `GET ${url}: no byte from the endpoint for 3000 ms` });
    expect(sent).toBe(65);
    stall = false;
    expect((await cache.get(url)).status).toBe("downloaded");
    clock.set(T0 + DAY + 1); // past nextUpdate: asked again unconditionally
    stall = true;
    const stale = await cache.get(url);
    expect(stale).toMatchObject({ status: "stale", error: expect.stringContaining("no byte from the endpoint for 3000 ms") });
    expect(stale.der!.equals(der)).toBe(true);
    expect(cache.stats.failures).toBe(2);
  });

  test("a trickle that never ends meets the total; timeouts that are no number of milliseconds > 0 are refused", async () => {
    const url = await serve((_q, res) => {
      res.writeHead(200, { "content-type": "application/pkix-crl" });
      res.write(Buffer.from([0x30, 0x84]));
      const i = setInterval(() => res.write(Buffer.from([0])), 50);
      res.on("close", () => clearInterval(i));
    });
    // the total's message: only the total ends a trickle (vitest's timeout ends a hang)
    const r = await new CrlCache({ clock: new FixedClock(T0), timeoutMs: 60_000, totalTimeoutMs: 1000 }).get(url);
    expect(r).toMatchObject({ status: "failed", error: expect.stringContaining("not complete within 1000 ms") });
    for (const bad of [{ timeoutMs: 0 }, { totalTimeoutMs: -1 }, { totalTimeoutMs: Number.NaN }]) {
      expect(() => new CrlCache(bad)).toThrow(expect.objectContaining({ code: "ERR_USAGE" }));
    }
  });

  test("a CRL over maxCrlBytes is given up: by default one declared larger than 256 MiB, before it is read; a stream past the bound as it comes", async () => {
    const huge = await serve((_q, res) => {
      res.writeHead(200, { "content-length": String(300 * 1024 ** 2) });
      res.write(Buffer.from([0x30, 0x84])); // and nothing more
    });
    const clock = new FixedClock(T0 + 1000);
    expect(await new CrlCache({ clock, timeoutMs: 5000 }).get(huge)).toMatchObject({ status: "failed", error: `GET ${huge}: the CRL is ${300 * 1024 ** 2} bytes, more than the ${256 * 1024 ** 2} bytes accepted` });
    const undeclared = await serve((_q, res) => {
      res.writeHead(200, { "content-type": "application/pkix-crl" }); // chunked: no length said
      res.end(der);
    });
    expect(await new CrlCache({ clock, maxCrlBytes: der.length - 1 }).get(undeclared)).toMatchObject({ status: "failed", error: `GET ${undeclared}: the CRL is more than the ${der.length - 1} bytes accepted` });
    expect((await new CrlCache({ clock, maxCrlBytes: der.length }).get(undeclared)).status).toBe("downloaded");
    expect(() => new CrlCache({ maxCrlBytes: 0 })).toThrow(expect.objectContaining({ code: "ERR_USAGE" }));
  });

  test("a body not the length its Content-Length says, cut short or going on past it, is no CRL: a cached copy is given instead", async () => {
    const clock = new FixedClock(T0 + 1000);
    const url = "http://crl.example/13-sig.crl";
    let answer = (): Response => new Response(der, { status: 200, headers: { "content-length": String(der.length) } });
    const cache = new CrlCache({ clock, fetch: async () => answer() });
    const framed = (body: Buffer) => () => new Response(body, { status: 200, headers: { "content-length": String(der.length) } });
    answer = framed(der.subarray(0, -3));
    expect(await cache.get(url)).toMatchObject({ status: "failed", error: `GET ${url}: the CRL ended after ${der.length - 3} of the ${der.length} bytes its Content-Length says` });
    answer = framed(Buffer.concat([der, Buffer.alloc(3)]));
    expect(await cache.get(url)).toMatchObject({ status: "failed", error: `GET ${url}: the CRL goes on past the ${der.length} bytes its Content-Length says` });
    answer = framed(der);
    expect((await cache.get(url)).status).toBe("downloaded");
    answer = framed(der.subarray(0, -3));
    expect(await cache.get(url)).toMatchObject({ status: "stale", error: expect.stringContaining("ended after"), der });
  });
});
