/**
 * GET/HEAD of published files on bare node:http, in front of fastify. This is the route verifiers poll, and
 * measured here it is where a framework costs most: a fastify route answering a 304 took 20–24 µs of CPU per
 * request against 13–17 µs for node:http alone, before any work of ours, which kept `jpki serve` far under the
 * 0.8× of a bare server it must reach. Everything else (index, health, metrics, the APIs to come) stays on
 * fastify with its schemas and hooks. A request this handler does not take goes to fastify unchanged.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks"; // not the global: app.ts says why
import type { FileHandle } from "node:fs/promises";
import { pipeline } from "node:stream/promises";
import { clockMs, type Clock } from "../pki/clock.js";
import type { WorkspacePaths } from "../workspace/workspace.js";
import { originForm } from "./access.js";
import { JSON_TYPE, METHOD_NOT_ALLOWED } from "./api-errors.js";
import { reportWhenSent, type AnswerReport } from "./answer-outcome.js";
import { decide, type Decision } from "./http-cache.js";
import { CONTENT_TYPE, lastModifiedIsStrong, resolvePublished, STAT_TTL_MS, type FileVersion, type PublishedFile, type PublishedFiles, type PublishedKind } from "./published.js";

export interface PublishedRouteOptions {
  readonly paths: WorkspacePaths;
  readonly files: PublishedFiles;
  readonly clock: Clock;
  /** the path of the workspace's baseUrl ("" for none) */
  readonly prefix: string;
  readonly crlMaxAgeSeconds: number;
  readonly certificateMaxAgeSeconds: number;
  /**
   * Whether a scope's files are answered without a credential (openRoutes: access.ts isOpen). Only those say
   * Cache-Control `public`; the others `private`, as they were answered to a registered verifier alone: `public`
   * on a response to a request with Authorization lets a shared cache (a proxy, a CDN, the operator's own
   * caching front) keep it and hand it to anyone who asks without one (RFC 9111 §3.5), and the spec gives
   * revocation information to registered verifiers only (shared/spec/JPKI.md "Distribution"). Default: none open.
   */
  readonly isOpen?: (scope: "crl" | "arl" | "ca-certificate") => boolean;
  /** a body streamed from disk to a client that stops reading for this long is cut, ms (0: never) */
  readonly idleMs?: number;
  /**
   * called once per answered request (metrics, access log); `aborted`: the answer was not written whole (the
   * client went away, or the idle bound cut it, mid-body)
   */
  readonly onResponse: AnswerReport;
}


const PRECONDITION_FAILED_BODY = JSON.stringify({ error: "precondition failed", code: "precondition-failed", message: "If-Match or If-Unmodified-Since does not hold for the file published now: fetch it again without them" });
const RANGE_NOT_SATISFIABLE_BODY = JSON.stringify({ error: "range not satisfiable", code: "range-not-satisfiable", message: "the range starts past the end of the file published now (Content-Range gives its size)" });

/** Returns a handler that answers published-file requests and returns false for every other request. */
export function publishedRoute(o: PublishedRouteOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const dirs = [`${o.prefix}/crl/`, `${o.prefix}/arl/`, `${o.prefix}/ca/`];
  const indexPath = `${o.prefix}/crl/index.json`;
  const shared = (scope: "crl" | "arl" | "ca-certificate") => (o.isOpen?.(scope) ? "public" : "private");
  const visibility: Readonly<Record<PublishedKind, string>> = { crl: shared("crl"), delta: shared("crl"), partition: shared("crl"), arl: shared("arl"), "ca-certificate": shared("ca-certificate"), "ca-index": shared("ca-certificate") };
  const certificateCacheControl = `${visibility["ca-certificate"]}, max-age=${o.certificateMaxAgeSeconds}`;
  const crlCacheControl: Readonly<Record<PublishedKind, string>> = Object.fromEntries(
    Object.entries(visibility).map(([kind, vis]) => [kind, `${vis}, max-age=${o.crlMaxAgeSeconds}`]),
  ) as Record<PublishedKind, string>;
  // Every 304 of a CRL reads the clock here: a Date made for it showed as ≈ 0.1 µs of the poll.
  const nowMs = clockMs(o.clock);
  const cacheControl = (file: PublishedFile, v: FileVersion) => {
    if (file.kind === "ca-certificate") return certificateCacheControl;
    const untilNext = v.nextUpdate ? Math.floor((v.nextUpdate.getTime() - nowMs()) / 1000) : 0;
    return untilNext >= o.crlMaxAgeSeconds ? crlCacheControl[file.kind] : `${visibility[file.kind]}, max-age=${Math.max(0, untilNext)}`;
  };
  // What a path names never changes: resolved once per distinct path (bounded, so a scan of random paths
  // cannot grow it without limit).
  const resolved = new Map<string, PublishedFile | null>();
  const resolve = (path: string): PublishedFile | undefined => {
    let f = resolved.get(path);
    if (f === undefined) {
      f = resolvePublished(o.paths, path.slice(o.prefix.length)) ?? null;
      if (resolved.size >= 10_000) resolved.clear();
      resolved.set(path, f);
    }
    return f ?? undefined;
  };

  const sent = (req: IncomingMessage, res: ServerResponse, status: number, startedAt: number): void => reportWhenSent(req, res, status, startedAt, o.onResponse);

  const answer = (req: IncomingMessage, res: ServerResponse, status: number, headers: Record<string, string>, startedAt: number, body?: Buffer | string) => {
    res.writeHead(status, headers);
    res.end(body);
    sent(req, res, status, startedAt);
  };

  // The same body for every path: it echoed the request target (up to node's 16 KB of headers), which a client
  // knows already and a scan of hostile paths only had reflected back; the message says where the files are listed.
  const notPublishedBody = JSON.stringify({ error: "not published", code: "not-published", message: `nothing is published at this path: ${indexPath} lists every CRL served` });
  const notFound = (req: IncomingMessage, res: ServerResponse, startedAt: number) =>
    answer(req, res, 404, { ...JSON_TYPE, "Cache-Control": "no-store" }, startedAt, notPublishedBody);

  /**
   * 412 (If-Match, If-Unmodified-Since) and 416 (a range past the end): Cache-Control no-store and a JSON body with its
   * typed code, as every other error answer of the server. They went out with the file's own Cache-Control (max-age up
   * to 300 s) and an empty body: a cache holding one answered the client's next plain GET of the CRL with it, for as
   * long as max-age said — a verifier refused its CRL by its own cache — and nothing said what was wrong.
   */
  const refusePrecondition = (req: IncomingMessage, res: ServerResponse, v: FileVersion, status: 412 | 416, startedAt: number) => {
    const body = status === 412 ? PRECONDITION_FAILED_BODY : RANGE_NOT_SATISFIABLE_BODY;
    const headers: Record<string, string> = { ETag: v.etag, "Cache-Control": "no-store", "Accept-Ranges": "bytes", ...JSON_TYPE, "Content-Length": String(Buffer.byteLength(body)) };
    if (status === 416) headers["Content-Range"] = `bytes */${v.size}`;
    answer(req, res, status, headers, startedAt, req.method === "HEAD" ? undefined : body);
  };

  /** Answers from what is known of a version without reading the file: a 304 (or 412/416, HEAD) or a small file's body. */
  function sendKnown(req: IncomingMessage, res: ServerResponse, file: PublishedFile, v: FileVersion, d: Decision, startedAt: number): void {
    if (d.status === 304) {
      // The poll of an unchanged file, the hot path: raw header pairs, and only those RFC 9110 §15.4.5 asks of
      // a 304 (ETag, Cache-Control; Date is node's): Last-Modified and Accept-Ranges would only repeat what the
      // cache holds, and each header costs the hot path its validation.
      res.writeHead(304, ["ETag", v.etag, "Cache-Control", cacheControl(file, v)]);
      res.end();
      sent(req, res, 304, startedAt);
      return;
    }
    if (d.status === 412 || d.status === 416) return refusePrecondition(req, res, v, d.status, startedAt);
    const headers: Record<string, string> = { ETag: v.etag, "Cache-Control": cacheControl(file, v), "Accept-Ranges": "bytes" };
    if (lastModifiedIsStrong(v)) headers["Last-Modified"] = v.lastModifiedHttp;
    if (req.method === "HEAD") {
      if (d.status === 200) {
        headers["Content-Type"] = CONTENT_TYPE[file.kind];
        headers["Content-Length"] = String(v.size);
      }
      res.writeHead(d.status, headers);
      res.end();
      sent(req, res, d.status, startedAt);
      return;
    }
    const [start, end] = d.status === 206 ? [d.start, d.end] : [0, v.size - 1];
    headers["Content-Type"] = CONTENT_TYPE[file.kind];
    headers["Content-Length"] = String(end - start + 1);
    if (d.status === 206) headers["Content-Range"] = `bytes ${start}-${end}/${v.size}`;
    answer(req, res, d.status, headers, startedAt, v.body ? v.body.subarray(start, end + 1) : "");
  }

  /** Streams a large file's version from its open descriptor (or answers without it, closing it). */
  async function sendOpened(req: IncomingMessage, res: ServerResponse, file: PublishedFile, v: FileVersion, handle: FileHandle, startedAt: number) {
    const d = decide(req.method!, req.headers, v);
    if ((d.status !== 200 && d.status !== 206) || req.method === "HEAD" || v.size === 0) {
      await handle.close();
      return sendKnown(req, res, file, v, d, startedAt);
    }
    const [start, end] = d.status === 206 ? [d.start, d.end] : [0, v.size - 1];
    const headers: Record<string, string> = {
      ETag: v.etag,
      "Cache-Control": cacheControl(file, v),
      "Accept-Ranges": "bytes",
      "Content-Type": CONTENT_TYPE[file.kind],
      "Content-Length": String(end - start + 1),
    };
    if (lastModifiedIsStrong(v)) headers["Last-Modified"] = v.lastModifiedHttp;
    if (d.status === 206) headers["Content-Range"] = `bytes ${start}-${end}/${v.size}`;
    res.writeHead(d.status, headers);
    sent(req, res, d.status, startedAt);
    // The only answer that can stall on the client: bounded here, not on every connection (app.ts says why).
    // When the response finishes, node replaces this with its keep-alive timeout.
    if (o.idleMs) req.socket.setTimeout(o.idleMs);
    // The descriptor holds this version even if the file is replaced meanwhile: never a torn body. A client
    // that goes away ends the pipeline, which closes the descriptor.
    // 1 MiB reads: a 50 MB CRL in 50 system calls rather than 800.
    // What the client got is reported by sent() above, when the response closes.
    await pipeline(handle.createReadStream({ start, end, autoClose: true, highWaterMark: 1 << 20 }), res).catch(() => undefined);
  }

  async function openAndSend(req: IncomingMessage, res: ServerResponse, file: PublishedFile, startedAt: number) {
    const opened = await o.files.open(file.path);
    if (!opened) return notFound(req, res, startedAt);
    if (opened.version.body) {
      await opened.handle.close();
      return sendKnown(req, res, file, opened.version, decide(req.method!, req.headers, opened.version), startedAt);
    }
    return sendOpened(req, res, file, opened.version, opened.handle, startedAt);
  }

  return (req, res) => {
    // The absolute form too (RFC 9112 §3.2.2), by its path, as access control and fastify's router read it.
    const url = originForm(req.url ?? "") ?? "";
    const q = url.indexOf("?");
    const path = q < 0 ? url : url.slice(0, q);
    if (req.method !== "GET" && req.method !== "HEAD") {
      // A published file (or the index) exists whatever the method: 405 with Allow (RFC 9110 §15.5.6), where
      // fastify's 404 said there was no such resource.
      if (!dirs.some((d) => path.startsWith(d)) || (path !== indexPath && !resolve(path))) return false;
      answer(req, res, 405, { Allow: "GET, HEAD", ...JSON_TYPE, "Cache-Control": "no-store" }, performance.now(), METHOD_NOT_ALLOWED.body);
      return true;
    }
    if (!dirs.some((d) => path.startsWith(d)) || path === indexPath) return false;
    const startedAt = performance.now();
    const file = resolve(path);
    if (!file) {
      notFound(req, res, startedAt);
      return true;
    }
    // A poll of an unchanged file: answered now from what `current` vouches for, a version seen up to
    // STAT_TTL_MS ago. A small file already read is answered from memory too, but only after a stat: a body
    // is never of a version the path stopped naming before the request came (the load test caught a CRL
    // fetched just after `notices ingest` had installed a newer one served as it was 250 ms before).
    // Anything else opens the file.
    const seen = o.files.current(file.path, STAT_TTL_MS, startedAt);
    if (seen) {
      const d = decide(req.method!, req.headers, seen);
      if (d.status === 304 || (seen.body && o.files.current(file.path, 0) === seen)) {
        sendKnown(req, res, file, seen, d, startedAt);
        return true;
      }
    }
    openAndSend(req, res, file, startedAt).catch(() => {
      if (!res.headersSent) answer(req, res, 500, { ...JSON_TYPE, "Cache-Control": "no-store" }, startedAt, JSON.stringify({ error: "the file could not be read", code: "internal" }));
      else res.destroy();
    });
    return true;
  };
}
