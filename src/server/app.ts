/**
 * `jpki serve`'s HTTP application (fastify): the publication point verifiers (署名検証者) poll.
 *
 * - GET/HEAD of every published CRL and CA certificate at the paths the certificates name (published.ts),
 *   with strong ETags, Last-Modified, conditional GET (304), single byte ranges (206) and Cache-Control whose
 *   max-age never reaches past the CRL's nextUpdate (http-cache.ts); bodies stream from an open descriptor,
 *   so a CRL replaced meanwhile is never served torn;
 * - `/crl/index.json`: every CA's latest CRL (number, thisUpdate, nextUpdate, entries, size, sha256);
 * - `/healthz`: the store answers and no CRL is past its nextUpdate (503 otherwise, saying which);
 * - `/metrics`: Prometheus text (prom-client): requests by route and status, CRL ages.
 * The access log is one JSON line per request (pino, asynchronous destination): fastify's own request
 * logging writes two lines per request and halved the 304 rate measured against bare node:http.
 */
import { stat } from "node:fs/promises";
import { join } from "node:path";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { Counter, Gauge, Registry } from "prom-client";
import type { Clock } from "../pki/clock.js";
import type { Workspace } from "../workspace/workspace.js";
import { decide, httpDate, type Decision } from "./http-cache.js";
import { CONTENT_TYPE, PublishedFiles, resolvePublished, type FileVersion, type PublishedFile } from "./published.js";

export interface ServerOptions {
  /** longest a cache may keep a CRL, seconds (never past its nextUpdate); default 300 */
  readonly crlMaxAgeSeconds?: number;
  /** max-age of CA certificates, seconds; default one day */
  readonly certificateMaxAgeSeconds?: number;
  /** where the access log goes (a pino destination); none when omitted */
  readonly accessLog?: { write(line: string): unknown };
  /** the path prefix every route lives under: the path of the workspace's baseUrl ("" for none) */
  readonly prefix?: string;
  /** HTTPS with this certificate chain and key (PEM) */
  readonly tls?: { readonly cert: Buffer | string; readonly key: Buffer | string };
}

/** The path of a base URL without its trailing slash: where the certificates' URLs put the files. */
export function pathPrefix(baseUrl: string): string {
  return new URL(baseUrl).pathname.replace(/\/+$/, "");
}

export interface ServerMetrics {
  readonly registry: Registry;
  readonly requests: Counter<"route" | "status">;
}

function makeMetrics(ws: Workspace, clock: Clock): ServerMetrics {
  const registry = new Registry();
  const requests = new Counter({ name: "jpki_http_requests_total", help: "HTTP requests answered, by route and status", labelNames: ["route", "status"] as const, registers: [registry] });
  new Gauge({
    name: "jpki_crl_age_seconds",
    help: "seconds since the thisUpdate of each CA's latest published CRL",
    labelNames: ["ca"] as const,
    registers: [registry],
    async collect() {
      const now = clock.now().getTime();
      for (const s of await ws.store.crlStatus()) if (s.latest) this.set({ ca: s.caId }, (now - s.latest.thisUpdate.getTime()) / 1000);
    },
  });
  new Gauge({
    name: "jpki_crl_seconds_to_next_update",
    help: "seconds until the nextUpdate of each CA's latest published CRL (negative: expired)",
    labelNames: ["ca"] as const,
    registers: [registry],
    async collect() {
      const now = clock.now().getTime();
      for (const s of await ws.store.crlStatus()) if (s.latest) this.set({ ca: s.caId }, (s.latest.nextUpdate.getTime() - now) / 1000);
    },
  });
  return { registry, requests };
}

export async function buildServer(ws: Workspace, opts: ServerOptions = {}): Promise<{ app: FastifyInstance; metrics: ServerMetrics }> {
  const clock = ws.clock;
  const prefix = opts.prefix ?? pathPrefix(ws.config.baseUrl);
  const crlMaxAge = opts.crlMaxAgeSeconds ?? 300;
  const certMaxAge = opts.certificateMaxAgeSeconds ?? 86_400;
  const files = new PublishedFiles();
  const metrics = makeMetrics(ws, clock);
  const app = Fastify({
    ...(opts.tls ? { https: { cert: opts.tls.cert, key: opts.tls.key } } : {}),
    logger: false,
    // Paths are matched against fixed shapes below; anything longer is not ours.
    routerOptions: { maxParamLength: 200 },
    exposeHeadRoutes: false,
    return503OnClosing: true,
  });
  const log = opts.accessLog;

  app.addHook("onResponse", (req, reply, done) => {
    const route = (req.routeOptions.config as { metric?: string } | undefined)?.metric ?? "other";
    metrics.requests.inc({ route, status: String(reply.statusCode) });
    log?.write(
      `${JSON.stringify({ time: new Date().toISOString(), method: req.method, url: req.url, status: reply.statusCode, ms: Math.round(reply.elapsedTime * 100) / 100, remote: req.ip })}\n`,
    );
    done();
  });

  const cacheControl = (file: PublishedFile, v: FileVersion) => {
    if (file.kind === "ca-certificate") return `public, max-age=${certMaxAge}`;
    const untilNext = v.nextUpdate ? Math.floor((v.nextUpdate.getTime() - clock.now().getTime()) / 1000) : 0;
    return `public, max-age=${Math.max(0, Math.min(crlMaxAge, untilNext))}`;
  };
  const validators = (reply: FastifyReply, file: PublishedFile, v: FileVersion) =>
    reply.header("ETag", v.etag).header("Last-Modified", httpDate(v.lastModified)).header("Cache-Control", cacheControl(file, v)).header("Accept-Ranges", "bytes");

  async function servePublished(req: FastifyRequest, reply: FastifyReply, file: PublishedFile) {
    const h = req.headers;
    // A poll of an unchanged file: one stat, no open, no read.
    if (h["if-none-match"] !== undefined || h["if-modified-since"] !== undefined) {
      const seen = files.current(file.path);
      if (seen && decide(req.method, h, seen).status === 304) return validators(reply, file, seen).code(304).send();
    }
    const opened = await files.open(file.path);
    if (!opened) return reply.code(404).type("application/json").send({ error: "not published", path: req.url });
    const { version: v, handle } = opened;
    let d: Decision;
    try {
      d = decide(req.method, h, v);
    } catch (e) {
      await handle.close();
      throw e;
    }
    validators(reply, file, v);
    if (d.status === 304 || d.status === 412 || d.status === 416 || req.method === "HEAD") {
      await handle.close();
      if (d.status === 416) reply.header("Content-Range", `bytes */${v.size}`);
      if (req.method === "HEAD" && d.status === 200) reply.header("Content-Type", CONTENT_TYPE[file.kind]).header("Content-Length", String(v.size));
      return reply.code(d.status).send();
    }
    reply.type(CONTENT_TYPE[file.kind]);
    if (d.status === 206) {
      reply.code(206).header("Content-Range", `bytes ${d.start}-${d.end}/${v.size}`).header("Content-Length", String(d.end - d.start + 1));
      return reply.send(handle.createReadStream({ start: d.start, end: d.end, autoClose: true }));
    }
    reply.header("Content-Length", String(v.size));
    if (v.size === 0) {
      await handle.close();
      return reply.send("");
    }
    return reply.send(handle.createReadStream({ start: 0, autoClose: true }));
  }

  app.route({
    method: ["GET", "HEAD"],
    url: `${prefix}/crl/index.json`,
    config: { metric: "crl-index" },
    handler: async (_req, reply) => {
      const status = await ws.store.crlStatus();
      const crls = [];
      for (const s of status) {
        const l = s.latest;
        if (!l || !l.path) continue;
        let size: number | undefined;
        try {
          size = (await stat(join(ws.paths.root, l.path))).size;
        } catch {
          size = undefined;
        }
        crls.push({
          scope: "full",
          ca: s.caId,
          url: `${prefix}/crl/${s.caId}.crl`,
          number: l.number.toString(),
          thisUpdate: l.thisUpdate.toISOString(),
          nextUpdate: l.nextUpdate.toISOString(),
          entries: l.entries,
          ...(size !== undefined ? { size } : {}),
          ...(l.sha256 ? { sha256: l.sha256 } : {}),
        });
      }
      return reply.header("Cache-Control", "no-cache").send({ generatedAt: clock.now().toISOString(), crls });
    },
  });

  app.get(`${prefix}/healthz`, { config: { metric: "healthz" } }, async (_req, reply) => {
    let status;
    try {
      status = await ws.store.crlStatus();
    } catch (e) {
      return reply.code(503).send({ status: "unavailable", store: "unreachable", error: (e as { code?: string }).code ?? "error" });
    }
    const now = clock.now().getTime();
    const stale = status.filter((s) => !s.latest || s.latest.nextUpdate.getTime() <= now).map((s) => s.caId);
    return reply.code(stale.length ? 503 : 200).header("Cache-Control", "no-store").send({ status: stale.length ? "stale" : "ok", store: "ok", cas: status.length, stale });
  });

  app.get(`${prefix}/metrics`, { config: { metric: "metrics" } }, async (_req, reply) => {
    const body = await metrics.registry.metrics();
    return reply.header("Cache-Control", "no-store").type(metrics.registry.contentType).send(body);
  });

  app.route({
    method: ["GET", "HEAD"],
    url: `${prefix}/*`,
    config: { metric: "published" },
    handler: async (req, reply) => {
      const path = (req.params as { "*": string })["*"];
      const file = resolvePublished(ws.paths, `/${path.split("?")[0]}`);
      if (!file) return reply.code(404).type("application/json").send({ error: "no such published file", path: req.url });
      return servePublished(req, reply, file);
    },
  });

  return { app, metrics };
}
