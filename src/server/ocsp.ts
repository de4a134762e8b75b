/**
 * OCSP over HTTP, RFC 6960 Appendix A and RFC 5019 §5, at `<prefix>/ocsp/<ca>`:
 *   POST <prefix>/ocsp/<ca>            body: DER OCSPRequest (application/ocsp-request); <ca>/ alike
 *   GET  <prefix>/ocsp/<ca>/<request>  <request> = base64 of the DER, URL-encoded ('/' as %2F, '+' as %2B,
 *                                      '=' as %3D, or left as they are); base64url is accepted too
 * Answers are application/ocsp-response with HTTP 200, error statuses (malformedRequest, unauthorized,
 * tryLater, internalError) included, as clients expect; nothing else (no stack, no JSON) ever goes back.
 * A GET answer without a nonce carries RFC 5019 §6.2's caching headers (`private` unless OCSP is open to anyone,
 * OcspGetRouteOptions.open says why): Cache-Control max-age never past
 * nextUpdate (and at most `maxAgeSeconds`), ETag, Last-Modified (producedAt), Expires (nextUpdate); a matching
 * If-None-Match gets 304.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import { performance } from "node:perf_hooks"; // not the global: app.ts says why
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { errorResponse } from "../ocsp/response.js";
import { MAX_REQUEST_BYTES } from "../ocsp/request.js";
import type { AnswerCache, OcspAnswer, OcspResponder } from "../ocsp/responder.js";
import { clockMs, type Clock } from "../pki/clock.js";
import { originForm } from "./access.js";
import { reportWhenSent, type AnswerReport } from "./answer-outcome.js";
import { noneMatchHolds } from "./http-cache.js";

export const OCSP_RESPONSE_TYPE = "application/ocsp-response";

export interface OcspRouteOptions {
  readonly prefix: string;
  readonly responder: OcspResponder;
  readonly clock: Clock;
  /** the longest a cache may keep a GET answer, seconds (never past its nextUpdate) */
  readonly maxAgeSeconds: number;
  /** counts an answer for the metrics (app.ts) */
  readonly count: (a: OcspAnswer) => void;
  /** the route-level hook that counts and logs each response (app.ts) */
  readonly onResponse: (req: FastifyRequest, reply: FastifyReply, done: () => void) => void;
}

/** A path segment percent-decoded (RFC 3986 §2.1), or undefined for one that does not decode. */
function segmentValue(raw: string): string | undefined {
  if (!raw.includes("%")) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return undefined;
  }
}

/** A GET's request part: URL-decoded base64 (or base64url) → DER, or undefined when it is not base64. */
export function decodeGetRequest(encoded: string): Buffer | undefined {
  let s: string;
  try {
    s = decodeURIComponent(encoded);
  } catch {
    return undefined;
  }
  s = s.replace(/-/g, "+").replace(/_/g, "/");
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(s) || s.length > Math.ceil((MAX_REQUEST_BYTES * 4) / 3) + 4) return undefined;
  const der = Buffer.from(s, "base64");
  return der.length ? der : undefined;
}

/** Registers the OCSP POST route, encapsulated: its body parser and error handler touch no other route. */
export function registerOcsp(app: FastifyInstance, o: OcspRouteOptions): void {
  const count = o.count;
  const send = (reply: FastifyReply, a: OcspAnswer) => {
    count(a);
    return reply.code(200).type(OCSP_RESPONSE_TYPE).header("Content-Length", String(a.der.length)).send(a.der);
  };

  void app.register(async (scope) => {
    // Any content type: the body is the request, whatever a client calls it; bounded before it is read whole.
    scope.removeAllContentTypeParsers();
    // A body in a content coding (gzip…) is not the DER request: 415 (with the OCSP answer below), not read as DER.
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: MAX_REQUEST_BYTES }, (req, body, done) => {
      const coding = req.headers["content-encoding"]?.trim().toLowerCase();
      if (coding && coding !== "identity") return done(Object.assign(new Error("a content coding"), { statusCode: 415 }), undefined);
      done(null, body);
    });
    scope.setErrorHandler((err, _req, reply) => {
      // A body too large or cut off, a bad header: an OCSP client reads an OCSP answer, never a stack.
      const a: OcspAnswer = { der: errorResponse("malformedRequest"), responseStatus: "malformedRequest", statuses: [], preProduced: false };
      count(a);
      const code = (err as { statusCode?: unknown }).statusCode;
      const status = typeof code === "number" && code >= 400 && code < 500 ? code : 500;
      if (status === 415) reply.header("Accept-Encoding", "identity");
      return reply.code(status).type(OCSP_RESPONSE_TYPE).header("Cache-Control", "no-store").send(a.der);
    });

    const post = async (req: FastifyRequest, reply: FastifyReply) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const a = await o.responder.answer((req.params as { ca: string }).ca, body);
      return send(reply.header("Cache-Control", "no-store"), a);
    };
    scope.post(`${o.prefix}/ocsp/:ca`, { onResponse: o.onResponse }, post);
    // With a trailing slash too, as a client that builds its URLs by appending '/' sends it: the GET route
    // (ocspGetRoute) reads the CA up to the first '/' after /ocsp/, so /ocsp/<ca>/ was that CA's for a GET and
    // a JSON 404 for a POST.
    scope.post(`${o.prefix}/ocsp/:ca/`, { onResponse: o.onResponse }, post);

  });
}

/** What a GET of one pre-produced answer sends, made once (ocspGetRoute). */
interface Prepared {
  /** until when (ms) the full max-age is what Cache-Control says */
  readonly fullUntil: number;
  /** the headers of a 200, and of a 304 (RFC 9110 §15.4.5: the validators and caching headers a 200 would carry) */
  // not readonly for node's types; never changed (writeHead reads an array, ours alone: no setHeader runs before it)
  readonly ok: string[];
  readonly notModified: string[];
  /** the DER, one octet a character */
  readonly body: string;
}

export interface OcspGetRouteOptions {
  readonly prefix: string;
  /** the responder, once it is running (undefined: no OCSP here, the request goes on to fastify's 404) */
  readonly responder: () => OcspResponder | undefined;
  readonly clock: Clock;
  readonly maxAgeSeconds: number;
  /**
   * OCSP is answered without a credential (openRoutes lists /ocsp/*): only then do answers say Cache-Control
   * `public` (RFC 5019 §6.2). Otherwise `private`: each was answered to a registered verifier, and `public` on a
   * response to a request with Authorization lets a shared cache hand it to anyone (RFC 9111 §3.5), where the
   * spec gives revocation information to registered verifiers only. Default false.
   */
  readonly open?: boolean;
  /** counts an answer for the metrics (app.ts) */
  readonly count: (a: OcspAnswer) => void;
  /**
   * called once per answered request (metrics, access log), `aborted` when the client did not get it whole: it left
   * while the answer was being signed, or mid-answer (it was reported as answered)
   */
  readonly onResponse: AnswerReport;
}

/**
 * OCSP GET on bare node:http in front of fastify, like the published files (published-route.ts): an answer
 * for an unchanged status is pre-produced, so what is left per request is decoding it, finding it and the
 * HTTP around it, where fastify's share was the largest. A GET repeating one answered from the cache before
 * is answered without decoding or parsing it, and without a promise (OcspResponder.preProducedFor). A
 * malformed request, however encoded, gets malformedRequest here (fastify's router answered a bad
 * percent-encoding with JSON).
 */
export function ocspGetRoute(o: OcspGetRouteOptions): (req: IncomingMessage, res: ServerResponse) => boolean {
  const base = `${o.prefix}/ocsp/`;
  const count = o.count;
  const visibility = o.open ? "public" : "private";
  const fullCacheControl = `${visibility}, max-age=${o.maxAgeSeconds}, no-transform, must-revalidate`;
  const malformed = (): OcspAnswer => ({ der: errorResponse("malformedRequest"), responseStatus: "malformedRequest", statuses: [], preProduced: false });

  // Every GET of a pre-produced answer reads the clock for its max-age: a Date made for it is an allocation a poll.
  const nowMs = clockMs(o.clock);
  // A pre-produced answer is served many times: its header array (with the full max-age) and its body as a latin1
  // string are made once, on its first GET, and kept as long as the answer object is (the responder drops it when it
  // is replaced: a revocation seen, a refresh). Node joins a latin1 string body to the header text in one string
  // (OutgoingMessage._send), where a Buffer goes to the socket's writev as a chunk of its own.
  const prepared = new WeakMap<OcspAnswer, Prepared>();
  const prepare = (a: OcspAnswer, c: AnswerCache): Prepared => {
    let p = prepared.get(a);
    if (!p) {
      p = {
        // max-age at its fullest until then (ms): past it, the time left to nextUpdate caps it (RFC 5019 §6.2)
        fullUntil: c.nextUpdate.getTime() - o.maxAgeSeconds * 1000,
        ok: ["Cache-Control", fullCacheControl, "ETag", c.etag, "Last-Modified", c.producedAtHttp, "Expires", c.nextUpdateHttp, "Content-Type", OCSP_RESPONSE_TYPE, "Content-Length", String(a.der.length)],
        notModified: ["Cache-Control", fullCacheControl, "ETag", c.etag, "Last-Modified", c.producedAtHttp, "Expires", c.nextUpdateHttp],
        body: a.der.toString("latin1"),
      };
      prepared.set(a, p);
    }
    return p;
  };

  function send(req: IncomingMessage, res: ServerResponse, a: OcspAnswer, startedAt: number): void {
    count(a);
    const c = a.cache;
    if (!c) {
      res.writeHead(200, ["Content-Type", OCSP_RESPONSE_TYPE, "Content-Length", String(a.der.length), "Cache-Control", "no-store"]);
      res.end(a.der);
      reportWhenSent(req, res, 200, startedAt, o.onResponse);
      return;
    }
    const now = nowMs();
    // The same comparison as the published files' (http-cache.ts): weak tags and "*" match too.
    const inm = req.headers["if-none-match"];
    const notModified = typeof inm === "string" && noneMatchHolds(inm, c.etag);
    const p = a.preProduced ? prepare(a, c) : undefined;
    if (p && now <= p.fullUntil) {
      res.writeHead(notModified ? 304 : 200, notModified ? p.notModified : p.ok);
      res.end(notModified ? undefined : p.body, "latin1");
      reportWhenSent(req, res, notModified ? 304 : 200, startedAt, o.onResponse);
      return;
    }
    const untilNext = Math.floor((c.nextUpdate.getTime() - now) / 1000);
    const cacheControl = untilNext >= o.maxAgeSeconds ? fullCacheControl : `${visibility}, max-age=${Math.max(0, untilNext)}, no-transform, must-revalidate`;
    if (notModified) {
      res.writeHead(304, ["Cache-Control", cacheControl, "ETag", c.etag, "Last-Modified", c.producedAtHttp, "Expires", c.nextUpdateHttp]);
      res.end();
      reportWhenSent(req, res, 304, startedAt, o.onResponse);
      return;
    }
    res.writeHead(200, [
      "Cache-Control", cacheControl,
      "ETag", c.etag,
      "Last-Modified", c.producedAtHttp,
      "Expires", c.nextUpdateHttp,
      "Content-Type", OCSP_RESPONSE_TYPE,
      "Content-Length", String(a.der.length),
    ]);
    res.end(a.der);
    reportWhenSent(req, res, 200, startedAt, o.onResponse);
  }

  // A poll repeats its URL: the parts of the last one are kept, so a repeat is neither cut up nor its request part
  // hashed again for the responder's lookup (the same string, its hash computed once).
  let last: { readonly url: string; readonly ca: string | undefined; readonly encoded: string } = { url: "", ca: undefined, encoded: "" };

  return (req, res) => {
    // HEAD as GET (RFC 9110 §9.3.2): node sends the headers, Content-Length included, and no body.
    if (req.method !== "GET" && req.method !== "HEAD") return false;
    // The absolute form too (RFC 9112 §3.2.2), by its path, as access control and fastify's router read it.
    const url = originForm(req.url ?? "");
    if (!url?.startsWith(base)) return false;
    const responder = o.responder();
    if (!responder) return false;
    const startedAt = performance.now();
    let ca: string | undefined;
    let encoded: string;
    if (url === last.url) {
      ca = last.ca;
      encoded = last.encoded;
    } else {
      // The raw path, never a decoded one: base64 holds '/' and '+', which must survive as sent.
      const q = url.indexOf("?");
      const path = q < 0 ? url : url.slice(0, q);
      const slash = path.indexOf("/", base.length);
      const rawCa = slash < 0 ? "" : path.slice(base.length, slash);
      encoded = slash < 0 ? "" : path.slice(slash + 1);
      // The CA's segment percent-decoded, as fastify decodes the POST route's :ca: "13%2Dsig" was no CA for a GET
      // (unauthorized) and CA 13-sig for a POST. Found by a helper. Only this segment: the request part keeps its '/'.
      ca = segmentValue(rawCa);
      last = { url, ca, encoded };
    }
    if (ca === undefined) {
      send(req, res, malformed(), startedAt);
      return true;
    }
    const known = responder.preProducedFor(ca, encoded);
    if (known) {
      send(req, res, known, startedAt);
      return true;
    }
    const der = decodeGetRequest(encoded);
    (der ? responder.answer(ca, der, encoded) : Promise.resolve(malformed()))
      .then((a) => send(req, res, a, startedAt))
      .catch(() => {
        if (res.headersSent) return void res.destroy();
        const a: OcspAnswer = { der: errorResponse("internalError"), responseStatus: "internalError", statuses: [], preProduced: false };
        count(a);
        res.writeHead(200, ["Content-Type", OCSP_RESPONSE_TYPE, "Content-Length", String(a.der.length), "Cache-Control", "no-store"]);
        res.end(a.der);
        reportWhenSent(req, res, 200, startedAt, o.onResponse);
      });
    return true;
  };
}
