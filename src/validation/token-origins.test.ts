/**
 * Where the verifier's token goes (token-origins.ts): the forms of one origin compare equal, a scheme or port of
 * its own is another origin, and a redirect from an allowed origin to another does not carry the token.
 */
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CrlCache } from "./revocation-sources.js";
import { httpOrigin, tokenGoesTo, tokenOriginSet } from "./token-origins.js";
import { MAX_TOKEN_REDIRECTS } from "./token-redirects.js";

describe("token origins", () => {
  it("take each origin in its RFC 6454 form: default ports, case, IDN and IPv6 compare equal; another scheme or port does not", () => {
    const set = tokenOriginSet(["https://JPKI.example:443/", "http://[0:0::1]:8080", "https://例え.jp"], "test")!;
    expect([...set]).toEqual(["https://jpki.example", "http://[::1]:8080", "https://xn--r8jz45g.jp"]);
    expect(tokenGoesTo(set, "https://jpki.example/crl/13-sig.crl")).toBe(true);
    expect(tokenGoesTo(set, "HTTPS://Jpki.Example:443/crl/13-sig.crl")).toBe(true);
    expect(tokenGoesTo(set, "https://user:pw@jpki.example/crl")).toBe(true); // the host it goes to is the allowed one
    expect(tokenGoesTo(set, "http://jpki.example/crl/13-sig.crl")).toBe(false); // plain http: another origin
    expect(tokenGoesTo(set, "https://jpki.example:8443/crl")).toBe(false);
    expect(tokenGoesTo(set, "https://jpki.example.evil.test/crl")).toBe(false);
    expect(tokenGoesTo(set, "https://evil.test/@jpki.example")).toBe(false);
    expect(tokenGoesTo(set, "http://[::1]:8080/ocsp")).toBe(true);
    expect(tokenGoesTo(set, "https://xn--r8jz45g.jp/x")).toBe(true);
    expect(tokenGoesTo(set, "not a url")).toBe(false);
    expect(() => httpOrigin("https://u:p@jpki.example", "--token-origin")).toThrow(expect.objectContaining({ code: "ERR_USAGE" }));
    expect(() => httpOrigin("https://jpki.example/crl", "--token-origin")).toThrow(expect.objectContaining({ code: "ERR_USAGE" }));
    expect(() => httpOrigin("ftp://jpki.example", "--token-origin")).toThrow(expect.objectContaining({ code: "ERR_USAGE" }));
  });

  describe("a redirect from an allowed origin", () => {
    const seen: Array<{ server: string; url: string; authorization: string | undefined }> = [];
    let allowed: Server, other: Server;
    const port = (s: Server) => (s.address() as AddressInfo).port;
    const listen = (name: string, h: (req: IncomingMessage) => { status: number; location?: string }) =>
      new Promise<Server>((resolve) => {
        const s = createServer((req, res) => {
          seen.push({ server: name, url: req.url ?? "", authorization: req.headers.authorization });
          const { status, location } = h(req);
          res.writeHead(status, location ? { location } : {}).end();
        });
        s.listen(0, "127.0.0.1", () => resolve(s));
      });
    beforeAll(async () => {
      other = await listen("other", (req) => ({ status: req.url === "/need" ? 401 : 404 }));
      allowed = await listen("allowed", (req) =>
        req.url === "/away"
          ? { status: 302, location: `http://localhost:${port(other)}/crl` }
          : req.url === "/here"
            ? { status: 307, location: "/crl" }
            : req.url === "/need"
              ? { status: 301, location: `http://localhost:${port(other)}/need` }
              : req.url === "/loop"
                ? { status: 302, location: "/loop2" }
                : req.url === "/loop2"
                  ? { status: 302, location: "/loop" }
                  : /^\/hop\d+$/.test(req.url ?? "")
                    ? { status: 302, location: `/hop${Number(req.url!.slice(4)) + 1}` }
                    : { status: 404 },
      );
    });
    afterAll(() => {
      allowed.close();
      other.close();
    });

    it("to another origin is followed without the token (to the same origin, with it)", async () => {
      const cache = new CrlCache({ bearerToken: "jpkiv_secret", tokenOrigins: [`http://127.0.0.1:${port(allowed)}`] });
      await cache.get(`http://127.0.0.1:${port(allowed)}/away`);
      await cache.get(`http://127.0.0.1:${port(allowed)}/here`);
      expect(seen).toEqual([
        { server: "allowed", url: "/away", authorization: "Bearer jpkiv_secret" },
        { server: "other", url: "/crl", authorization: undefined },
        { server: "allowed", url: "/here", authorization: "Bearer jpkiv_secret" },
        { server: "allowed", url: "/crl", authorization: "Bearer jpkiv_secret" },
      ]);
    });

    // A fetch of the caller's that follows redirects itself, keeping every header (as a hand-written wrapper over
    // node:http or a proxy agent may), unless told `redirect: "manual"`: CrlCache must not let it carry the token on.
    const naiveFetch = (async (input: string | URL | Request, init?: RequestInit) => {
      let url = String(input);
      for (let i = 0; i < 10; i++) {
        const r = await globalThis.fetch(url, { ...init, redirect: "manual" });
        const location = r.headers.get("location");
        if (init?.redirect === "manual" || !location) return r;
        url = new URL(location, url).href;
      }
      throw new Error("too many redirects");
    }) as typeof globalThis.fetch;

    it("a caller's own fetch: the token does not follow a redirect to another origin, loops and long chains are given up", async () => {
      seen.length = 0;
      const origin = `http://127.0.0.1:${port(allowed)}`;
      const cache = new CrlCache({ bearerToken: "jpkiv_secret", tokenOrigins: [origin], fetch: naiveFetch });
      const away = await cache.get(`${origin}/away`);
      const here = await cache.get(`${origin}/here`);
      expect(seen).toEqual([
        { server: "allowed", url: "/away", authorization: "Bearer jpkiv_secret" },
        { server: "other", url: "/crl", authorization: undefined },
        { server: "allowed", url: "/here", authorization: "Bearer jpkiv_secret" },
        { server: "allowed", url: "/crl", authorization: "Bearer jpkiv_secret" },
      ]);
      expect(away).toMatchObject({ status: "failed", error: expect.stringContaining("HTTP 404") });
      expect(here).toMatchObject({ status: "failed", error: expect.stringContaining("HTTP 404") });
      // the other origin asks for a token: the message says it was not sent across the redirect
      const need = await cache.get(`${origin}/need`);
      expect(need).toMatchObject({ status: "failed", error: expect.stringMatching(/HTTP 401 \(answered by http:\/\/localhost:\d+\/need, where a redirect to another origin led/) });
      expect(seen.filter((s) => s.server === "other").every((s) => s.authorization === undefined)).toBe(true);
      seen.length = 0;
      const loop = await cache.get(`${origin}/loop`);
      expect(loop).toMatchObject({ status: "failed", error: expect.stringContaining("a redirect loop") });
      expect(seen.map((s) => s.url)).toEqual(["/loop", "/loop2"]);
      seen.length = 0;
      const far = await cache.get(`${origin}/hop0`);
      expect(far).toMatchObject({ status: "failed", error: expect.stringContaining(`redirected more than ${MAX_TOKEN_REDIRECTS} times`) });
      expect(seen).toHaveLength(MAX_TOKEN_REDIRECTS + 1);
    });

    it("a fetch that follows although told not to is found out: the answer is not used", async () => {
      const origin = `http://127.0.0.1:${port(allowed)}`;
      const following = (async (input: string | URL | Request, init?: RequestInit) => globalThis.fetch(input, { ...init, redirect: "follow" })) as typeof globalThis.fetch;
      const cache = new CrlCache({ bearerToken: "jpkiv_secret", tokenOrigins: [origin], fetch: following });
      const r = await cache.get(`${origin}/here`);
      expect(r).toMatchObject({ status: "failed", error: expect.stringContaining('redirect: "manual"') });
    });
  });
});
