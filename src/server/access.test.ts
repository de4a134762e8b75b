/**
 * Fetch records of registered verifiers (access.ts): counted per (verifier, path, status) and flush interval,
 * written as one record each, kept while the store fails, bounded.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { describe, expect, it, vi } from "vitest";
import type { Store, VerifierFetch, VerifierRecord } from "../store/types.js";
import { certificateSha256, tokenSha256 } from "../verifier/credentials.js";
import { MAX_RECORDED_PATH, REPEATED_AUTHORIZATION, REPEATED_HOST, repeatedFields, VerifierAccess, type AccessOptions } from "./access.js";
import type { RecoveredError } from "./repeated-errors.js";
import { StoreWatchdog } from "../store/watchdog.js";
import { JpkiError } from "../errors.js";

const TOKEN_A = "jpkiv_" + "A".repeat(43);
const TOKEN_B = "jpkiv_" + "B".repeat(43);
const verifier = (id: string, token: string): VerifierRecord => ({ id, name: id, kind: "government", tokenSha256: tokenSha256(token), certSha256: undefined, certNotAfter: undefined, createdAt: new Date(0), revokedAt: undefined });

/** A store with just what VerifierAccess uses; `failing` makes writes throw. */
function fakeStore() {
  const written: VerifierFetch[][] = [];
  const s = {
    failing: false,
    written,
    verifiers: [verifier("v-a", TOKEN_A), verifier("v-b", TOKEN_B)],
    listVerifiers: async () => s.verifiers,
    getVerifierCa: async () => undefined,
    recordVerifierFetches: async (batch: readonly VerifierFetch[]) => {
      if (s.failing) throw Object.assign(new Error("disk full"), { code: "ERR_STORE" });
      written.push([...batch]);
    },
  };
  return s;
}

function request(url: string, token?: string): IncomingMessage {
  const headers: Record<string, string> = token ? { authorization: `Bearer ${token}` } : {};
  // rawHeaders as node gives them (name, value, …): admit() looks there for a repeated Authorization
  return { url, method: "GET", headers, rawHeaders: Object.entries(headers).flat(), socket: { encrypted: false } } as unknown as IncomingMessage;
}
const response = () => ({ writeHead() {}, end() {} }) as unknown as ServerResponse;

async function access(store: ReturnType<typeof fakeStore>, wall: { t: number }, o: Partial<AccessOptions> = {}) {
  const errors: string[] = [];
  const messages: string[] = [];
  const a = new VerifierAccess(store as unknown as Store, {
    prefix: "",
    openRoutes: ["/healthz"],
    rateLimit: { perSecond: 0, burst: 0 },
    flushMs: 3_600_000,
    wallClock: () => new Date(wall.t),
    onError: (e, what) => (errors.push(what), messages.push((e as Error).message)),
    ...o,
  });
  await a.start();
  /** a request answered with `status` */
  const fetch = (url: string, status: number, token?: string) => {
    const req = request(url, token);
    if (a.admit(req, response())) a.record(req, status);
  };
  return { a, fetch, errors, messages };
}

describe("verifier credentials", () => {
  it("refuses a client certificate past its notAfter on a connection kept alive since its handshake", async () => {
    const raw = Buffer.from("the verifier's client certificate (DER)");
    const wall = { t: Date.UTC(2030, 0, 1) };
    const store = fakeStore();
    store.verifiers = [{ ...verifier("v-c", TOKEN_A), tokenSha256: undefined, certSha256: certificateSha256(raw), certNotAfter: new Date(wall.t + 60_000) }];
    const { a } = await access(store, wall);
    // one TLS socket, authorized at its handshake (the certificate was valid then), carrying every request
    const socket = { encrypted: true, authorized: true, getPeerCertificate: () => ({ raw }) };
    const onSocket = () => ({ ...request("/crl/13-sig.crl"), socket }) as unknown as IncomingMessage;
    expect(a.admit(onSocket(), response())).toBe(true);
    wall.t += 61_000;
    await a.refresh();
    expect(a.admit(onSocket(), response())).toBe(false);
    await a.close();
  });

  it("answers 400 to Authorization sent twice in any case of its name, and admits one beside If-None-Match (a name of the same length)", async () => {
    const { a } = await access(fakeStore(), { t: 0 });
    const statuses: number[] = [];
    const res = () => ({ writeHead: (s: number) => statuses.push(s), end() {} }) as unknown as ServerResponse;
    const withRaw = (rawHeaders: string[]) => ({ ...request("/crl/13-sig.crl", TOKEN_A), rawHeaders }) as unknown as IncomingMessage;
    const bearer = `Bearer ${TOKEN_A}`;
    for (const twice of [["Authorization", "authorization"], ["authorization", "AUTHORIZATION"], ["aUTHORIZATION", "Authorization"]]) {
      expect(a.admit(withRaw([twice[0]!, bearer, "Host", "x", twice[1]!, bearer]), res())).toBe(false);
    }
    expect(statuses).toEqual([400, 400, 400]);
    expect(a.admit(withRaw(["If-None-Match", '"x"', "authorization", bearer, "if-none-match", '"y"']), res())).toBe(true);
    await a.close();
  });

  it("finds a repeated Host and a repeated Authorization in one walk, in any case of their names, and nothing else of their lengths", () => {
    const names = (...n: string[]) => n.flatMap((name) => [name, "v"]);
    expect(repeatedFields(names("Host", "Authorization", "If-None-Match", "if-none-match", "Date", "date"))).toBe(0);
    for (const [a, b] of [["Host", "host"], ["HOST", "Host"], ["hOsT", "host"]]) expect(repeatedFields(names(a!, "Accept", b!))).toBe(REPEATED_HOST);
    expect(repeatedFields(names("authorization", "Host", "AUTHORIZATION"))).toBe(REPEATED_AUTHORIZATION);
    expect(repeatedFields(names("Host", "Authorization", "host", "Authorization"))).toBe(REPEATED_HOST | REPEATED_AUTHORIZATION);
    expect(repeatedFields([])).toBe(0);
  });

  it("takes the caller's walk of the headers when given (app.ts walks them once for Host and Authorization)", async () => {
    const { a } = await access(fakeStore(), { t: 0 });
    const statuses: number[] = [];
    const res = () => ({ writeHead: (s: number) => statuses.push(s), end() {} }) as unknown as ServerResponse;
    expect(a.admit(request("/crl/13-sig.crl", TOKEN_A), res(), REPEATED_AUTHORIZATION)).toBe(false);
    expect(a.admit(request("/crl/13-sig.crl", TOKEN_A), res(), REPEATED_HOST)).toBe(true);
    expect(statuses).toEqual([400]);
    await a.close();
  });

  it("limits a verifier's rate on the monotonic clock: the burst, then one request per refilled token", async () => {
    const t = { now: 0 };
    const { a } = await access(fakeStore(), { t: 0 }, { rateLimit: { perSecond: 2, burst: 3 }, now: () => t.now });
    const admitted = () => a.admit(request("/crl/13-sig.crl", TOKEN_A), response());
    expect([admitted(), admitted(), admitted(), admitted()]).toEqual([true, true, true, false]);
    t.now += 499;
    expect(admitted()).toBe(false);
    t.now += 1;
    expect([admitted(), admitted()]).toEqual([true, false]);
    await a.close();
  });

  it("refuses a revoked verifier's token from the next refresh on, though its header was seen before", async () => {
    const store = fakeStore();
    const { a } = await access(store, { t: 0 });
    const status = (token: string | undefined) => {
      let got = 200;
      const res = { writeHead: (s: number) => (got = s), end() {} } as unknown as ServerResponse;
      a.admit(request("/crl/13-sig.crl", token), res);
      return got;
    };
    expect([status(TOKEN_A), status(TOKEN_A), status(TOKEN_B), status(undefined), status("jpkiv_" + "C".repeat(43))]).toEqual([200, 200, 200, 401, 401]);
    store.verifiers = [{ ...verifier("v-a", TOKEN_A), revokedAt: new Date(1) }, verifier("v-b", TOKEN_B)];
    expect(status(TOKEN_A)).toBe(200); // until the refresh
    await a.refresh();
    expect([status(TOKEN_A), status(TOKEN_B)]).toEqual([401, 200]);
    await a.close();
  });
});

describe("verifier fetch records", () => {
  it("writes one record per (verifier, path, status) per interval, counting the fetches from first to last", async () => {
    const store = fakeStore();
    const wall = { t: 1_000 };
    const { a, fetch } = await access(store, wall);
    for (let i = 0; i < 3; i++) fetch("/crl/13-sig.crl", 304, TOKEN_A), (wall.t += 10);
    fetch("/crl/13-sig.crl?x=1", 200, TOKEN_A);
    wall.t += 5;
    fetch("/crl/13-sig.crl", 304, TOKEN_B);
    fetch("/ca/13-sig.crt", 200, TOKEN_A);
    fetch("/healthz", 200); // anonymous, on an open route: nobody's fetch
    await a.flush();
    const byKey = (f: VerifierFetch) => `${f.verifierId} ${f.path} ${f.status}`;
    expect(store.written.flat().sort((x, y) => (byKey(x) < byKey(y) ? -1 : 1))).toEqual([
      { verifierId: "v-a", scope: "ca-certificate", path: "/ca/13-sig.crt", status: 200, at: new Date(1_035), count: 1, lastAt: new Date(1_035) },
      { verifierId: "v-a", scope: "crl", path: "/crl/13-sig.crl", status: 200, at: new Date(1_030), count: 1, lastAt: new Date(1_030) },
      { verifierId: "v-a", scope: "crl", path: "/crl/13-sig.crl", status: 304, at: new Date(1_000), count: 3, lastAt: new Date(1_020) },
      { verifierId: "v-b", scope: "crl", path: "/crl/13-sig.crl", status: 304, at: new Date(1_035), count: 1, lastAt: new Date(1_035) },
    ]);
    expect(a.fetchRecords).toEqual({ recorded: 4, fetches: 6, dropped: 0, queued: 0, unknown: 0 });
    // the next interval starts its own counts
    fetch("/crl/13-sig.crl", 304, TOKEN_A);
    await a.flush();
    expect(store.written.at(-1)).toEqual([{ verifierId: "v-a", scope: "crl", path: "/crl/13-sig.crl", status: 304, at: new Date(1_035), count: 1, lastAt: new Date(1_035) }]);
    await a.close();
  });

  it("keeps the records while the store fails and writes them when it answers", async () => {
    const store = fakeStore();
    const wall = { t: 0 };
    const { a, fetch, errors } = await access(store, wall);
    store.failing = true;
    fetch("/crl/13-sig.crl", 304, TOKEN_A);
    fetch("/crl/13-sig.crl", 304, TOKEN_A);
    await a.flush();
    expect(errors).toHaveLength(1);
    expect(a.fetchRecords).toMatchObject({ recorded: 0, dropped: 0, queued: 1 });
    wall.t = 2_000;
    fetch("/crl/13-sig.crl", 304, TOKEN_A);
    store.failing = false;
    await a.close();
    expect(store.written.flat().map((f) => [f.count, f.at.getTime(), f.lastAt.getTime()])).toEqual([
      [2, 0, 0],
      [1, 2_000, 2_000],
    ]);
    expect(a.fetchRecords).toEqual({ recorded: 2, fetches: 3, dropped: 0, queued: 0, unknown: 0 });
  });

  it("counts a write whose connection was lost after it was sent as maybe written, says so, and never sends it again (re-queued, a write the server had committed was written twice)", async () => {
    const store = fakeStore();
    const wall = { t: 0 };
    const { a, fetch, errors } = await access(store, wall);
    const lost = new JpkiError("ERR_STORE_UNREACHABLE", "the PostgreSQL server cannot be reached (ECONNRESET) … (the statement was sent …)", { details: { reason: "network", code: "ECONNRESET", connectionLost: "after-sending" } });
    const write = store.recordVerifierFetches;
    store.recordVerifierFetches = async () => Promise.reject(lost);
    fetch("/crl/13-sig.crl", 304, TOKEN_A);
    await a.flush();
    expect(a.fetchRecords).toMatchObject({ recorded: 0, dropped: 0, queued: 0, unknown: 1 });
    expect(errors).toEqual(["recording verifier fetches (sent, then the connection was lost: counted as maybe written, not sent again)"]);
    store.recordVerifierFetches = write;
    fetch("/crl/13-sig.crl", 200, TOKEN_A);
    await a.close();
    expect(store.written.flat().map((f) => f.status)).toEqual([200]);
    expect(a.fetchRecords).toEqual({ recorded: 1, fetches: 1, dropped: 0, queued: 0, unknown: 1 });
  });

  it("says a write failure that lasts once, then at most every five minutes with how often it came, and says when it stopped (server/repeated-errors.ts: a hard outage said it every second)", async () => {
    const store = fakeStore();
    const wall = { t: 0 };
    const recovered: Array<[RecoveredError, string]> = [];
    const { a, fetch, errors, messages } = await access(store, wall, { onRecovered: (r, what) => recovered.push([r, what]) });
    store.failing = true;
    for (let i = 0; i < 5; i++) {
      fetch(`/crl/${i}.crl`, 200, TOKEN_A);
      await a.flush();
      wall.t += 1_000;
    }
    expect(errors).toEqual(["recording verifier fetches (kept, retried)"]);
    expect(messages).toEqual(["disk full"]);
    wall.t += 5 * 60_000;
    await a.flush();
    expect(errors).toHaveLength(2);
    expect(messages[1]).toMatch(/^disk full \(failing since 1970-01-01T00:00:00.000Z: 5 more times since it was last said\)$/);
    store.failing = false;
    await a.flush();
    expect(recovered).toEqual([[{ code: "ERR_STORE", message: "disk full", times: 6, since: new Date(0) }, "recording verifier fetches (kept, retried)"]]);
    expect(a.fetchRecords).toMatchObject({ recorded: 5, queued: 0, dropped: 0 });
    // a new failure is said again at once
    store.failing = true;
    fetch("/crl/x.crl", 200, TOKEN_A);
    await a.flush();
    expect(errors).toHaveLength(3);
    store.failing = false;
    await a.close();
  });

  it("says a re-read failure of the registrations that lasts once, not every refresh, and when it stopped", async () => {
    const store = fakeStore();
    const recovered: string[] = [];
    const { a, errors } = await access(store, { t: 0 }, { refreshMs: 5, onRecovered: (r, what) => recovered.push(`${what}: ${r.code} ${r.times}`) });
    try {
      const list = store.listVerifiers;
      let reads = 0;
      store.listVerifiers = async () => {
        reads++;
        throw Object.assign(new Error("connection refused"), { code: "ERR_STORE_UNREACHABLE" });
      };
      await vi.waitFor(() => expect(reads).toBeGreaterThanOrEqual(5));
      expect(errors).toEqual(["re-reading the registered verifiers (the previous list stays in force)"]);
      store.listVerifiers = list;
      await vi.waitFor(() => expect(recovered).toHaveLength(1));
      expect(recovered[0]).toMatch(/^re-reading the registered verifiers \(the previous list stays in force\): ERR_STORE_UNREACHABLE \d+$/);
      expect(errors).toHaveLength(1);
    } finally {
      await a.close();
    }
  });

  it(`keeps at most ${MAX_RECORDED_PATH} characters of a path: a padded OCSP GET wrote a ~10 KB record per request`, async () => {
    const store = fakeStore();
    const { a, fetch } = await access(store, { t: 0 });
    const long = `/ocsp/13-sig/${"A".repeat(10_000)}`;
    fetch(long, 200, TOKEN_A);
    fetch(`${long}B`, 200, TOKEN_A); // the same first characters: the same record
    fetch("/ocsp/13-sig/MFEw", 200, TOKEN_A);
    await a.flush();
    expect(store.written.flat().map((f) => [f.path, f.count])).toEqual([
      [`${long.slice(0, MAX_RECORDED_PATH)}…`, 2],
      ["/ocsp/13-sig/MFEw", 1],
    ]);
    await a.close();
  });

  it("drops the oldest records past maxQueued and counts them", async () => {
    const store = fakeStore();
    const { a, fetch } = await access(store, { t: 0 }, { maxQueued: 2 });
    store.failing = true;
    for (const p of ["/crl/a.crl", "/crl/b.crl", "/crl/c.crl"]) fetch(p, 404, TOKEN_A);
    await a.flush();
    store.failing = false;
    await a.flush();
    expect(store.written.flat().map((f) => f.path)).toEqual(["/crl/b.crl", "/crl/c.crl"]);
    expect(a.fetchRecords).toMatchObject({ recorded: 2, dropped: 1 });
    await a.close();
  });

  it("writes early once batchSize distinct fetches gather", async () => {
    const store = fakeStore();
    const { a, fetch } = await access(store, { t: 0 }, { batchSize: 3 });
    for (let i = 0; i < 10; i++) fetch("/crl/13-sig.crl", 304, TOKEN_A); // one record, however many polls
    expect(store.written).toHaveLength(0);
    fetch("/crl/x.crl", 404, TOKEN_A);
    fetch("/crl/y.crl", 404, TOKEN_A);
    await new Promise((r) => setImmediate(r));
    expect(store.written.flat().map((f) => [f.path, f.count])).toEqual([
      ["/crl/13-sig.crl", 10],
      ["/crl/x.crl", 1],
      ["/crl/y.crl", 1],
    ]);
    await a.close();
  });
});

describe("verifier fetch records with jpki serve's store watchdog (each batch a watched call)", () => {
  const WAIT = 30;
  const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
  // The watchdog's clock, moved by the test: on the wall clock, a host that took this process off the CPU for more
  // than WAIT between two flushes let the second through as a probe where the test expected it refused.
  const clock = { t: 0 };
  /** `flush()` while the bound passes: the write it sends is declared late at the watchdog's next sweep */
  const flushPastBound = async (a: { flush(): Promise<unknown> }) => {
    const flushed = a.flush();
    clock.t += WAIT;
    await flushed;
  };
  const late = (lateCall: string) => new JpkiError("ERR_STORE_UNRESPONSIVE", "cut", { details: { lateCall } });

  it("a write past the bound is abandoned, not waited for; its own outcome says where its records count: written once, retried when never sent, never retried when its connection was closed (it may have committed)", async () => {
    const store = fakeStore();
    const outcomes: Array<{ resolve(): void; reject(e: unknown): void }> = [];
    const calls: string[][] = [];
    // every write hangs until the test settles it
    store.recordVerifierFetches = (batch: readonly VerifierFetch[]) => {
      calls.push(batch.map((f) => f.path));
      return new Promise<void>((resolve, reject) => outcomes.push({ resolve: () => (store.written.push([...batch]), resolve()), reject }));
    };
    const dog = new StoreWatchdog({ waitMs: WAIT, now: () => clock.t });
    // no re-read of the registrations meanwhile: it could be the stall's probe
    const { a, fetch, errors } = await access(store, { t: 0 }, { watchdog: dog, refreshMs: 3_600_000 });
    /** a flush, after a bound's wait: the one call let through while stalled (the probe) is this one */
    const probe = async () => {
      clock.t += WAIT * 1.5;
      await flushPastBound(a);
    };
    try {
      fetch("/crl/a.crl", 200, TOKEN_A);
      await flushPastBound(a); // settles at the bound, the write in flight
      expect(a.fetchRecords).toMatchObject({ recorded: 0, queued: 0, unknown: 1 });
      // refused while stalled: nothing sent, kept
      fetch("/crl/b.crl", 200, TOKEN_A);
      // (a refused flush ends at once; one that sent the write would wait for a bound the clock does not reach here)
      await Promise.race([a.flush(), sleep(10_000)]);
      expect(calls).toEqual([["/crl/a.crl"]]);
      expect(a.fetchRecords).toMatchObject({ queued: 1, unknown: 1 });
      // the late write lands after all: written, once
      outcomes[0]!.resolve();
      await sleep(0);
      expect(a.fetchRecords).toMatchObject({ recorded: 1, queued: 1, unknown: 0 });
      // the probe: b goes late too, and its statement was never sent (a connection only after the bound): kept, retried
      await probe();
      expect(calls[1]).toEqual(["/crl/b.crl"]);
      outcomes[1]!.reject(late("not-sent"));
      await sleep(0);
      expect(a.fetchRecords).toMatchObject({ recorded: 1, queued: 1, unknown: 0 });
      // the next probe sends b again, with c; late, and its connection is closed under it: maybe written, never again
      fetch("/crl/c.crl", 200, TOKEN_A);
      await probe();
      expect(calls[2]).toEqual(["/crl/b.crl", "/crl/c.crl"]);
      outcomes[2]!.reject(late("connection-closed"));
      await sleep(0);
      expect(a.fetchRecords).toMatchObject({ recorded: 1, queued: 0, unknown: 2 });
      // so is one whose connection was lost under it by itself after it was sent (an ECONNRESET, not the cut)
      fetch("/crl/c2.crl", 200, TOKEN_A);
      await probe();
      expect(calls[3]).toEqual(["/crl/c2.crl"]);
      outcomes[3]!.reject(new JpkiError("ERR_STORE_UNREACHABLE", "reset", { details: { reason: "network", connectionLost: "after-sending" } }));
      await sleep(0);
      expect(a.fetchRecords).toMatchObject({ recorded: 1, queued: 0, unknown: 3 });
      // the store answers again: d is written, and b and c are not sent again
      fetch("/crl/d.crl", 200, TOKEN_A);
      clock.t += WAIT * 1.5;
      const flushed = a.flush();
      outcomes[4]!.resolve();
      await flushed;
      expect(calls.slice(4)).toEqual([["/crl/d.crl"]]);
      expect(dog.stalled).toBe(false);
      expect(a.fetchRecords).toEqual({ recorded: 2, fetches: 2, dropped: 0, queued: 0, unknown: 3 });
      expect(store.written.flat().map((f) => f.path)).toEqual(["/crl/a.crl", "/crl/d.crl"]);
      // the watchdog reports the stall, once; no flush says it again
      expect(errors).toEqual([]);
      // a failure of the store's own within the bound is still kept and said
      fetch("/crl/e.crl", 200, TOKEN_A);
      const failing = a.flush();
      outcomes[5]!.reject(Object.assign(new Error("disk full"), { code: "ERR_STORE" }));
      await failing;
      expect(a.fetchRecords).toMatchObject({ queued: 1, unknown: 3 });
      expect(errors).toEqual(["recording verifier fetches (kept, retried)"]);
    } finally {
      store.recordVerifierFetches = async () => undefined;
      clock.t += WAIT; // a write a failed assertion left in flight goes late: the close does not wait on the stopped clock
      await a.close();
      dog.close();
    }
  });
});

describe("the status page's scopes", () => {
  it("admits anyone to the page's files (/ and /ui/*) whatever openRoutes says; the overview and signed files need a credential", async () => {
    const { a } = await access(fakeStore(), { t: 0 });
    try {
      const admitted = (url: string, token?: string) => a.admit(request(url, token), response());
      for (const url of ["/", "/ui/app.js", "/ui/app.css", "/?x=1"]) expect(admitted(url), url).toBe(true);
      for (const url of ["/v1/overview", "/v1/verify-signature", "/v1/validate", "/favicon.ico", "/uix"]) expect(admitted(url), url).toBe(false);
      for (const url of ["/v1/overview", "/v1/verify-signature"]) expect(admitted(url, TOKEN_A), url).toBe(true);
      // a token that names nobody is refused even on the open page: a wrong credential is never ignored
      expect(admitted("/", "jpkiv_" + "Z".repeat(43))).toBe(false);
    } finally {
      await a.close();
    }
  });
});

describe("the scope of a request target", () => {
  it("is decided on the path the router matches: /metrics stays the operator's behind a fragment or percent-encoding", async () => {
    const { a } = await access(fakeStore(), { t: 0 });
    try {
      const status = (url: string, token?: string) => {
        let got = 200;
        a.admit(request(url, token), { writeHead: (s: number) => (got = s), end() {} } as unknown as ServerResponse);
        return got;
      };
      // fastify answers every one of these as GET /metrics: a verifier's token must get 403 on each.
      for (const url of ["/metrics", "/metrics#x", "/%6detrics", "/met%72ics?x=1", "/metrics#/crl/13-sig.crl"]) expect(status(url, TOKEN_A), url).toBe(403);
      // the absolute form (RFC 9112 §3.2.2), which the router answers by its path
      for (const url of ["http://127.0.0.1/metrics", "HTTPS://jpki.example:8443/metrics?x=1", "http://user@host/%6detrics"]) expect(status(url, TOKEN_A), url).toBe(403);
      expect(status("http://127.0.0.1/healthz")).toBe(200);
      expect(status("http://127.0.0.1/v1/overview")).toBe(401);
      // …and the open page is not opened wider by them
      expect(status("/v1/overview#/ui/app.js")).toBe(401);
      expect(status("/%E0%A4%A")).toBe(401);
      expect(status("/healthz#x")).toBe(200);
    } finally {
      await a.close();
    }
  });
});

describe("refused requests per client address (a client guessing tokens)", () => {
  /** A request from `address`, and what admit() answered it. */
  function asker(a: VerifierAccess) {
    return (address: string, url: string, token?: string) => {
      const got = { status: 200, headers: {} as Record<string, string>, body: "" };
      const res = { writeHead: (s: number, h: Record<string, string>) => ((got.status = s), (got.headers = h)), end: (b?: string) => (got.body = b ?? "") } as unknown as ServerResponse;
      const req = { ...request(url, token), socket: { encrypted: false, remoteAddress: address } } as unknown as IncomingMessage;
      a.admit(req, res);
      return got;
    };
  }
  const GUESS = "jpkiv_" + "G".repeat(43);

  it("answers 429 too-many-refusals with Retry-After once an address's refusals pass the limit; admitted verifiers and other addresses are unaffected", async () => {
    const clock = { ms: 0 };
    const store = fakeStore();
    const a = new VerifierAccess(store as unknown as Store, { prefix: "", openRoutes: ["/healthz"], rateLimit: { perSecond: 0, burst: 1 }, refusedRateLimit: { perSecond: 1, burst: 3 }, now: () => clock.ms, flushMs: 3_600_000 });
    await a.start();
    try {
      const ask = asker(a);
      // a verifier at the address, admitted before the guessing starts
      expect(ask("192.0.2.7", "/crl/13-sig.crl", TOKEN_A).status).toBe(200);
      // no credential at all guesses nothing: never counted (another web site can make a browser send these)
      for (let i = 0; i < 10; i++) expect(ask("192.0.2.7", "/crl/13-sig.crl").status).toBe(401);
      // wrong tokens, a verifier's refused route (403): each a refusal of the address
      expect([ask("192.0.2.7", "/crl/13-sig.crl", GUESS).status, ask("192.0.2.7", "/crl/13-sig.crl", GUESS).status, ask("192.0.2.7", "/metrics", TOKEN_A).status]).toEqual([401, 401, 403]);
      const limited = ask("192.0.2.7", "/crl/13-sig.crl", GUESS);
      expect(limited.status).toBe(429);
      expect(limited.headers["Retry-After"]).toBe("1");
      expect(limited.headers["Cache-Control"]).toBe("no-store");
      expect(JSON.parse(limited.body)).toEqual({ error: "too many refusals", code: "too-many-refusals" });
      // without a credential still the plain 401: nothing was checked
      expect(ask("192.0.2.7", "/crl/13-sig.crl").status).toBe(401);
      // the verifier admitted before is not slowed, nor after the registrations are read again
      expect(ask("192.0.2.7", "/crl/13-sig.crl", TOKEN_A).status).toBe(200);
      await a.refresh();
      expect(ask("192.0.2.7", "/crl/13-sig.crl", TOKEN_A).status).toBe(200);
      // a credential this server has not admitted yet is not even checked from the address meanwhile: a right
      // guess would otherwise be told apart from a wrong one at full speed
      expect(ask("192.0.2.7", "/crl/13-sig.crl", TOKEN_B).status).toBe(429);
      // an open route without a credential guesses nothing: answered
      expect(ask("192.0.2.7", "/healthz").status).toBe(200);
      // another address is not limited
      expect(ask("198.51.100.1", "/crl/13-sig.crl", GUESS).status).toBe(401);
      // a second later the address has one refusal's worth again
      clock.ms += 1000;
      expect([ask("192.0.2.7", "/crl/13-sig.crl", GUESS).status, ask("192.0.2.7", "/crl/13-sig.crl", GUESS).status]).toEqual([401, 429]);
      // once refilled, a new verifier at the address is admitted
      clock.ms += 10_000;
      expect(ask("192.0.2.7", "/crl/13-sig.crl", TOKEN_B).status).toBe(200);
    } finally {
      await a.close();
    }
  });

  it("counts an IPv6 /64 as one client (an attacker holds all of it); an IPv4-mapped address as its IPv4 one; 0 per second turns the limit off", async () => {
    const a = new VerifierAccess(fakeStore() as unknown as Store, { prefix: "", openRoutes: [], rateLimit: { perSecond: 0, burst: 1 }, refusedRateLimit: { perSecond: 1, burst: 1 }, now: () => 0, flushMs: 3_600_000 });
    await a.start();
    try {
      const ask = asker(a);
      expect([ask("2001:db8:1:2::1", "/x", GUESS).status, ask("2001:db8:1:2:ffff::9", "/x", GUESS).status, ask("2001:0db8:0001:0002::abcd", "/x", GUESS).status]).toEqual([401, 429, 429]);
      expect(ask("2001:db8:1:3::1", "/x", GUESS).status).toBe(401);
      expect([ask("203.0.113.5", "/x", GUESS).status, ask("::ffff:203.0.113.5", "/x", GUESS).status]).toEqual([401, 429]);
    } finally {
      await a.close();
    }
    const off = new VerifierAccess(fakeStore() as unknown as Store, { prefix: "", openRoutes: [], rateLimit: { perSecond: 0, burst: 1 }, refusedRateLimit: { perSecond: 0, burst: 1 }, now: () => 0, flushMs: 3_600_000 });
    await off.start();
    try {
      const ask = asker(off);
      for (let i = 0; i < 5; i++) expect(ask("192.0.2.7", "/x", GUESS).status).toBe(401);
    } finally {
      await off.close();
    }
  });
});
