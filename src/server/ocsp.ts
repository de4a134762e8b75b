/**
 * OCSP over HTTP, RFC 6960 Appendix A and RFC 5019 §5, at `<prefix>/ocsp/<ca>`:
 *   POST <prefix>/ocsp/<ca>            body: DER OCSPRequest (application/ocsp-request)
 *   GET  <prefix>/ocsp/<ca>/<request>  <request> = base64 of the DER, URL-encoded ('/' as %2F, '+' as %2B,
 *                                      '=' as %3D, or left as they are); base64url is accepted too
 * Answers are application/ocsp-response with HTTP 200, error statuses (malformedRequest, unauthorized,
 * tryLater, internalError) included, as clients expect; nothing else (no stack, no JSON) ever goes back.
 * A GET answer without a nonce carries RFC 5019 §6.2's caching headers: Cache-Control max-age never past
 * nextUpdate (and at most `maxAgeSeconds`), ETag, Last-Modified (producedAt), Expires (nextUpdate); a matching
 * If-None-Match gets 304.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import type { Counter } from "prom-client";
import { errorResponse } from "../ocsp/response.js";
import { MAX_REQUEST_BYTES } from "../ocsp/request.js";
import type { OcspAnswer, OcspResponder } from "../ocsp/responder.js";
import type { Clock } from "../pki/clock.js";
import { httpDate } from "./http-cache.js";

export const OCSP_RESPONSE_TYPE = "application/ocsp-response";

export interface OcspRouteOptions {
  readonly prefix: string;
  readonly responder: OcspResponder;
  readonly clock: Clock;
  /** the longest a cache may keep a GET answer, seconds (never past its nextUpdate) */
  readonly maxAgeSeconds: number;
  readonly answers: Counter<"status" | "source">;
  /** the route-level hook that counts and logs each response (app.ts) */
  readonly onResponse: (req: FastifyRequest, reply: FastifyReply, done: () => void) => void;
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

/** Registers the OCSP routes, encapsulated: their body parser and error handler touch no other route. */
export function registerOcsp(app: FastifyInstance, o: OcspRouteOptions): void {
  const count = (a: OcspAnswer) => {
    const source = a.responseStatus !== "successful" ? "unsigned" : a.preProduced ? "pre-produced" : "signed";
    if (a.responseStatus !== "successful") o.answers.inc({ status: a.responseStatus, source });
    for (const s of a.statuses) o.answers.inc({ status: s, source });
  };
  const send = (reply: FastifyReply, a: OcspAnswer) => {
    count(a);
    return reply.code(200).type(OCSP_RESPONSE_TYPE).header("Content-Length", String(a.der.length)).send(a.der);
  };

  void app.register(async (scope) => {
    // Any content type: the body is the request, whatever a client calls it; bounded before it is read whole.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser("*", { parseAs: "buffer", bodyLimit: MAX_REQUEST_BYTES }, (_req, body, done) => done(null, body));
    scope.setErrorHandler((err, _req, reply) => {
      // A body too large or cut off, a bad header: an OCSP client reads an OCSP answer, never a stack.
      const a: OcspAnswer = { der: errorResponse("malformedRequest"), responseStatus: "malformedRequest", statuses: [], preProduced: false };
      count(a);
      const code = (err as { statusCode?: unknown }).statusCode;
      const status = typeof code === "number" && code >= 400 && code < 500 ? code : 500;
      return reply.code(status).type(OCSP_RESPONSE_TYPE).header("Cache-Control", "no-store").send(a.der);
    });

    scope.post(`${o.prefix}/ocsp/:ca`, { onResponse: o.onResponse }, async (req, reply) => {
      const body = Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0);
      const a = await o.responder.answer((req.params as { ca: string }).ca, body);
      return send(reply.header("Cache-Control", "no-store"), a);
    });

    scope.get(`${o.prefix}/ocsp/:ca/*`, { onResponse: o.onResponse }, async (req, reply) => {
      const ca = (req.params as { ca: string }).ca;
      // The raw path, not the router's decoded parameter: base64 holds '/' and '+', which must survive as sent.
      const path = req.url.split("?")[0]!;
      const start = `${o.prefix}/ocsp/${encodeURIComponent(ca)}/`;
      const encoded = path.startsWith(start) ? path.slice(start.length) : "";
      const der = decodeGetRequest(encoded);
      const a = der ? await o.responder.answer(ca, der) : { der: errorResponse("malformedRequest"), responseStatus: "malformedRequest" as const, statuses: [], preProduced: false };
      if (!a.cache) return send(reply.header("Cache-Control", "no-store"), a);
      const now = o.clock.now().getTime();
      const maxAge = Math.max(0, Math.min(o.maxAgeSeconds, Math.floor((a.cache.nextUpdate.getTime() - now) / 1000)));
      reply
        .header("Cache-Control", `public, max-age=${maxAge}, no-transform, must-revalidate`)
        .header("ETag", a.cache.etag)
        .header("Last-Modified", httpDate(a.cache.producedAt))
        .header("Expires", httpDate(a.cache.nextUpdate));
      const inm = req.headers["if-none-match"];
      if (typeof inm === "string" && inm.split(",").some((t) => t.trim() === a.cache!.etag)) {
        count(a);
        return reply.code(304).send();
      }
      return send(reply, a);
    });
  });
}
