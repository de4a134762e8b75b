/**
 * The access log of a real server (an AccessLog file, its thread reusing the parts consecutive lines share) under
 * hostile and ordinary traffic at once: every line the file holds is the line accessLine makes of that request's
 * own fields, in the order they were recorded, and each request has the line its answer calls for (method, URL,
 * status, client address, verifier). The server listens on loopback; a peer at 127.0.0.2 is a trusted proxy.
 */
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { randomBytes } from "node:crypto";
import { execFileSync } from "node:child_process";
import { connect, type AddressInfo, type Socket } from "node:net";
import { connect as tlsConnect } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { initCas } from "../ca/manage.js";
import { prefecture } from "../ca/prefectures.js";
import { generateCrls } from "../crl/generate.js";
import { FixedClock } from "../pki/clock.js";
import { registerVerifier } from "../verifier/registration.js";
import { Workspace } from "../workspace/workspace.js";
import { buildServer, type ServerMetrics } from "./app.js";
import { AccessLog, accessLine, type AccessLogSink } from "./access-log.js";
import { loopbackTls } from "../../test/loopback-tls.js";
import { until } from "../../test/until.js";

const clock = new FixedClock(new Date());
let ws: Workspace;
const tokens: string[] = [];
const ids: string[] = [];

beforeAll(async () => {
  ws = Workspace.create(mkdtempSync(join(tmpdir(), "jpki-logserve-")), {
    clock,
    config: { openRoutes: ["/healthz", "/openapi.json"], trustedProxies: ["127.0.0.2"] },
  });
  for (const name of ["log attack a", "log attack b"]) {
    const reg = await registerVerifier(ws, { name, kind: "government" });
    tokens.push(reg.token!);
    ids.push(reg.record.id);
  }
  await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
  await generateCrls(ws, { prefecture: "13", passphrase: "pw" });
}, 60_000);

afterAll(async () => {
  await ws?.close();
});

/** A server whose access log goes to a file, each record also formatted on the spot by accessLine. */
async function serverWithLog(tls?: { cert: Buffer; key: Buffer }): Promise<{ app: FastifyInstance; port: number; log: AccessLog; path: string; expected: string[]; metrics: ServerMetrics }> {
  const path = join(mkdtempSync(join(tmpdir(), "jpki-logserve-")), "access.log");
  const log = new AccessLog(path);
  const expected: string[] = [];
  const tee: AccessLogSink = {
    record(...a) {
      log.record(...a);
      expected.push(accessLine(...a));
    },
  };
  const { app, metrics } = await buildServer(ws, { accessLog: tee, ...(tls ? { tls } : {}) });
  await app.listen({ host: "127.0.0.1", port: 0 });
  return { app, port: (app.server.address() as AddressInfo).port, log, path, expected, metrics };
}

/** Sends `bytes` on a connection (from `localAddress`) and gives everything the server sent until it closed. */
function exchange(port: number, bytes: string | Buffer, o: { localAddress?: string; endAfterMs?: number } = {}): Promise<string> {
  return new Promise((resolve) => {
    const s: Socket = connect({ port, host: "127.0.0.1", ...(o.localAddress ? { localAddress: o.localAddress } : {}) });
    const chunks: Buffer[] = [];
    s.on("error", () => undefined);
    s.on("data", (c: Buffer) => chunks.push(c));
    s.once("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
    s.write(bytes);
    // a keep-alive connection stays open: ended by the client once its answers are in
    const ending = setTimeout(() => s.end(), o.endAfterMs ?? 400);
    s.once("close", () => clearTimeout(ending));
  });
}

// not anchored to a line: a body (a CRL, JSON) ends without a newline, and the next answer follows it at once
const statuses = (answers: string) => [...answers.matchAll(/HTTP\/1\.[01] (\d{3}) /g)].map((m) => Number(m[1]));

interface Logged {
  method: string;
  url: string;
  status: number;
  remote: string;
  verifier: string;
  aborted?: boolean;
}


/**
 * Sends `request` on `s`, reads 256 KiB of the answer, then resets `tcp` (the TCP socket under `s`, or `s` itself)
 * and waits for the access log's record of it.
 */
async function cutShort(s: Socket, tcp: Socket, request: string, expected: readonly unknown[]): Promise<void> {
  let received = 0;
  await new Promise<void>((resolve) => {
    s.on("data", (c: Buffer) => {
      received += c.length;
      if (received >= 256 << 10) resolve();
    });
    s.write(request);
  });
  const before = expected.length;
  tcp.resetAndDestroy();
  await until(() => expected.length !== before, "the cut download's line");
}

/** The access log file's lines, with the fields a cut download's line is checked on. */
function cutLines(path: string): Array<Pick<Logged, "url" | "status" | "aborted" | "remote" | "verifier">> {
  const lines = readFileSync(path, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as Logged);
  return lines.map(({ url, status, aborted, remote, verifier }) => ({ url, status, aborted, remote, verifier }));
}


/** The CRL index's store read held until `release()` (a slow store): its answer not begun meanwhile. `restore()` ends the hold. */
function holdCrlStatus(): { release: () => void; restore: () => void } {
  let release!: () => void;
  const gate = new Promise<void>((r) => (release = r));
  const real = ws.store.crlStatus.bind(ws.store);
  const held = vi.spyOn(ws.store, "crlStatus").mockImplementation(async () => {
    await gate;
    return real();
  });
  return { release, restore: () => held.mockRestore() };
}
describe("access log of a real server (the log thread's reuse of line parts)", () => {
  it("writes for every request, pipelined and interleaved, exactly the line accessLine makes of its own fields", async () => {
    const { app, port, log, path, expected } = await serverWithLog();
    try {
      await (await fetch(`http://127.0.0.1:${port}/crl/13-sig.crl`, { headers: { authorization: `Bearer ${tokens[0]}` } })).arrayBuffer();
      const head = (method: string, target: string, extra = "", version = "1.1") => `${method} ${target} HTTP/${version}\r\nHost: x\r\n${extra}`;
      const as = (i: number) => `Authorization: Bearer ${tokens[i]}\r\n`;
      const crl = await fetch(`http://127.0.0.1:${port}/crl/13-sig.crl`, { headers: { authorization: `Bearer ${tokens[0]}` } });
      const tag = crl.headers.get("etag")!;
      await crl.arrayBuffer();
      // One keep-alive connection, pipelined: each request differs from the one before in one field or a few.
      const pipelined = [
        head("GET", "/crl/13-sig.crl", `${as(0)}If-None-Match: ${tag}\r\n`), // 304, verifier a
        head("GET", "/crl/13-sig.crl", `${as(0)}If-None-Match: ${tag}\r\n`), // the same poll again
        head("GET", "/crl/13-sig.crl", `${as(1)}If-None-Match: ${tag}\r\n`), // verifier b: the tail alone differs
        head("GET", "/crl/13-sig.crl", `${as(0)}If-None-Match: ${tag}\r\n`), // back to a
        head("HEAD", "/crl/13-sig.crl", `${as(0)}If-None-Match: ${tag}\r\n`), // the method alone
        head("GET", "/crl/13-sig.crl", as(0)), // 200: the status alone
        head("GET", "/crl/13-sig.crl?x=1", `${as(0)}If-None-Match: ${tag}\r\n`), // the URL alone
        head("GET", "/crl/13-sig.crl", "Authorization: Bearer jpkiv_nosuchtoken\r\n"), // 401, anonymous
        head("GET", "/crl/nosuch.crl", as(1)), // 404, verifier b
        head("PUT", "/crl/13-sig.crl", `${as(1)}Content-Length: 0\r\n`), // 405
        head("GET", `/crl/${"%E9%AB%98".repeat(120)}`, as(0)), // a long non-ASCII path, sent with its one record
        head("GET", "/openapi.json"), // an open fastify route, anonymous
        head("GET", "/crl/13-sig.crl", `${as(0)}If-None-Match: ${tag}\r\nUser-Agent: "quoted"\\\xe9\t${"u".repeat(3000)}\r\n`),
        head("GET", "/crl/13-sig.crl", `${as(0)}If-None-Match: ${tag}\r\nX-Forwarded-For: 198.51.100.7\r\n`), // untrusted peer: ignored
      ].map((r) => `${r}\r\n`);
      const a1 = await exchange(port, Buffer.from(pipelined.join(""), "latin1"));
      expect(statuses(a1)).toEqual([304, 304, 304, 304, 304, 200, 304, 401, 404, 405, 404, 200, 304, 304]);
      // The same requests through the trusted proxy: X-Forwarded-For names the client, which changes per request.
      const proxied = [
        head("GET", "/crl/13-sig.crl", `${as(0)}If-None-Match: ${tag}\r\nX-Forwarded-For: 198.51.100.7\r\n`),
        head("GET", "/crl/13-sig.crl", `${as(0)}If-None-Match: ${tag}\r\nX-Forwarded-For: 198.51.100.8\r\n`),
        head("GET", "/crl/13-sig.crl", `${as(0)}If-None-Match: ${tag}\r\nX-Forwarded-For: 198.51.100.8, 127.0.0.2\r\n`),
        head("GET", "/crl/13-sig.crl", `${as(0)}If-None-Match: ${tag}\r\nX-Forwarded-For: not-an-address\r\n`), // the peer
        head("GET", "/crl/13-sig.crl", `${as(0)}If-None-Match: ${tag}\r\n`), // the peer
      ].map((r) => `${r}\r\n`);
      const a2 = await exchange(port, proxied.join(""), { localAddress: "127.0.0.2" });
      expect(statuses(a2)).toEqual([304, 304, 304, 304, 304]);
      // HTTP/1.0: answered, the connection closed after it
      expect(statuses(await exchange(port, `${head("GET", "/crl/13-sig.crl", as(1), "1.0")}\r\n`))).toEqual([200]);
      // what node's parser refuses: a header with no name, headers past node's bound; CONNECT; an Upgrade
      expect(statuses(await exchange(port, `${head("GET", "/crl/13-sig.crl", `${as(0)}: no name\r\n`)}\r\n`))).toEqual([400]);
      expect(statuses(await exchange(port, Buffer.from(`${head("GET", "/crl/13-sig.crl", `${as(0)}User-Agent: a\x7fb\r\n`)}\r\n`, "latin1")))).toEqual([400]);
      expect(statuses(await exchange(port, `${head("GET", "/crl/13-sig.crl", `${as(0)}X-Big: ${"b".repeat(20_000)}\r\n`)}\r\n`))).toEqual([431]);
      expect(statuses(await exchange(port, `CONNECT example.org:443 HTTP/1.1\r\nHost: example.org:443\r\n${as(0)}\r\n`))).toEqual([405]);
      expect(statuses(await exchange(port, `${head("GET", "/crl/13-sig.crl", `${as(0)}Connection: Upgrade\r\nUpgrade: websocket\r\n`)}\r\n`))).toEqual([200]);
      // a poll after all of that, as the first one
      expect(statuses(await exchange(port, pipelined[0]!))).toEqual([304]);
    } finally {
      await app.close();
      await log.close();
    }
    const written = readFileSync(path, "utf8");
    expect(written).toBe(expected.join(""));
    expect(log.dropped).toBe(0);
    const lines = written.trimEnd().split("\n").map((l) => JSON.parse(l) as Logged);
    // Every answer above went out whole (each client read them all): none is "aborted". A line is recorded when its
    // answer is done, so a refusal pipelined behind answers still being written may come before theirs: compared
    // in any order.
    const pick = ({ method, url, status, remote, verifier, aborted }: Logged) => JSON.stringify({ method, url, status, remote, verifier, aborted });
    const [a, b] = ids as [string, string];
    // the two fetches before the pipelined batch, then the batch, then the proxied one, …
    expect(lines.map(pick).sort()).toEqual([
      { method: "GET", url: "/crl/13-sig.crl", status: 200, remote: "127.0.0.1", verifier: a },
      { method: "GET", url: "/crl/13-sig.crl", status: 200, remote: "127.0.0.1", verifier: a },
      { method: "GET", url: "/crl/13-sig.crl", status: 304, remote: "127.0.0.1", verifier: a },
      { method: "GET", url: "/crl/13-sig.crl", status: 304, remote: "127.0.0.1", verifier: a },
      { method: "GET", url: "/crl/13-sig.crl", status: 304, remote: "127.0.0.1", verifier: b },
      { method: "GET", url: "/crl/13-sig.crl", status: 304, remote: "127.0.0.1", verifier: a },
      { method: "HEAD", url: "/crl/13-sig.crl", status: 304, remote: "127.0.0.1", verifier: a },
      { method: "GET", url: "/crl/13-sig.crl", status: 200, remote: "127.0.0.1", verifier: a },
      { method: "GET", url: "/crl/13-sig.crl?x=[redacted]", status: 304, remote: "127.0.0.1", verifier: a },
      { method: "GET", url: "/crl/13-sig.crl", status: 401, remote: "127.0.0.1", verifier: "anonymous" },
      { method: "GET", url: "/crl/nosuch.crl", status: 404, remote: "127.0.0.1", verifier: b },
      { method: "PUT", url: "/crl/13-sig.crl", status: 405, remote: "127.0.0.1", verifier: b },
      { method: "GET", url: "/crl/[redacted]", status: 404, remote: "127.0.0.1", verifier: a },
      { method: "GET", url: "/openapi.json", status: 200, remote: "127.0.0.1", verifier: "anonymous" },
      { method: "GET", url: "/crl/13-sig.crl", status: 304, remote: "127.0.0.1", verifier: a },
      { method: "GET", url: "/crl/13-sig.crl", status: 304, remote: "127.0.0.1", verifier: a },
      { method: "GET", url: "/crl/13-sig.crl", status: 304, remote: "198.51.100.7", verifier: a },
      { method: "GET", url: "/crl/13-sig.crl", status: 304, remote: "198.51.100.8", verifier: a },
      { method: "GET", url: "/crl/13-sig.crl", status: 304, remote: "198.51.100.8", verifier: a },
      { method: "GET", url: "/crl/13-sig.crl", status: 304, remote: "127.0.0.2", verifier: a },
      { method: "GET", url: "/crl/13-sig.crl", status: 304, remote: "127.0.0.2", verifier: a },
      { method: "GET", url: "/crl/13-sig.crl", status: 200, remote: "127.0.0.1", verifier: b },
      { method: "", url: "", status: 400, remote: "127.0.0.1", verifier: "anonymous" },
      { method: "", url: "", status: 400, remote: "127.0.0.1", verifier: "anonymous" },
      { method: "", url: "", status: 431, remote: "127.0.0.1", verifier: "anonymous" },
      { method: "CONNECT", url: "example.org:443", status: 405, remote: "127.0.0.1", verifier: "anonymous" },
      { method: "GET", url: "/crl/13-sig.crl", status: 200, remote: "127.0.0.1", verifier: a },
      { method: "GET", url: "/crl/13-sig.crl", status: 304, remote: "127.0.0.1", verifier: a },
    ].map((l) => pick(l as Logged)).sort());
  }, 60_000);

  it("names the client of a download it cut short by a reset (the socket no longer knows its peer by then): the address was \"\"", async () => {
    const big = join(ws.paths.caDir, "47-sig.crt");
    writeFileSync(big, randomBytes(32 << 20));
    const { app, port, log, path, expected } = await serverWithLog();
    try {
      for (const localAddress of ["127.0.0.1", "127.0.0.2"]) {
        const s: Socket = connect({ port, host: "127.0.0.1", localAddress });
        s.on("error", () => undefined);
        await cutShort(s, s, `GET /ca/47-sig.crt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens[1]}\r\nX-Forwarded-For: 198.51.100.9\r\n\r\n`, expected);
      }
    } finally {
      await app.close();
      await log.close();
      rmSync(big, { force: true });
    }
    expect(cutLines(path)).toEqual([
      { url: "/ca/47-sig.crt", status: 200, aborted: true, remote: "127.0.0.1", verifier: ids[1] },
      // through the trusted proxy: the client its X-Forwarded-For names (the peer is read to know it is the proxy)
      { url: "/ca/47-sig.crt", status: 200, aborted: true, remote: "198.51.100.9", verifier: ids[1] },
    ]);
  }, 60_000);

  it("names the client of a download over HTTPS it cut short by a reset (the TLS socket is the one whose peer is read)", async () => {
    const { cert, key } = loopbackTls("jpki-logserve-tls-");
    const big = join(ws.paths.caDir, "47-sig.crt");
    writeFileSync(big, randomBytes(32 << 20));
    const { app, port, log, path, expected } = await serverWithLog({ cert, key });
    try {
      // over a TCP socket of its own: a TLS socket cannot be reset, its TCP one can
      const tcp = connect({ port, host: "127.0.0.1" });
      tcp.on("error", () => undefined);
      const s = tlsConnect({ socket: tcp, host: "127.0.0.1", ca: cert });
      s.on("error", () => undefined);
      await cutShort(s, tcp, `GET /ca/47-sig.crt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens[0]}\r\n\r\n`, expected);
    } finally {
      await app.close();
      await log.close();
      rmSync(big, { force: true });
    }
    expect(cutLines(path)).toEqual([
      { url: "/ca/47-sig.crt", status: 200, aborted: true, remote: "127.0.0.1", verifier: ids[0] },
    ]);
  }, 60_000);

  it("logs and counts once, as 499, a request whose client went away before it was answered (a fastify route, a body on bare node:http): it left no line and no count", async () => {
    const { app, port, log, path, metrics } = await serverWithLog();
    const serverSide: Socket[] = [];
    app.server.on("connection", (c: Socket) => serverSide.push(c));
    // the CRL index's store read held until the client is gone (a slow store, a long validation)
    const { release, restore } = holdCrlStatus();
    /** Sends `bytes`, and resets the connection once the server has the request and has seen the reset. */
    const abandon = async (bytes: string) => {
      const s: Socket = connect({ port, host: "127.0.0.1" });
      s.on("error", () => undefined);
      const arrived = new Promise((resolve) => app.server.once("request", resolve));
      s.write(bytes);
      await arrived;
      await new Promise((r) => setTimeout(r, 50));
      s.resetAndDestroy();
      await until(() => serverSide.at(-1)!.destroyed, "the server to see the reset");
    };
    try {
      await abandon(`GET /crl/index.json HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens[0]}\r\n\r\n`);
      release();
      // a body that never ends (a fastify route reading it)
      await abandon(`POST /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens[1]}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"it`);
      // the same on bare node:http (POST /v1/validate's plain requests, validate-route.ts)
      await abandon(`POST /v1/validate HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens[0]}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{"cer`);
      // the routes count the cut requests once they see them gone (a fixed 300 ms stood for it: not on a loaded host)
      const counted = [/^jpki_http_requests_total\{route="validate",status="499"\} 1$/m, /^jpki_http_requests_total\{route="crl-index",status="499"\} 1$/m];
      await until(async () => { const t = await metrics.registry.metrics(); return counted.every((c) => c.test(t)); }, "both routes' 499");
      const text = await metrics.registry.metrics();
      for (const c of counted) expect(text).toMatch(c);
    } finally {
      restore();
      await app.close();
      await log.close();
    }
    const lines = readFileSync(path, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as Logged & { ms: unknown });
    expect(lines.filter((l) => l.url === "/crl/index.json")).toEqual([{ time: expect.any(String), method: "GET", url: "/crl/index.json", status: 499, ms: null, remote: "127.0.0.1", verifier: ids[0] }]);
    // one line, whatever the route made of the cut body (400, or 499 when it had not answered)
    expect(lines.filter((l) => l.url === "/v1/status")).toEqual([expect.objectContaining({ method: "POST", remote: "127.0.0.1", verifier: ids[1] })]);
    expect(lines.filter((l) => l.url === "/v1/validate")).toEqual([{ time: expect.any(String), method: "POST", url: "/v1/validate", status: 499, ms: null, remote: "127.0.0.1", verifier: ids[0] }]);
    expect(lines).toHaveLength(3);
  }, 60_000);
});

describe("a request node's parser refuses, pipelined behind requests still to be answered", () => {
  it("is answered after them, in request order, and logged after them: its 400 came first and was read as the earlier request's answer", async () => {
    const { app, port, log, path } = await serverWithLog();
    // the CRL index's store read held (a slow store): its answer not begun when the refusal comes
    const { release, restore } = holdCrlStatus();
    let answers: Promise<string>;
    try {
      const tag = (await fetch(`http://127.0.0.1:${port}/crl/13-sig.crl`, { headers: { authorization: `Bearer ${tokens[0]}` } })).headers.get("etag")!;
      const as = `Authorization: Bearer ${tokens[0]}\r\n`;
      // node's parser has refused the last request: the refusal came while the index's answer was held (a fixed
      // 500 ms stood for it; on a loaded host the index could be released first, nothing ahead of the refusal)
      const refused = new Promise((resolve) => app.server.once("clientError", resolve));
      answers = exchange(
        port,
        `GET /crl/13-sig.crl HTTP/1.1\r\nHost: x\r\n${as}If-None-Match: ${tag}\r\n\r\n` + // answered at once (bare node:http)
          `GET /crl/index.json HTTP/1.1\r\nHost: x\r\n${as}\r\n` + // held
          `GET /crl/13-sig.crl HTTP/1.1\r\nHost: x\r\n${as}If-None-Match: ${tag}\r\n\r\n` + // answered at once, queued behind it
          `GET /crl/13-sig.crl HTTP/1.1\r\nHost: x\r\n: no name\r\n\r\n`, // refused by node's parser
        // the server closes the connection after the refusal; this only ends a hang (a fixed 3 s could cut the
        // answers short on a loaded host)
        { endAfterMs: 30_000 },
      );
      await refused;
      release();
      const got = await answers;
      expect(statuses(got)).toEqual([304, 200, 304, 400]);
      expect(got).toContain('"code":"bad-request"');
    } finally {
      restore();
      await app.close();
      await log.close();
    }
    const lines = readFileSync(path, "utf8").trimEnd().split("\n").map((l) => JSON.parse(l) as Logged);
    expect(lines.slice(1).map(({ url, status }) => ({ url, status }))).toEqual([
      { url: "/crl/13-sig.crl", status: 304 },
      { url: "/crl/index.json", status: 200 },
      { url: "/crl/13-sig.crl", status: 304 },
      { url: "", status: 400 },
    ]);
  }, 60_000);

  it("behind a download being written: the connection is cut (the refusal never inside the body), and the download's line comes before the refusal's", async () => {
    const big = join(ws.paths.caDir, "47-sig.crt");
    writeFileSync(big, randomBytes(32 << 20));
    const { app, port, log, path, expected } = await serverWithLog();
    try {
      const { s, closed, received } = await downloadUnderWay(port, `GET /ca/47-sig.crt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens[1]}\r\n\r\n`);
      s.write("GET /crl/13-sig.crl HTTP/1.1\r\nHost: x\r\n: no name\r\n\r\n");
      await closed;
      expect(received()).toBeLessThan(32 << 20);
      await until(() => expected.length >= 2, "both lines");
    } finally {
      await app.close();
      await log.close();
      rmSync(big, { force: true });
    }
    expect(cutLines(path).map(({ url, status, aborted }) => ({ url, status, aborted }))).toEqual([
      { url: "/ca/47-sig.crt", status: 200, aborted: true },
      { url: "", status: 400, aborted: undefined },
    ]);
  }, 60_000);
});

describe("a request whose body node's parser refuses, queued behind an answer still to come", () => {
  it("is logged and counted as itself (method, target, verifier, route), answered after the answer ahead, the connection closed: it was logged with no method, no target and no verifier under \"other\", and its refusal held until the client left", async () => {
    const { app, port, log, path, metrics } = await serverWithLog();
    const { release, restore } = holdCrlStatus();
    let got: string;
    try {
      const refused = new Promise((resolve) => app.server.once("clientError", resolve));
      const answers = exchange(
        port,
        `GET /crl/index.json HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens[0]}\r\n\r\n` + // held
          // its headers read and admitted (verifier b), its response queued; a chunk size that is no number
          `POST /v1/status HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens[1]}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{"\r\nzz\r\n`,
        // the server closes the connection after the refusal; this only ends a hang
        { endAfterMs: 30_000 },
      );
      await refused;
      release();
      got = await answers;
      const text = await metrics.registry.metrics();
      expect(text).toMatch(/^jpki_http_requests_total\{route="status",status="400"\} 1$/m);
      expect(text).not.toMatch(/^jpki_http_requests_total\{route="other"/m);
    } finally {
      restore();
      await app.close();
      await log.close();
    }
    expect(statuses(got)).toEqual([200, 400]);
    expect(got).toContain('"code":"bad-request"');
    expect(cutLines(path)).toEqual([
      { url: "/crl/index.json", status: 200, aborted: undefined, remote: "127.0.0.1", verifier: ids[0] },
      { url: "/v1/status", status: 400, aborted: undefined, remote: "127.0.0.1", verifier: ids[1] },
    ]);
    const methods = readFileSync(path, "utf8").trimEnd().split("\n").map((l) => (JSON.parse(l) as Logged).method);
    expect(methods).toEqual(["GET", "POST"]);
  }, 60_000);

  it("answered already by its route (a GET that does not read its body), its refusal is never written after that answer: the client read the 400 as the answer to its next request, which the server never read", async () => {
    const { app, port, log, path } = await serverWithLog();
    const { release, restore } = holdCrlStatus();
    let got: string;
    try {
      const tag = (await fetch(`http://127.0.0.1:${port}/crl/13-sig.crl`, { headers: { authorization: `Bearer ${tokens[0]}` } })).headers.get("etag")!;
      const as = `Authorization: Bearer ${tokens[0]}\r\n`;
      const refused = new Promise((resolve) => app.server.once("clientError", resolve));
      const answers = exchange(
        port,
        `GET /crl/index.json HTTP/1.1\r\nHost: x\r\n${as}\r\n` + // held
          // answered (304) as soon as its headers are read, its answer queued behind the index's; then a chunk size
          // that is no number
          `GET /crl/13-sig.crl HTTP/1.1\r\nHost: x\r\n${as}If-None-Match: ${tag}\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n` +
          // never read: the parser stopped at the bad chunk
          `GET /crl/13-sig.crl HTTP/1.1\r\nHost: x\r\n${as}\r\n`,
        // the server closes the connection; this only ends a hang
        { endAfterMs: 30_000 },
      );
      await refused;
      release();
      got = await answers;
    } finally {
      restore();
      await app.close();
      await log.close();
    }
    // as when nothing is ahead of it: its own answer, then the connection closed, nothing after
    expect(statuses(got)).toEqual([200, 304]);
    expect(got).not.toContain('"code":"bad-request"');
    // one line a request: the refusal of its body is no request of its own (it was logged again, as an anonymous 400)
    expect(cutLines(path).map(({ url, status }) => ({ url, status }))).toEqual([
      { url: "/crl/13-sig.crl", status: 200 }, // the fetch of its ETag
      { url: "/crl/index.json", status: 200 },
      { url: "/crl/13-sig.crl", status: 304 },
    ]);
  }, 60_000);

  it("answered whole before its bad chunk came (nothing ahead of it), it gets no second answer (a 400 followed its 200 on the wire), nor a second access-log line or count (an anonymous 400 under \"other\")", async () => {
    const { app, port, log, path, metrics } = await serverWithLog();
    let got = "";
    let text = "";
    try {
      const s: Socket = connect({ port, host: "127.0.0.1" });
      s.on("error", () => undefined);
      const closed = new Promise<void>((resolve) => s.once("close", () => resolve()));
      s.on("data", (c: Buffer) => (got += c.toString("latin1")));
      // the GET's route answers at once, not reading the chunked body its headers announce
      s.write(`GET /crl/13-sig.crl HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens[0]}\r\nTransfer-Encoding: chunked\r\n\r\n`);
      await until(() => statuses(got).length === 1 && got.length > got.indexOf("\r\n\r\n") + 4, "the CRL's answer");
      const refused = new Promise((resolve) => app.server.once("clientError", resolve));
      // then a chunk size that is no number, and a request the parser never reaches
      s.write(`zz\r\nGET /crl/13-sig.crl HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens[0]}\r\n\r\n`);
      await refused;
      // the server closes the connection; this only ends a hang
      const hang = setTimeout(() => s.destroy(), 30_000);
      await closed;
      clearTimeout(hang);
      text = await metrics.registry.metrics();
    } finally {
      await app.close();
      await log.close();
    }
    expect(statuses(got)).toEqual([200]);
    expect(got).not.toContain('"code":"bad-request"');
    expect(cutLines(path)).toEqual([{ url: "/crl/13-sig.crl", status: 200, aborted: undefined, remote: "127.0.0.1", verifier: ids[0] }]);
    expect(text).not.toMatch(/^jpki_http_requests_total\{route="other"/m);
  }, 60_000);

  it("its own answer still being written (a download whose route does not read the body announced): the download is cut, and logged once, as cut (its refusal was a second, anonymous 400 line)", async () => {
    const big = join(ws.paths.caDir, "46-sig.crt");
    writeFileSync(big, randomBytes(32 << 20));
    const { app, port, log, path, expected, metrics } = await serverWithLog();
    let text = "";
    try {
      const { s, closed, received } = await downloadUnderWay(port, `GET /ca/46-sig.crt HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer ${tokens[1]}\r\nTransfer-Encoding: chunked\r\n\r\n`);
      const refused = new Promise((resolve) => app.server.once("clientError", resolve));
      s.write("zz\r\n"); // a chunk size that is no number, while the download is under way
      await refused;
      await closed;
      expect(received()).toBeLessThan(32 << 20);
      await until(() => expected.length >= 1, "the download's line");
      // the refusal's line came a turn of the event loop after the download's (afterAnswers): give it two
      for (let i = 0; i < 2; i++) await new Promise((r) => setImmediate(r));
      text = await metrics.registry.metrics();
    } finally {
      await app.close();
      await log.close();
      rmSync(big, { force: true });
    }
    expect(cutLines(path).map(({ url, status, aborted }) => ({ url, status, aborted }))).toEqual([{ url: "/ca/46-sig.crt", status: 200, aborted: true }]);
    expect(text).not.toMatch(/^jpki_http_requests_total\{route="other"/m);
  }, 60_000);
});

describe("access log over mutual TLS", () => {
  it("names the verifier a client certificate authenticates, and anonymous for a certificate the verifier CA did not issue", async () => {
    const reg = await registerVerifier(ws, { name: "log attack mtls", kind: "government", token: false, certificate: { generateKey: true }, passphrase: "pw" });
    const dir = mkdtempSync(join(tmpdir(), "jpki-logserve-mtls-"));
    const ossl = (...a: string[]) => execFileSync("openssl", a, { stdio: "pipe" });
    const srv = loopbackTls("jpki-logserve-mtls-srv-");
    // a client certificate of the client's own making: no verifier CA's
    ossl("req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", join(dir, "own.key"), "-out", join(dir, "own.crt"), "-days", "2", "-subj", "/CN=log attack mtls");
    const ca = srv.cert;
    const { app, port, log, path, expected } = await serverWithLog({ cert: ca, key: srv.key });
    /** Two pipelined GETs of the CRL over TLS with this client certificate: the statuses answered. */
    const over = (cert: string | Buffer, key: string | Buffer) =>
      new Promise<number[]>((resolve) => {
        const s = tlsConnect({ port, host: "127.0.0.1", ca, cert, key });
        const chunks: Buffer[] = [];
        s.on("error", () => undefined);
        s.on("data", (c: Buffer) => chunks.push(c));
        s.once("close", () => resolve(statuses(Buffer.concat(chunks).toString("latin1"))));
        s.write("GET /crl/13-sig.crl HTTP/1.1\r\nHost: x\r\n\r\nHEAD /crl/13-sig.crl HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
      });
    try {
      expect(await over(reg.certificatePem!, reg.privateKeyPem!)).toEqual([200, 200]);
      expect(await over(readFileSync(join(dir, "own.crt")), readFileSync(join(dir, "own.key")))).toEqual([401, 401]);
    } finally {
      await app.close();
      await log.close();
    }
    const written = readFileSync(path, "utf8");
    expect(written).toBe(expected.join(""));
    expect(cutLines(path).map(({ status, verifier, remote }) => ({ status, verifier, remote }))).toEqual([
      { status: 200, verifier: reg.record.id, remote: "127.0.0.1" },
      { status: 200, verifier: reg.record.id, remote: "127.0.0.1" },
      { status: 401, verifier: "anonymous", remote: "127.0.0.1" },
      { status: 401, verifier: "anonymous", remote: "127.0.0.1" },
    ]);
    // nothing of either certificate (its subject names the verifier) in the log
    expect(written).not.toContain("log attack");
  }, 60_000);
});


/**
 * A raw connection that sent `request` (a large file's download) and has received its first 64 KiB: the download is
 * under way. `received` counts what has come so far; `closed` settles when the server cuts the connection.
 */
async function downloadUnderWay(port: number, request: string): Promise<{ s: Socket; closed: Promise<void>; received: () => number }> {
  const s: Socket = connect({ port, host: "127.0.0.1" });
  s.on("error", () => undefined);
  let received = 0;
  const closed = new Promise<void>((resolve) => s.once("close", () => resolve()));
  await new Promise<void>((resolve) => {
    s.on("data", (c: Buffer) => {
      received += c.length;
      if (received >= 64 << 10) resolve();
    });
    s.write(request);
  });
  return { s, closed, received: () => received };
}
