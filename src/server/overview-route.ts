/**
 * `GET /v1/overview[?days=N]`: the CAs at a glance (verifier/overview.ts) for the status page — each CA with its
 * latest CRLs (number, thisUpdate, age, nextUpdate, entries) and its revocations on each of the last N JST days
 * (default 28: four weeks; 1 to 366) as its latest full CRL lists them. Any other query parameter is refused
 * 400 query-invalid, as GET /v1/status/history refuses one.
 *
 * Who may read it: registered verifiers (both kinds), never opened by openRoutes. It is revocation information,
 * which goes to registered verifiers only (shared/spec/JPKI.md "Distribution"); per-day counts per CA and
 * per-municipality entry counts say less than the CRLs themselves, which the same verifiers already fetch.
 *
 * Cost: four small store reads (the latest CRL records), a stat of each CA's full CRL file, and the parse of a
 * CA's full CRL the first time its number is seen, on a thread of its own (verifier/overview.ts says why the CRL
 * and not the store). An answer is kept `cacheMs`
 * (default 15 s) per window and concurrent askers share one computation: a page left open by many verifiers
 * costs four reads per 15 s, not per visit.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { hasUnknownParameter, sendApiError, STORE_UNRESPONSIVE, storeErrorCode, type ApiError } from "./api-errors.js";
import { FinishedCrls } from "../crl/finished.js";
import type { StoreWatchdog } from "../store/watchdog.js";
import { caOverview, CrlRevocationDays, MAX_OVERVIEW_DAYS, type CaOverview } from "../verifier/overview.js";
import type { Workspace } from "../workspace/workspace.js";
import type { VerifierAccess } from "./access.js";

export const DEFAULT_OVERVIEW_DAYS = 28;
/** The typed error codes this route answers (openapi.ts lists them). */
export const OVERVIEW_ERROR_CODES = Object.freeze(["unauthorized", "days-invalid", "query-invalid", "store-unavailable", "store-unresponsive", "internal"] as const);

/** The route's refusals of its query, answered as GET /v1/status/history answers its own (api-errors.ts), and a store that did not answer in time. */
const QUERY_ERRORS: Readonly<Record<"days-invalid" | "query-invalid" | "store-unresponsive", ApiError>> = Object.freeze({
  "days-invalid": { status: 400, message: `days must be a whole number from 1 to ${MAX_OVERVIEW_DAYS}` },
  "query-invalid": { status: 400, message: `the query takes days only (a whole number from 1 to ${MAX_OVERVIEW_DAYS})` },
  "store-unresponsive": STORE_UNRESPONSIVE,
});
const PARAMETERS: ReadonlySet<string> = new Set(["days"]);

export interface OverviewRouteOptions {
  readonly prefix: string;
  readonly ws: Workspace;
  readonly access: VerifierAccess;
  readonly onResponse: (req: FastifyRequest, reply: FastifyReply, done: () => void) => void;
  readonly onError?: (e: unknown, what: string) => void;
  /** how long an answer is reused, ms (default 15 000; 0: never) */
  readonly cacheMs?: number;
  /** a monotonic clock in ms for cacheMs (default performance.now) */
  readonly now?: () => number;
  /** bounds the store reads (store/watchdog.ts): 503 store-unresponsive with Retry-After past it */
  readonly watchdog?: StoreWatchdog;
  /** which CRLs no run will replace (the server's, shared with /crl/index.json and /healthz); one of its own when omitted */
  readonly finishedCrls?: FinishedCrls;
}

export function registerOverview(app: FastifyInstance, o: OverviewRouteOptions): void {
  const cacheMs = o.cacheMs ?? 15_000;
  const now = o.now ?? (() => performance.now());
  const cache = new Map<number, { at: number; answer: Promise<CaOverview> }>();
  // Counted on a thread of its own: a national CA's full CRL takes ≈ 0.5 s to parse, once per CRL number.
  const revocationDays = new CrlRevocationDays(o.ws.paths.root, { thread: true, ...(o.onError ? { onError: o.onError } : {}) });
  // A finished retired generation's CRLs are marked ended, as /crl/index.json marks them: stale, but by design.
  const finished = o.finishedCrls ?? new FinishedCrls(o.ws);
  const ended = (candidates: ReadonlySet<string>) => finished.ended(candidates);
  const overview = (days: number): Promise<CaOverview> => {
    const t = now();
    const hit = cache.get(days);
    if (hit && t - hit.at < cacheMs) return hit.answer;
    const answer = caOverview(o.ws.store, { clock: o.ws.clock, days, revocationDays, ended, ...(o.watchdog ? { watchdog: o.watchdog } : {}) });
    cache.set(days, { at: t, answer });
    // A failure is not kept: the next asker tries again.
    answer.catch(() => {
      if (cache.get(days)?.answer === answer) cache.delete(days);
    });
    return answer;
  };
  app.get(`${o.prefix}/v1/overview`, { onResponse: o.onResponse }, async (req, reply) => {
    if (!o.access.callerOf(req.raw)) return reply.code(401).header("Cache-Control", "no-store").send({ error: "unauthorized", code: "unauthorized" });
    const q = (req.query ?? {}) as Record<string, unknown>;
    if (hasUnknownParameter(q, PARAMETERS)) return sendApiError(reply, QUERY_ERRORS, "query-invalid");
    let days = DEFAULT_OVERVIEW_DAYS;
    if (q.days !== undefined) {
      days = typeof q.days === "string" && /^\d{1,3}$/.test(q.days) ? Number(q.days) : NaN;
      if (!(days >= 1 && days <= MAX_OVERVIEW_DAYS)) return sendApiError(reply, QUERY_ERRORS, "days-invalid");
    }
    try {
      return reply.header("Cache-Control", "no-store").send(await overview(days));
    } catch (e) {
      // Reported once per stall by the watchdog (app.ts), not per request.
      const storeCode = storeErrorCode(e);
      if (storeCode === "store-unresponsive") return sendApiError(reply, QUERY_ERRORS, storeCode);
      o.onError?.(e, "answering GET /v1/overview");
      const unavailable = storeCode === "store-unavailable";
      return reply
        .code(unavailable ? 503 : 500)
        .header("Cache-Control", "no-store")
        .send(unavailable ? { error: "unavailable", code: "store-unavailable", message: "the store did not answer: try again" } : { error: "internal_error", code: "internal", message: "the overview failed unexpectedly" });
    }
  });
}
