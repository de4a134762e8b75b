import { describe, expect, it } from "vitest";
import { fetchStatus } from "./status-client.js";

describe("fetchStatus and the server's rate limit", () => {
  it("waits out a 429's Retry-After and asks the batch again (a batch costs one request per item)", async () => {
    const slept: number[] = [];
    let calls = 0;
    const fake = (async (_url: string, init: RequestInit) => {
      calls++;
      if (calls === 2) return new Response('{"error":"rate limited","code":"rate-limited"}', { status: 429, headers: { "retry-after": "3" } });
      const items = (JSON.parse(String(init.body)) as { items: unknown[] }).items;
      return Response.json({ view: "private", checkedAt: "2026-01-01T00:00:00.000Z", items: items.map((item, index) => ({ index, item, status: "good" })) });
    }) as unknown as typeof fetch;
    const items = Array.from({ length: 3 }, (_, i) => ({ caId: "13-sig", serial: `0${i + 1}` }));
    const a = await fetchStatus(items, { url: "http://jpki.test", batchSize: 2, fetch: fake, sleep: async (ms) => void slept.push(ms) });
    expect(a.items.map((i) => i.index)).toEqual([0, 1, 2]);
    expect(slept).toEqual([3000]);
    expect(calls).toBe(3);
  });

  it("gives up with the 429 after its retries, or at once for a Retry-After past two minutes", async () => {
    const limited = (async () => new Response("{}", { status: 429, headers: { "retry-after": "1" } })) as unknown as typeof fetch;
    await expect(fetchStatus([{ caId: "13-sig", serial: "01" }], { url: "http://jpki.test", fetch: limited, retries: 2, sleep: async () => undefined })).rejects.toMatchObject({ code: "ERR_SERVICE_FAILED", details: { status: 429 } });
    const long = (async () => new Response("{}", { status: 429, headers: { "retry-after": "3600" } })) as unknown as typeof fetch;
    const slept: number[] = [];
    await expect(fetchStatus([{ caId: "13-sig", serial: "01" }], { url: "http://jpki.test", fetch: long, sleep: async (ms) => void slept.push(ms) })).rejects.toMatchObject({ details: { status: 429 } });
    expect(slept).toEqual([]);
  });
});

describe("fetchStatus when the server cannot be reached", () => {
  it("says why (the connection refused), not the name of undici's error", async () => {
    const { createServer } = await import("node:net");
    // A port nothing listens on: bound, then closed.
    const port = await new Promise<number>((resolve) => {
      const s = createServer().listen(0, "127.0.0.1", () => {
        const p = (s.address() as { port: number }).port;
        s.close(() => resolve(p));
      });
    });
    const e = await fetchStatus([{ caId: "13-sig", serial: "01" }], { url: `http://127.0.0.1:${port}` }).catch((x: Error) => x);
    expect(e).toMatchObject({ code: "ERR_SERVICE_FAILED" });
    expect((e as Error).message).toContain("ECONNREFUSED");
    expect((e as Error).message).not.toContain("TypeError");
  });
});
