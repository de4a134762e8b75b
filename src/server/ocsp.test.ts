/**
 * OCSP GET over HTTP (ocspGetRoute, RFC 5019 §5 and RFC 6960 Appendix A) on a bare node:http server, in front of
 * a stand-in responder: which request reaches the responder, and the HTTP around its answer. The responder's own
 * answers are src/ocsp/responder.test.ts's; the whole server, with openssl, test/integration/ocsp.test.ts's.
 */
import { createServer, type Server } from "node:http";
import { connect, type AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { errorResponse } from "../ocsp/response.js";
import type { OcspAnswer, OcspResponder } from "../ocsp/responder.js";
import { FixedClock } from "../pki/clock.js";
import { ocspGetRoute } from "./ocsp.js";
import { until } from "../../test/until.js";

const clock = new FixedClock(new Date("2026-12-05T00:00:00Z"));
/** What the stand-in responder was asked: CA and request DER. */
const asked: Array<{ ca: string; der: Buffer }> = [];
/** A successful answer with RFC 5019 caching (its DER is no real response: the route only sends it). */
const cached: OcspAnswer = {
  der: Buffer.from([0x30, 0x03, 0x0a, 0x01, 0x00]),
  responseStatus: "successful",
  statuses: ["good"],
  preProduced: true,
  cache: {
    producedAt: clock.now(),
    nextUpdate: new Date(clock.now().getTime() + 3600_000),
    etag: '"an-etag"',
    producedAtHttp: clock.now().toUTCString(),
    nextUpdateHttp: new Date(clock.now().getTime() + 3600_000).toUTCString(),
  },
};
const responder = {
  preProducedFor: () => undefined,
  answer: async (ca: string, der: Uint8Array): Promise<OcspAnswer> => {
    asked.push({ ca, der: Buffer.from(der) });
    if (ca === "cached") return cached;
    return { der: errorResponse("unauthorized"), responseStatus: "unauthorized", statuses: [], preProduced: false };
  },
} as unknown as OcspResponder;

const servers: Server[] = [];
let port: number;

/** A server of the route alone: its port. */
async function serve(open?: boolean): Promise<number> {
  const route = ocspGetRoute({ prefix: "", responder: () => responder, clock, maxAgeSeconds: 300, ...(open !== undefined ? { open } : {}), count: () => undefined, onResponse: () => undefined });
  const server = createServer((req, res) => {
    if (!route(req, res)) res.writeHead(404).end();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as AddressInfo).port;
}

beforeAll(async () => {
  port = await serve();
});

afterAll(() => Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve)))));

/** One request as raw bytes: the answer's head. */
function headOf(target: string, at = port, headers = ""): Promise<string> {
  return new Promise((resolve, reject) => {
    const s = connect(at, "127.0.0.1");
    const chunks: Buffer[] = [];
    s.on("data", (c: Buffer) => chunks.push(c));
    s.on("error", reject);
    s.on("close", () => resolve(Buffer.concat(chunks).toString("latin1").split("\r\n\r\n")[0]!));
    s.write(`GET ${target} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n${headers}\r\n`);
  });
}

const statusOf = async (target: string) => (await headOf(target)).split("\r\n")[0]!;
const cacheControlOf = async (target: string, at: number, headers = "") => /^Cache-Control: (.*)$/im.exec(await headOf(target, at, headers))?.[1];

describe("ocspGetRoute", () => {
  it("takes a request in the absolute form (RFC 9112 §3.2.2: a server MUST accept it) by its path: it went on to a 404", async () => {
    const der = Buffer.from([0x30, 0x03, 0x30, 0x01, 0x00]);
    asked.length = 0;
    expect(await statusOf(`http://127.0.0.1:${port}/ocsp/13-sig/${encodeURIComponent(der.toString("base64"))}`)).toBe("HTTP/1.1 200 OK");
    expect(await statusOf(`HTTP://example.test/ocsp/13-sig/${der.toString("base64url")}?x`)).toBe("HTTP/1.1 200 OK");
    expect(asked).toEqual([
      { ca: "13-sig", der },
      { ca: "13-sig", der },
    ]);
    // anything else that is not a path is not the route's
    expect(await statusOf(`ftp://example.test/ocsp/13-sig/${der.toString("base64")}`)).toBe("HTTP/1.1 404 Not Found");
  });

  // RFC 6960 A.1: the GET's path is URL-encoded. "13%2Dsig" (an encoder that escapes '-') was no CA for a GET,
  // answered unauthorized, where the POST route (fastify decodes :ca) took it as CA 13-sig.
  it("decodes the CA's segment as the POST route does; one that does not decode is malformedRequest, never asked", async () => {
    const der = Buffer.from([0x30, 0x03, 0x30, 0x01, 0x00]);
    asked.length = 0;
    expect(await statusOf(`/ocsp/13%2Dsig/${encodeURIComponent(der.toString("base64"))}`)).toBe("HTTP/1.1 200 OK");
    expect(await statusOf(`/ocsp/%63ached/${der.toString("base64url")}`)).toBe("HTTP/1.1 200 OK");
    expect(asked).toEqual([
      { ca: "13-sig", der },
      { ca: "cached", der },
    ]);
    expect(await statusOf(`/ocsp/13%2sig/${der.toString("base64url")}`)).toBe("HTTP/1.1 200 OK");
    expect(asked).toHaveLength(2);
  });

  it("says private where OCSP needs a verifier's credential: public let a shared cache hand one verifier's answer to anyone (RFC 9111 §3.5)", async () => {
    const request = `/ocsp/cached/${Buffer.from([0x30, 0x03, 0x30, 0x01, 0x00]).toString("base64")}`;
    expect(await cacheControlOf(request, port)).toBe("private, max-age=300, no-transform, must-revalidate");
    expect(await cacheControlOf(request, port, 'If-None-Match: "an-etag"\r\n')).toBe("private, max-age=300, no-transform, must-revalidate");
    // openRoutes lists /ocsp/*: anyone may ask, and RFC 5019 §6.2's public is right
    expect(await cacheControlOf(request, await serve(true))).toBe("public, max-age=300, no-transform, must-revalidate");
  });
});

describe("ocspGetRoute, a client that leaves", () => {
  it("reports an answer whose client reset while it was being signed as aborted: it was reported as answered whole", async () => {
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    const slow = {
      preProducedFor: () => undefined,
      answer: async (): Promise<OcspAnswer> => {
        await gate; // a signature under way
        return cached;
      },
    } as unknown as OcspResponder;
    const reports: Array<{ status: number; aborted: boolean }> = [];
    const route = ocspGetRoute({ prefix: "", responder: () => slow, clock, maxAgeSeconds: 300, count: () => undefined, onResponse: (_req, status, _t, aborted) => reports.push({ status, aborted }) });
    // the server's side of the connection: closed once the server has seen the reset
    let serverSideClosed!: Promise<void>;
    const arrived = new Promise<void>((resolve) => {
      const server = createServer((req, res) => {
        serverSideClosed = new Promise((closed) => req.socket.once("close", () => closed()));
        resolve();
        if (!route(req, res)) res.writeHead(404).end();
      });
      servers.push(server);
      server.listen(0, "127.0.0.1", () => {
        const s = connect((server.address() as AddressInfo).port, "127.0.0.1");
        s.on("error", () => undefined);
        s.write(`GET /ocsp/13-sig/${Buffer.from([0x30, 0x03, 0x30, 0x01, 0x00]).toString("base64url")} HTTP/1.1\r\nHost: x\r\n\r\n`);
        void arrived.then(() => setTimeout(() => s.resetAndDestroy(), 50));
      });
    });
    await arrived;
    // the reset has reached the server (a fixed 300 ms stood for it: a loaded host can take longer)
    await serverSideClosed;
    release();
    await until(() => reports.length > 0, "the answer's report");
    expect(reports).toEqual([{ status: 200, aborted: true }]);
  });

  it("reports an answer written whole, and one pipelined behind it, as not aborted", async () => {
    const reports: boolean[] = [];
    const route = ocspGetRoute({ prefix: "", responder: () => responder, clock, maxAgeSeconds: 300, count: () => undefined, onResponse: (_req, _status, _t, aborted) => reports.push(aborted) });
    const server = createServer((req, res) => {
      if (!route(req, res)) res.writeHead(404).end();
    });
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const target = `/ocsp/cached/${Buffer.from([0x30, 0x03, 0x30, 0x01, 0x00]).toString("base64url")}`;
    const answers = await new Promise<string>((resolve) => {
      const s = connect((server.address() as AddressInfo).port, "127.0.0.1");
      const chunks: Buffer[] = [];
      s.on("data", (c: Buffer) => chunks.push(c));
      s.on("close", () => resolve(Buffer.concat(chunks).toString("latin1")));
      s.write(`GET ${target} HTTP/1.1\r\nHost: x\r\n\r\nGET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
    });
    expect(answers.match(/HTTP\/1\.1 200/g)).toHaveLength(2);
    expect(reports).toEqual([false, false]);
  });
});
