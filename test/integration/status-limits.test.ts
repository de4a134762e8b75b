/**
 * POST /v1/status against the per-verifier rate limit (access.ts): a batch costs what its items would cost
 * asked one by one, so batching cannot multiply the configured rate by the batch size (up to 1000).
 */
import { mkdtempSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { FixedClock } from "../../src/pki/clock.js";
import { buildServer } from "../../src/server/app.js";
import { registerVerifier } from "../../src/verifier/registration.js";
import { Workspace } from "../../src/workspace/workspace.js";

let ws: Workspace;
let app: FastifyInstance;
let base: string;
let token: string;

const item = (i: number) => ({ caId: "13-sig", serial: (0x1000 + i).toString(16) });

async function post(items: unknown[]) {
  const res = await fetch(`${base}/v1/status`, { method: "POST", headers: { "content-type": "application/json", authorization: `Bearer ${token}` }, body: JSON.stringify({ items }) });
  await res.arrayBuffer();
  return res.status;
}

beforeAll(async () => {
  const dir = mkdtempSync(join(tmpdir(), "jpki-status-limits-"));
    ws = Workspace.create(join(dir, "ws"), { clock: new FixedClock(new Date()), config: { verifierRateLimit: { perSecond: 1, burst: 10 } } });
  token = (await registerVerifier(ws, { name: "Example Trust K.K.", kind: "private" })).token!;
  ({ app } = await buildServer(ws));
  await app.listen({ host: "127.0.0.1", port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  await app?.close();
  await ws?.close();
});

describe("POST /v1/status and the rate limit", () => {
  it("charges a batch one request per item: after a batch larger than the burst, the next request waits (429)", async () => {
    // Admitted (the bucket had a request), answered, and 40 requests in debt: tens of seconds, not a stall, before the next.
    expect(await post(Array.from({ length: 50 }, (_, i) => item(i)))).toBe(200);
    expect(await post([item(0)])).toBe(429);
  });
});
