/**
 * The cost of "registered verifiers only" on the hottest path: a verifier polling an unchanged CRL gets a 304.
 * A/B on loopback, rounds alternating, each server in its own process and autocannon in this one:
 *   bare       node:http answering 304 to a matching If-None-Match (the reference server)
 *   jpki-open  jpki serve's app with the CRL routes open (anonymous: no token check, no fetch record)
 *   jpki-auth  jpki serve's app as deployed: a bearer token checked (SHA-256 + map lookup), the rate limit,
 *              and a fetch record queued per request and written to the store in batches
 * Usage (after npm run build): node bin/jpki.cjs --run-module dist/bench/serve-304.js [seconds] [rounds]
 * Numbers are for reading (a shared 2-core machine is noisy): compare within a round, never assert them.
 */
import "reflect-metadata";
import { fork } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync } from "node:fs";
import { createRequire } from "node:module";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const self = fileURLToPath(import.meta.url);
const args = process.argv.slice(2).filter((a) => a !== "--run-module" && a !== self);

async function serveChild(kind: string, wsDir: string): Promise<void> {
  if (kind === "bare") {
    const etag = '"bench-etag"';
    const server = createServer((req, res) => {
      if (req.headers["if-none-match"] === etag) {
        res.writeHead(304, { ETag: etag, "Cache-Control": "public, max-age=300" });
        res.end();
      } else res.writeHead(200, { ETag: etag }).end("x");
    });
    server.listen(0, "127.0.0.1", () => process.send!({ port: (server.address() as { port: number }).port, etag }));
    return;
  }
  const { Workspace } = await import("../src/workspace/workspace.js");
  const { buildServer } = await import("../src/server/app.js");
  const ws = Workspace.open(wsDir);
  const { app, access } = await buildServer(ws, {});
  await app.listen({ host: "127.0.0.1", port: 0 });
  process.on("message", async () => {
    await access.flush();
    process.send!({ recorded: access.fetchRecords.recorded, dropped: access.fetchRecords.dropped });
  });
  process.send!({ port: (app.server.address() as { port: number }).port });
}

interface Ready {
  port: number;
}

async function run(kind: "bare" | "jpki-open" | "jpki-auth", dirs: Record<string, string>, headers: Record<string, string>, seconds: number) {
  const wsDir = kind === "jpki-open" ? dirs.open! : dirs.auth!;
  const child = fork(self, ["serve-child", kind === "bare" ? "bare" : "jpki", wsDir], { stdio: "inherit" });
  const ready = await new Promise<Ready>((resolve) => child.once("message", (m) => resolve(m as Ready)));
  const require = createRequire(import.meta.url);
  const autocannon = require("autocannon") as (o: object) => Promise<{ requests: { average: number }; non2xx: number; errors: number; statusCodeStats?: Record<string, { count: number }> }>;
  const r = await autocannon({ url: `http://127.0.0.1:${ready.port}/crl/13-sig.crl`, connections: 10, duration: seconds, headers });
  let records = "";
  if (kind === "jpki-auth") {
    child.send("flush");
    const m = await new Promise<{ recorded: number; dropped: number }>((resolve) => child.once("message", (x) => resolve(x as { recorded: number; dropped: number })));
    records = ` fetch records written ${m.recorded}, dropped ${m.dropped}`;
  }
  child.kill("SIGTERM");
  const codes = Object.entries(r.statusCodeStats ?? {}).map(([c, s]) => `${c}×${s.count}`).join(" ");
  return { rps: r.requests.average, note: `${codes} errors ${r.errors}${records}` };
}

async function main(): Promise<void> {
  const seconds = Number(args[0] ?? 5);
  const rounds = Number(args[1] ?? 3);
  const { Workspace } = await import("../src/workspace/workspace.js");
  const { initCas } = await import("../src/ca/manage.js");
  const { prefecture } = await import("../src/ca/prefectures.js");
  const { generateCrls } = await import("../src/crl/generate.js");
  const { registerVerifier } = await import("../src/verifier/registration.js");
  const dirs: Record<string, string> = {};
  let token = "";
  let etag = "";
  for (const k of ["auth", "open"]) {
    const root = mkdtempSync(join(tmpdir(), `jpki-bench-304-${k}-`));
    // no rate limit in the way of the measurement (its bucket arithmetic still runs for jpki-auth)
    const ws = Workspace.create(root, { config: { openRoutes: k === "open" ? ["/healthz", "/crl/*"] : ["/healthz"], verifierRateLimit: { perSecond: 1_000_000, burst: 10_000_000 } } });
    await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "bench" });
    await generateCrls(ws, { prefecture: "13", passphrase: "bench" });
    if (k === "auth") token = (await registerVerifier(ws, { name: "bench", kind: "government" })).token!;
    await ws.close();
    dirs[k] = root;
  }
  // the ETag the server gives the CRL: ask once
  {
    const child = fork(self, ["serve-child", "jpki", dirs.auth!], { stdio: "inherit" });
    const ready = await new Promise<Ready>((resolve) => child.once("message", (m) => resolve(m as Ready)));
    const res = await fetch(`http://127.0.0.1:${ready.port}/crl/13-sig.crl`, { headers: { authorization: `Bearer ${token}` } });
    etag = res.headers.get("etag")!;
    child.kill("SIGTERM");
  }
  const results: Record<string, number[]> = { bare: [], "jpki-open": [], "jpki-auth": [] };
  for (let i = 0; i < rounds; i++) {
    for (const kind of ["bare", "jpki-open", "jpki-auth"] as const) {
      const headers: Record<string, string> = kind === "bare" ? { "if-none-match": '"bench-etag"' } : kind === "jpki-open" ? { "if-none-match": etag } : { "if-none-match": etag, authorization: `Bearer ${token}` };
      // jpki-open's workspace has its own CRL (another ETag): ask it
      if (kind === "jpki-open" && i === 0) {
        const child = fork(self, ["serve-child", "jpki", dirs.open!], { stdio: "inherit" });
        const ready = await new Promise<Ready>((resolve) => child.once("message", (m) => resolve(m as Ready)));
        openEtag = (await fetch(`http://127.0.0.1:${ready.port}/crl/13-sig.crl`)).headers.get("etag")!;
        child.kill("SIGTERM");
      }
      if (kind === "jpki-open") headers["if-none-match"] = openEtag;
      const r = await run(kind, dirs, headers, seconds);
      results[kind]!.push(r.rps);
      console.log(`round ${i + 1} ${kind.padEnd(10)} ${Math.round(r.rps).toString().padStart(7)} req/s  (${r.note})`);
    }
  }
  const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
  const bare = median(results.bare!);
  for (const k of ["jpki-open", "jpki-auth"]) console.log(`${k.padEnd(10)} median ${Math.round(median(results[k]!))} req/s = ${(median(results[k]!) / bare).toFixed(2)}× bare node:http (${Math.round(bare)}); target ≥ 0.8×`);
}

let openEtag = "";

if (args[0] === "serve-child") await serveChild(args[1]!, args[2]!);
else await main();
