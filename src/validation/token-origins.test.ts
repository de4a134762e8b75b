/**
 * Where the verifier's token goes (token-origins.ts): the forms of one origin compare equal, a scheme or port of
 * its own is another origin, and a redirect from an allowed origin to another does not carry the token.
 */
import { generateKeyPairSync } from "node:crypto";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { assembleCertificate, encodeTbs } from "../ca/certificate.js";
import { extension, nul, oid, printable, seq, set } from "../pki/der.js";
import { crlDistributionPoints } from "../profile/extensions.js";
import { EXT_OID } from "../profile/oids.js";
import { OcspClient } from "./ocsp-source.js";
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

  describe("without tokenOrigins: only where the caller pointed", () => {
    const seen: Array<{ url: string; authorization: string | undefined }> = [];
    let server: Server;
    let base: string;
    beforeAll(async () => {
      server = createServer((req, res) => {
        seen.push({ url: req.url ?? "", authorization: req.headers.authorization });
        req.resume();
        res.writeHead(404).end();
      });
      await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
      base = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    });
    afterAll(() => server.close());

    /** A certificate whose distribution point is `url` (gather reads the extension; nothing checks the signature). */
    const naming = (url: string): Buffer => {
      const alg = seq(oid("1.2.840.113549.1.1.11"), nul());
      const dn = seq(set(seq(oid("2.5.4.3"), printable("Somebody's CA"))));
      const spki = generateKeyPairSync("rsa", { modulusLength: 1024 }).publicKey.export({ type: "spki", format: "der" });
      const tbs = encodeTbs({
        serial: Buffer.from([1]),
        signatureAlgorithm: alg,
        issuer: dn,
        notBefore: new Date("2026-01-01T00:00:00Z"),
        notAfter: new Date("2027-01-01T00:00:00Z"),
        subject: dn,
        spki,
        extensions: [extension(EXT_OID.cRLDistributionPoints, false, crlDistributionPoints(undefined, [url]))],
      });
      return assembleCertificate(tbs, alg, Buffer.alloc(128, 1));
    };

    it("CrlCache: a URL given to get() is asked with the token, one a certificate names (gather) without it", async () => {
      seen.length = 0;
      const cache = new CrlCache({ bearerToken: "jpkiv_secret" });
      const named = await cache.get(`${base}/named.crl`);
      const { fetches } = await cache.gather([naming(`${base}/in-the-certificate.crl`)]);
      expect(seen).toEqual([
        { url: "/named.crl", authorization: "Bearer jpkiv_secret" },
        { url: "/in-the-certificate.crl", authorization: undefined },
      ]);
      expect(named.status).toBe("failed");
      expect(fetches).toEqual([expect.objectContaining({ url: `${base}/in-the-certificate.crl`, status: "failed" })]);
      // the origin given: a URL a certificate names there is asked with it
      seen.length = 0;
      await new CrlCache({ bearerToken: "jpkiv_secret", tokenOrigins: [base] }).gather([naming(`${base}/in-the-certificate.crl`)]);
      expect(seen).toEqual([{ url: "/in-the-certificate.crl", authorization: "Bearer jpkiv_secret" }]);
    });

    it("OcspClient: to the origin of its url; a token with neither url nor tokenOrigins is refused (ERR_USAGE)", () => {
      expect(() => new OcspClient({ bearerToken: "jpkiv_secret" })).toThrow(expect.objectContaining({ code: "ERR_USAGE", message: expect.stringContaining("tokenOrigins") }));
      expect(() => new OcspClient({ bearerToken: "jpkiv_secret", tokenOrigins: [] })).not.toThrow();
      expect(() => new OcspClient({ url: `${base}/ocsp/13-sig`, bearerToken: "jpkiv_secret" })).not.toThrow();
      expect(() => new OcspClient({})).not.toThrow();
    });

    it("OcspClient: its url is asked with the token", async () => {
      seen.length = 0;
      const c = naming(`${base}/x.crl`);
      const r = await new OcspClient({ url: `${base}/ocsp/13-sig`, bearerToken: "jpkiv_secret" }).check({ certificate: c, issuer: c }, new Date("2026-06-01T00:00:00Z"));
      expect(r).toMatchObject({ status: "no-answer", problem: "http-status" });
      expect(seen).toEqual([{ url: "/ocsp/13-sig", authorization: "Bearer jpkiv_secret" }]);
    });
  });
});
