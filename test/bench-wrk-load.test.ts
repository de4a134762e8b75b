import { createServer, type IncomingMessage } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { statusesOf, wrkScript } from "../bench/wrk-load.js";

const servers: Array<ReturnType<typeof createServer>> = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => s.close(r));
});

/** A server that answers each body with the status `answer` gives it, and records what it was sent. */
async function server(answer: (body: string, req: IncomingMessage) => number): Promise<{ port: number; seen: Array<{ path: string; auth: string | undefined; body: string }> }> {
  const seen: Array<{ path: string; auth: string | undefined; body: string }> = [];
  const s = createServer((req, res) => {
    let body = "";
    req.setEncoding("utf8");
    req.on("data", (c: string) => (body += c));
    req.on("end", () => {
      seen.push({ path: req.url!, auth: req.headers.authorization, body });
      const status = answer(body, req);
      res.writeHead(status, { "content-type": "application/json" }).end(status === 200 ? '{"status":"valid"}' : '{"error":"internal","message":"the validation failed unexpectedly"}');
    });
  });
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return { port: (s.address() as AddressInfo).port, seen };
}

describe("bench/wrk-load: what api-ab says when the answers are not 200", () => {
  const bodies = ['{"certificate":"-----BEGIN CERTIFICATE-----\\nMIIB\\n-----END CERTIFICATE-----\\n","purpose":"signature"}', '{"a":"}"}', '{"b":"x\\"y"}'];
  const script = wrkScript({ path: "/v1/validate", headers: { "content-type": "application/json", authorization: "Bearer t0k\"en" }, bodies });

  it("names the statuses of the script's requests, each body sent once as the script sends it, and the first other answer", async () => {
    const { port, seen } = await server((body) => (body === bodies[1] ? 500 : 200));
    const said = await statusesOf(script, "127.0.0.1", port);
    expect(said).toBe('200 ×2, 500 ×1 for its 3 bodies sent once each; the first not 200: 500 {"error":"internal","message":"the validation failed unexpectedly"}');
    expect(seen).toEqual(bodies.map((body) => ({ path: "/v1/validate", auth: 'Bearer t0k"en', body })));
  });

  it("says all were 200 when they were (the failure came from elsewhere)", async () => {
    const { port } = await server(() => 200);
    expect(await statusesOf(script, "127.0.0.1", port)).toBe("200 ×3 for its 3 bodies sent once each");
  });
});
