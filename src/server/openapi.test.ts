/** /openapi.json against the server it describes: every /v1 route is in the document, and every path it lists is served. */
import { mkdtempSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { Workspace } from "../workspace/workspace.js";
import { registerVerifier } from "../verifier/registration.js";
import { buildServer } from "./app.js";

/** The verifier routes of `jpki serve` (app.ts registers them). */
const V1_ROUTES = [
  ["POST", "/v1/validate"],
  ["POST", "/v1/status"],
  ["GET", "/v1/status/history"],
  ["POST", "/v1/verify-signature"],
  ["GET", "/v1/overview"],
] as const;

describe("GET /openapi.json", () => {
  it("describes every /v1 route the server answers, with each error code the routes send, and nothing it does not serve", async () => {
    const ws = Workspace.create(join(mkdtempSync(join(tmpdir(), "jpki-openapi-")), "ws"));
    const { app } = await buildServer(ws);
    try {
      const doc = (await app.inject({ method: "GET", url: "/openapi.json" })).json() as { paths: Record<string, Record<string, unknown>>; components: { schemas: { Error: { properties: { code: { enum: string[] } } } } } };
      for (const [method, url] of V1_ROUTES) {
        expect(app.hasRoute({ method, url }), `${method} ${url} served`).toBe(true);
        expect(doc.paths[url]?.[method.toLowerCase()], `${method} ${url} documented`).toBeDefined();
      }
      for (const [url, ops] of Object.entries(doc.paths)) for (const m of Object.keys(ops)) expect(app.hasRoute({ method: m.toUpperCase() as "GET", url }), `${m} ${url}`).toBe(true);
      const bad = await app.inject({ method: "GET", url: "/v1/overview?days=9999" });
      // (no caller through inject: the route answers 401 before it reads days)
      expect(doc.components.schemas.Error.properties.code.enum).toEqual(expect.arrayContaining([bad.json().code, "days-invalid", "stopping"]));
      // The refusals before any route: access control's (a token from no verifier) and node's parser's.
      const forged = await app.inject({ method: "GET", url: "/v1/overview", headers: { authorization: "Bearer not-a-token" } });
      expect(forged.statusCode).toBe(401);
      expect(doc.components.schemas.Error.properties.code.enum).toEqual(expect.arrayContaining([forged.json().code, "forbidden", "rate-limited", "bad-request", "timeout", "headers-too-large"]));
      // the refusals of a body's coding before any route reads it
      expect(doc.components.schemas.Error.properties.code.enum).toEqual(expect.arrayContaining(["unsupported-content-encoding", "too-many-connections", "too-many-refusals"]));
      // the reasons a government body may read, the validation API's own among them (a compromised generation's key)
      const reasons = (doc.components.schemas as unknown as { GovernmentView: { properties: { reason: { enum: string[] } } } }).GovernmentView.properties.reason.enum;
      expect(reasons).toEqual(expect.arrayContaining(["issuer-compromised", "no-trust-anchor", "signature-invalid", "not-jpki-issuer"]));
    } finally {
      await app.close();
      await ws.close();
    }
  });

  it("says of each GET /v1 route with a query that a parameter it does not list is answered 400 query-invalid, as the route answers it", async () => {
    const ws = Workspace.create(join(mkdtempSync(join(tmpdir(), "jpki-openapi-")), "ws"));
    const { token } = await registerVerifier(ws, { name: "openapi test", kind: "government" });
    const { app } = await buildServer(ws);
    await app.listen({ host: "127.0.0.1", port: 0 });
    const base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
    try {
      const doc = (await app.inject({ method: "GET", url: "/openapi.json" })).json() as {
        paths: Record<string, { get?: { parameters?: Array<{ name: string; in: string }>; responses: Record<string, { description: string }> } }>;
      };
      const withQuery = Object.entries(doc.paths).filter(([url, ops]) => url.startsWith("/v1/") && ops.get?.parameters?.some((p) => p.in === "query"));
      expect(withQuery.map(([url]) => url).sort()).toEqual(["/v1/overview", "/v1/status/history"]);
      for (const [url, ops] of withQuery) {
        // the credential the routes need: through inject, access control never runs and they answer 401
        const r = await fetch(`${base}${url}?not-a-parameter=1`, { headers: { authorization: `Bearer ${token!}` } });
        expect(r.status, url).toBe(400);
        expect(((await r.json()) as { code: string }).code, url).toBe("query-invalid");
        const said = ops.get!.responses["400"]!.description;
        expect(said, url).toMatch(/a parameter other than .*\(query-invalid\)/);
        for (const p of ops.get!.parameters!) expect(said, `${url} ${p.name}`).toContain(p.name);
      }
    } finally {
      await app.close();
      await ws.close();
    }
  });
});
