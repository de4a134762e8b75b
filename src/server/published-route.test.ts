/**
 * The published files' route (publishedRoute) on a bare node:http server, without access control in front:
 * the Cache-Control each kind of file gets, by whether its route needs a credential. The whole server over HTTP
 * is app.test.ts's.
 */
import { mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { createServer, request, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FixedClock } from "../pki/clock.js";
import { workspacePaths } from "../workspace/workspace.js";
import { PublishedFiles } from "./published.js";
import { publishedRoute, type PublishedRouteOptions } from "./published-route.js";

const paths = workspacePaths(mkdtempSync(join(tmpdir(), "jpki-published-route-")));
const servers: Server[] = [];

beforeAll(() => {
  mkdirSync(paths.caDir, { recursive: true });
  mkdirSync(paths.crlDir, { recursive: true });
  // the route does not read what they hold, only serves it (a file without a CRL's nextUpdate gets max-age=0)
  writeFileSync(join(paths.caDir, "13-sig.crt"), "certificate");
  writeFileSync(join(paths.crlDir, "13-sig.crl"), "crl");
  writeFileSync(join(paths.caDir, "index.json"), '{"generations":[]}\n');
});

afterAll(() => Promise.all(servers.map((s) => new Promise((resolve) => s.close(resolve)))));

/** A server of the route alone: the base URL. */
async function serve(isOpen?: PublishedRouteOptions["isOpen"]): Promise<string> {
  const route = publishedRoute({
    paths,
    files: new PublishedFiles(),
    clock: new FixedClock(new Date()),
    prefix: "",
    crlMaxAgeSeconds: 300,
    certificateMaxAgeSeconds: 86400,
    ...(isOpen ? { isOpen } : {}),
    onResponse: () => undefined,
  });
  const server = createServer((req, res) => {
    if (!route(req, res)) res.writeHead(404).end();
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function cacheControl(url: string, headers: Record<string, string> = {}): Promise<string | undefined> {
  return new Promise((resolve, reject) => {
    const req = request(url, { headers }, (res) => {
      res.resume();
      res.on("end", () => resolve(res.headers["cache-control"]));
    });
    req.on("error", reject);
    req.end();
  });
}

describe("publishedRoute's Cache-Control", () => {
  it("says private where the route needs a verifier's credential: public let a shared cache hand a CRL given to one verifier to anyone (RFC 9111 §3.5)", async () => {
    const base = await serve();
    expect(await cacheControl(`${base}/crl/13-sig.crl`)).toBe("private, max-age=0");
    expect(await cacheControl(`${base}/ca/13-sig.crt`)).toBe("private, max-age=86400");
    // the 304 of a poll too
    expect(await cacheControl(`${base}/ca/13-sig.crt`, { "if-none-match": "*" })).toBe("private, max-age=86400");
  });

  it("says public for the scopes openRoutes answers without a credential, and only those", async () => {
    const base = await serve((scope) => scope === "ca-certificate");
    expect(await cacheControl(`${base}/ca/13-sig.crt`)).toBe("public, max-age=86400");
    expect(await cacheControl(`${base}/crl/13-sig.crl`)).toBe("private, max-age=0");
  });
});

describe("publishedRoute and /ca/index.json (ca/generation-index.ts)", () => {
  // changed by a rollover at any time: revalidated on every use (its ETag makes that a 304), never held a day as a
  // CA certificate is; open or not as the CA certificates are
  it("serves it as JSON with the CA certificates' visibility, to be revalidated on every use", async () => {
    const got = await new Promise<{ status?: number; type?: string; body: string }>((resolve, reject) => {
      serve().then((base) => {
        const req = request(`${base}/ca/index.json`, (res) => {
          let body = "";
          res.on("data", (c) => (body += c));
          res.on("end", () => resolve({ status: res.statusCode, type: res.headers["content-type"], body }));
        });
        req.on("error", reject);
        req.end();
      }, reject);
    });
    expect(got).toEqual({ status: 200, type: "application/json", body: '{"generations":[]}\n' });
    expect(await cacheControl(`${await serve()}/ca/index.json`)).toBe("private, max-age=0");
    expect(await cacheControl(`${await serve((scope) => scope === "ca-certificate")}/ca/index.json`)).toBe("public, max-age=0");
  });
});
