/**
 * `jpki serve`'s HTTP application (fastify): the publication point verifiers (署名検証者) poll.
 *
 * - GET/HEAD of every published CRL and CA certificate at the paths the certificates name (published.ts),
 *   with strong ETags, Last-Modified, conditional GET (304), single byte ranges (206) and Cache-Control whose
 *   max-age never reaches past the CRL's nextUpdate (http-cache.ts); bodies stream from an open descriptor,
 *   so a CRL replaced meanwhile is never served torn. This route runs on bare node:http in front of fastify
 *   (published-route.ts says why);
 * - `/crl/index.json`: the latest CRL of every scope — each CA's full CRL, its delta CRL, municipality
 *   partitions and ARL — with its scope ("full" | "delta" with its baseNumber | "partition" with its
 *   municipality | "arl"), url, number, thisUpdate, nextUpdate, entries, size, sha256;
 * - `/healthz`: the store answers (within HEALTH_STORE_WAIT_MS), no CRL is past its nextUpdate and every CRL's file is there (503 otherwise, saying which);
 * - `/metrics`: Prometheus text (prom-client): requests by route and status (those cut short mid-body also apart), CRL
 *   ages, OCSP answers by status;
 * - `/ocsp/<ca>`: OCSP (RFC 6960, RFC 5019), when given the responder passphrase (ocsp.ts, ocsp/responder.ts);
 * - `POST /v1/validate`: the validation API, each verifier kind in its view, every answer in the disclosure log
 *   (validate-route.ts, verifier/validation-service.ts); `/openapi.json` describes it (openapi.ts).
 * - `POST /v1/status`, `GET /v1/status/history`: liveness checks (現況確認) in batches with the old/new
 *   certificate link where allowed, and the caller's own check history (status-route.ts, verifier/liveness.ts).
 *   (validate-route.ts, verifier/validation-service.ts); `POST /v1/verify-signature` likewise for a signed file
 *   (CMS SignedData: verify-signature-route.ts); `/openapi.json` describes both (openapi.ts);
 * - `GET /v1/overview`: each CA with its latest CRLs and revocations per day (overview-route.ts, verifier/overview.ts);
 * - `/` and `/ui/*`: the status page for people, open to anyone; its script asks for the verifier's token and
 *   reads the two routes above with it (page.ts, public/).
 * Every request, before any route sees it, must carry a registered verifier's (署名検証者) credential unless
 * the workspace's `openRoutes` lists its route; then a per-verifier rate limit, a per-address limit of the
 * requests refused for their credential, and a record of what each verifier fetched (access.ts).
 * The access log is one JSON line per request (access-log.ts): fastify's own request logging writes two pino
 * lines per request and halved the 304 rate measured against bare node:http.
 */
import { stat } from "node:fs/promises";
import { createServer as createHttpServer, ServerResponse, STATUS_CODES, type IncomingMessage, type Server as HttpServer } from "node:http";
import { createServer as createHttpsServer } from "node:https";
// node 20 makes the global `performance` a lazy accessor of globalThis: every read of it there calls a getter
import { performance } from "node:perf_hooks";
import type { Socket } from "node:net";
import type { Duplex } from "node:stream";
import { join } from "node:path";
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from "fastify";
import { Counter, Gauge, Registry } from "prom-client";
import { OcspResponder, type OcspAnswer, type OcspResponderOptions } from "../ocsp/responder.js";
import { JpkiError } from "../errors.js";
import type { Clock } from "../pki/clock.js";
import { ARL_SCOPE, FULL_SCOPE, type CrlRecord, type VerifierRecord } from "../store/types.js";
import { FinishedCrls, type EndedCrls } from "../crl/finished.js";
import type { Workspace } from "../workspace/workspace.js";
import { toPem } from "../pki/pem.js";
import type { AccessLogSink } from "./access-log.js";
import { apiErrorBody, bodyRefusalCode, DEFAULT_BODY_ERRORS, DEFAULT_BODY_LIMIT, sendApiError, JSON_TYPE, JSON_TYPE_LINES, METHOD_NOT_ALLOWED, PARSER_REFUSALS, STOPPING_ERROR, STORE_UNRESPONSIVE, storeErrorCode, TOO_MANY_CONNECTIONS, UNSUPPORTED_CONTENT_ENCODING } from "./api-errors.js";
import { clientAddressOf, trustedProxyOf } from "./client-address.js";
import { AdmittedRequest, REPEATED_HOST, repeatedFields, routedPath, TOO_MANY_REFUSALS, VerifierAccess, type AccessOptions, type RouteScope } from "./access.js";
import { ocspGetRoute, registerOcsp } from "./ocsp.js";
import { PublishedFiles } from "./published.js";
import { publishedRoute } from "./published-route.js";
import { validationApiDocument } from "./openapi.js";
import { registerValidate, validateFastPath } from "./validate-route.js";
import { registerStatus } from "./status-route.js";
import { registerOverview } from "./overview-route.js";
import { registerVerifySignature } from "./verify-signature-route.js";
import { loadPage, registerPage } from "./page.js";
import { VerifierValidationService, type ValidationServiceOptions } from "../verifier/validation-service.js";
import { StoreWatchdog, type StoreCallKind } from "../store/watchdog.js";
import { UnknownWrites } from "../store/write-outcome.js";
import { crlIndexRecords, everyCrl } from "./crl-records.js";

export interface ServerOptions {
  /** longest a cache may keep a CRL, seconds (never past its nextUpdate); default 300 */
  readonly crlMaxAgeSeconds?: number;
  /** max-age of CA certificates, seconds; default one day */
  readonly certificateMaxAgeSeconds?: number;
  /** where each answered request is recorded (an AccessLog, or lineSink(…)); none when omitted */
  readonly accessLog?: AccessLogSink;
  /** the path prefix every route lives under: the path of the workspace's baseUrl ("" for none) */
  readonly prefix?: string;
  /** HTTPS with this certificate chain and key (PEM) */
  readonly tls?: { readonly cert: Buffer | string; readonly key: Buffer | string };
  /** answer OCSP at /ocsp/<ca>: the responder keys' passphrase and tuning; no OCSP route when omitted */
  readonly ocsp?: Omit<OcspResponderOptions, "store" | "clock"> & {
    /** longest a cache may keep a GET answer, seconds (never past its nextUpdate); default 300 */
    readonly maxAgeSeconds?: number;
  };
  /** registered-verifier access (access.ts): refresh and flush intervals, clocks, error reporting */
  readonly access?: Omit<AccessOptions, "prefix" | "openRoutes" | "rateLimit" | "refusedRateLimit" | "onVerifierCa" | "onRefused">;
  /** connection timeouts, ms (CONNECTION_TIMEOUTS says why each is what it is) */
  readonly timeouts?: Partial<ConnectionTimeouts>;
  /** the most connections open at once (MAX_CONNECTIONS by default); one more is answered 503 and closed */
  readonly maxConnections?: number;
  /** the validation API (POST /v1/validate): how often it looks again at the CA certificates and CRL files */
  readonly validation?: ValidationServiceOptions;
  /** GET /v1/overview: how long an answer is reused, ms (default 15 000) */
  readonly overviewCacheMs?: number;
  /** GET /healthz: how long it waits for the store before answering 503 "unresponsive", ms (default HEALTH_STORE_WAIT_MS) */
  readonly healthStoreWaitMs?: number;
  /**
   * The verifier API (validate, verify-signature, status and its history): how long it waits for the store before
   * answering 503 store-unresponsive with Retry-After, ms (default STORE_WAIT_MS; store/watchdog.ts)
   */
  readonly storeWaitMs?: number;
  /** the store watchdog's monotonic clock, ms (default performance.now): a test's, so that its bound is not the machine's load */
  readonly storeNow?: () => number;
}

/**
 * How long /healthz waits for the store. A database server that hangs or vanishes without closing the connection
 * (a stopped VM, a network partition) answers nothing, and the probe waited with it: a load balancer's check timed
 * out instead of reading a 503 that says what is wrong, and every probe left one more store read waiting.
 */
export const HEALTH_STORE_WAIT_MS = 5_000;

export interface ConnectionTimeouts {
  /** a connection on which nothing moves either way this long is closed (node: server.timeout) */
  readonly idleMs: number;
  /** the longest a client may take to send a request's headers (node: headersTimeout) */
  readonly headersMs: number;
  /** … and the whole request, body included (node: requestTimeout) */
  readonly requestMs: number;
}

/**
 * With a serverFactory fastify applies none of its own timeouts, and node's defaults let anyone who can
 * connect hold descriptors: one trickling headers is held a minute, a download the client stopped reading
 * forever. Every request we take is small (a POST body is bounded: an OCSP request at most 8 KB), so the
 * bounds on reading one can be short: headersMs also ends a connection that never sends a byte (node 20 answers
 * it 408). Answers can be large (a CRL, /metrics, /crl/index.json): the idle bound, not a total, limits them, so
 * a download the client stopped reading ends and one that is slow but moving is never cut.
 */
export const CONNECTION_TIMEOUTS: ConnectionTimeouts = Object.freeze({ idleMs: 30_000, headersMs: 10_000, requestMs: 30_000 });

/**
 * The most connections one process holds open at once, by default. Each holds a descriptor and some memory until
 * the client or a timeout ends it, and nothing bounded how many a client could open: past the process's open-file
 * limit the server could open no CRL, no store connection. Verifiers poll on a connection or a few each.
 */
export const MAX_CONNECTIONS = 10_000;

/**
 * Caps the connections `server` holds. Its own "connection" listeners (node's HTTP parser, or the TLS handshake)
 * run only for a connection under the cap: one over it never reaches the parser. Over plain HTTP it is answered
 * TOO_MANY_CONNECTIONS at once, before its request (a server may answer before the request is complete, RFC 9112
 * §9.5's 408 likewise), what the client sends is read and dropped so that the close does not reset the answer
 * away, and it is destroyed `lingerMs` later if the client has not closed it. Over TLS no answer can be given
 * without the handshake this saves, so it is closed at once. Costs one comparison per connection, none per request.
 * Call it once every "connection" listener is on the server.
 */
function capConnections(server: HttpServer, o: { readonly max: number; readonly tls: boolean; readonly lingerMs: number; readonly stats: ConnectionStats }): void {
  const accept = server.listeners("connection") as Array<(this: HttpServer, s: Socket) => void>;
  server.removeAllListeners("connection");
  const stats = o.stats;
  server.on("connection", (s: Socket) => {
    if (stats.open >= o.max) {
      stats.refused++;
      s.on("error", () => undefined);
      if (o.tls) return void s.destroy();
      s.resume();
      s.end(TOO_MANY_CONNECTIONS_ANSWER);
      const linger = setTimeout(() => s.destroy(), o.lingerMs).unref();
      s.once("close", () => clearTimeout(linger));
      return;
    }
    stats.open++;
    s.once("close", () => stats.open--);
    for (const l of accept) l.call(server, s);
  });
}

const TOO_MANY_CONNECTIONS_BODY = JSON.stringify(apiErrorBody({ [TOO_MANY_CONNECTIONS.code]: TOO_MANY_CONNECTIONS }, TOO_MANY_CONNECTIONS.code));
const TOO_MANY_CONNECTIONS_ANSWER =
  `HTTP/1.1 ${TOO_MANY_CONNECTIONS.status} ${STATUS_CODES[TOO_MANY_CONNECTIONS.status]}\r\n${JSON_TYPE_LINES}` +
  `Content-Length: ${Buffer.byteLength(TOO_MANY_CONNECTIONS_BODY)}\r\nCache-Control: no-store\r\nRetry-After: ${TOO_MANY_CONNECTIONS.retryAfterSeconds}\r\nConnection: close\r\n\r\n${TOO_MANY_CONNECTIONS_BODY}`;

/** Connections open now and refused for the cap since the start (capConnections), for the metrics. */
interface ConnectionStats {
  open: number;
  refused: number;
}

/** The deepest nesting of a JSON body any route takes (they need 3: a body, its list, an item). */
export const MAX_JSON_DEPTH = 16;

/** Whether JSON text nests arrays and objects more than `max` deep (strings skipped). Linear, no parse. */
export function jsonNestsDeeper(text: string, max: number): boolean {
  // Text with at most `max` opening brackets cannot nest deeper, whatever its strings hold: counted by indexOf
  // (≈ 0.05 µs for a certificate's body), the walk below reads every character (≈ 4 µs of each POST /v1/validate).
  if (fewBrackets(text, max)) return false;
  let depth = 0;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22) {
      // a string: to its closing quote, past escapes
      for (i++; i < text.length; i++) {
        const d = text.charCodeAt(i);
        if (d === 0x5c) i++;
        else if (d === 0x22) break;
      }
    } else if (c === 0x5b || c === 0x7b) {
      if (++depth > max) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

/**
 * Whether a Content-Type's charset parameter, if any, names UTF-8 (RFC 8259 §8.1), case-insensitive, quoted or
 * not; "utf8", which clients send and the WHATWG Encoding Standard reads as UTF-8, too.
 */
export function charsetIsUtf8(contentType: string): boolean {
  const params = contentType.split(";");
  for (let i = 1; i < params.length; i++) {
    const p = params[i]!;
    const eq = p.indexOf("=");
    if (eq < 0 || p.slice(0, eq).trim().toLowerCase() !== "charset") continue;
    const v = p.slice(eq + 1).trim().replace(/^"(.*)"$/, "$1").toLowerCase();
    if (v !== "utf-8" && v !== "utf8") return false;
  }
  return true;
}

/** Whether a Content-Encoding names no coding: identity, or nothing (RFC 9110 §8.4.1). */
function noContentCoding(coding: string): boolean {
  const c = coding.trim().toLowerCase();
  return c === "" || c === "identity";
}

/** Whether a request carries a body (RFC 9112 §6.3): framed by Transfer-Encoding, or a Content-Length above 0. */
function hasBody(req: IncomingMessage): boolean {
  const h = req.headers;
  return h["transfer-encoding"] !== undefined || (h["content-length"] !== undefined && h["content-length"] !== "0");
}

/** Whether the text holds at most `max` of `[` and `{` together. */
function fewBrackets(text: string, max: number): boolean {
  let n = 0;
  for (const open of ["{", "["]) {
    for (let i = text.indexOf(open); i >= 0; i = text.indexOf(open, i + 1)) if (++n > max) return false;
  }
  return true;
}

/** The path of a base URL without its trailing slash: where the certificates' URLs put the files. */
export function pathPrefix(baseUrl: string): string {
  return new URL(baseUrl).pathname.replace(/\/+$/, "");
}

export interface ServerMetrics {
  readonly registry: Registry;
  readonly requests: Counter<"route" | "status">;
  /** answers whose status was sent but whose body was not written whole (the client went away, the idle bound): a subset of `requests` */
  readonly abortedRequests: Counter<"route" | "status">;
  readonly ocspAnswers: Counter<"status" | "source">;
  /** a counter of requests answered on `route`: call it with each answer's status, and whether it was cut short (counted in both then) */
  requestCounter(route: string): (status: number, aborted?: boolean) => void;
  /** counts an OCSP answer (ocspAnswers, by status and source) */
  countOcspAnswer(a: OcspAnswer): void;
}

function makeMetrics(ws: Workspace, clock: Clock, accessLog: AccessLogSink | undefined, connections: ConnectionStats, storeWatchdog: StoreWatchdog, finishedCrls: FinishedCrls): ServerMetrics {
  const registry = new Registry();
  new Gauge({
    name: "jpki_http_connections_open",
    help: "connections open now (TCP, a TLS handshake in progress included)",
    registers: [registry],
    collect() {
      this.set(connections.open);
    },
  });
  // A client (or many) holding the cap shows here before verifiers complain.
  new Counter({
    name: "jpki_http_connections_refused_total",
    help: "connections closed at once because the server held its cap of open connections (--max-connections)",
    registers: [registry],
    collect() {
      this.reset();
      this.inc(connections.refused);
    },
  });
  // Lines the access log could not write (it falls behind, a full disk, a closed pipe): an operator who relies
  // on the log must be able to see that it has gaps.
  if (accessLog && "dropped" in accessLog) {
    new Counter({
      name: "jpki_access_log_dropped_total",
      help: "access-log lines not written: the log thread fell a whole ring behind, or a write failed",
      registers: [registry],
      collect() {
        this.reset();
        this.inc((accessLog as { readonly dropped: number }).dropped);
      },
    });
  }
  if (accessLog && "waiting" in accessLog) {
    new Gauge({
      name: "jpki_access_log_waiting_lines",
      help: "access-log lines recorded and not yet written: near 0 normally; one that stays up is a log that writes nothing (a full disk holds them until space is back or a whole ring is waiting, then they are dropped)",
      registers: [registry],
      collect() {
        this.set((accessLog as { readonly waiting: number }).waiting);
      },
    });
  }
  // Requests are counted in plain numbers and handed to prom-client when scraped: its inc() hashes the
  // labels on every call, which showed as ~0.25 µs of every 304.
  type Tally = { readonly route: string; readonly status: string; n: number };
  /** A counter by route and status whose plain tallies are handed over when scraped. */
  const tallyCounter = (name: string, help: string) => {
    const tallies: Tally[] = [];
    const counter = new Counter({
      name,
      help,
      labelNames: ["route", "status"] as const,
      registers: [registry],
      collect() {
        this.reset();
        for (const t of tallies) this.inc({ route: t.route, status: t.status }, t.n);
      },
    });
    return { tallies, counter };
  };
  // Every answer counts in the total, a cut one too (Prometheus convention: the aborted counter is a subset of
  // the total, so a dashboard's abort ratio is aborted / total).
  const { tallies, counter: requests } = tallyCounter(
    "jpki_http_requests_total",
    "HTTP requests answered, by route and status, those cut short mid-body included (jpki_http_requests_aborted_total counts them alone)",
  );
  // A CRL download the client abandoned (or the idle bound cut) counted as a 200 like a whole one and nothing
  // else, hiding verifiers that never get the file.
  const { tallies: abortedTallies, counter: abortedRequests } = tallyCounter(
    "jpki_http_requests_aborted_total",
    "HTTP answers begun (status sent) but not written whole, the client gone or the connection cut mid-body, by route and status (a subset of jpki_http_requests_total)",
  );
  const tallyOf = (list: Tally[], byStatus: Map<number, Tally>, route: string, status: number): Tally => {
    const tally = { route, status: String(status), n: 0 };
    list.push(tally);
    byStatus.set(status, tally);
    return tally;
  };
  const requestCounter = (route: string) => {
    const byStatus = new Map<number, Tally>();
    const abortedByStatus = new Map<number, Tally>();
    return (status: number, aborted = false) => {
      (byStatus.get(status) ?? tallyOf(tallies, byStatus, route, status)).n++;
      if (aborted) (abortedByStatus.get(status) ?? tallyOf(abortedTallies, abortedByStatus, route, status)).n++;
    };
  };
  // A scrape while the store hangs still answers (the request counters, the connections and jpki_store_responsive 0
  // are what an operator looks at then): the CRL gauges read the store through the watchdog, and a late or failed
  // read leaves them out of this scrape instead of failing it whole.
  // One read per scrape, shared by the gauges (prom-client starts every collect() of a scrape at once).
  let scrapeRead: Promise<{ crls: Awaited<ReturnType<typeof everyCrl>>; late: boolean }> | undefined;
  // A retired generation's CRL that will not be replaced (crl/finished.ts) is left out, as /healthz leaves it: its
  // nextUpdate passing is the generation's end, and an alert on a negative jpki_crl_seconds_to_next_update would fire for good.
  const withoutEnded = async (crls: Awaited<ReturnType<typeof everyCrl>>) => {
    const t = clock.now().getTime();
    const expired = new Set(crls.filter((s) => !s.latest || s.latest.nextUpdate.getTime() <= t).map((s) => s.caId));
    if (!expired.size) return crls;
    const ended = await storeWatchdog.run("the CRL records", () => finishedCrls.ended(expired));
    return crls.filter((s) => !ended(s.caId, s.scope === "full" ? FULL_SCOPE : s.scope === "arl" ? ARL_SCOPE : s.scope, s.latest));
  };
  const readForScrape = () =>
    (scrapeRead ??= everyCrl(ws, storeWatchdog)
      .then(withoutEnded)
      .then((crls) => ({ crls, late: false }), () => ({ crls: [], late: true }))
      .finally(() => (scrapeRead = undefined)));
  const crlsForScrape = async () => (await readForScrape()).crls;
  new Gauge({
    name: "jpki_crl_age_seconds",
    help: "seconds since the thisUpdate of the latest published CRL of each CA and scope (full, a municipality code, arl)",
    labelNames: ["ca", "scope"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const now = clock.now().getTime();
      for (const s of await crlsForScrape()) if (s.latest) this.set({ ca: s.caId, scope: s.scope }, (now - s.latest.thisUpdate.getTime()) / 1000);
    },
  });
  new Gauge({
    name: "jpki_crl_seconds_to_next_update",
    help: "seconds until the nextUpdate of the latest published CRL of each CA and scope (negative: expired)",
    labelNames: ["ca", "scope"] as const,
    registers: [registry],
    async collect() {
      this.reset();
      const now = clock.now().getTime();
      for (const s of await crlsForScrape()) if (s.latest) this.set({ ca: s.caId, scope: s.scope }, (s.latest.nextUpdate.getTime() - now) / 1000);
    },
  });
  new Gauge({
    name: "jpki_store_responsive",
    help: "1 while the store answers within the bound, 0 while a call to it is late (the CRL gauges are left out of the scrape then)",
    registers: [registry],
    async collect() {
      this.set((await readForScrape()).late ? 0 : 1);
    },
  });
  // The kinds of store calls the watchdog holds (watchdog.ts `admit`: a store that answers all but one kind, a lock on
  // one table), and what it refused. jpki_store_responsive says 1 through a hold (the store answers), so a hold was
  // seen only as 503s among its routes' answers. A kind once held stays in the gauge at 0: its alert resolves.
  const everHeld = new Set<StoreCallKind>();
  new Gauge({
    name: "jpki_store_held",
    help: "1 while the store watchdog holds a kind of store call (kind: what the call does): one still late when the store answered others in time, refused at once but one probe per store bound until a call of it answers in time; 0 once released",
    labelNames: ["kind"] as const,
    registers: [registry],
    collect() {
      const held = new Set(storeWatchdog.heldKinds);
      for (const kind of held) everHeld.add(kind);
      for (const kind of everHeld) this.set({ kind }, held.has(kind) ? 1 : 0);
    },
  });
  new Counter({
    name: "jpki_store_refused_calls_total",
    help: "store calls refused without being sent, by kind (what the call does) and why: stalled (a call past the store bound had not settled: every kind is refused but one probe per bound) or held (its kind is held: jpki_store_held)",
    labelNames: ["kind", "why"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [kind, n] of storeWatchdog.refusals) {
        if (n.stalled) this.inc({ kind, why: "stalled" }, n.stalled);
        if (n.held) this.inc({ kind, why: "held" }, n.held);
      }
    },
  });
  // The disclosure log's per-resident index, where a background indexer keeps it (PostgreSQL): a failing one is
  // otherwise silent — the records stay readable above its mark, and every resident's view slows as that tail grows.
  const disclosureIndex = ws.store.disclosureIndex;
  if (disclosureIndex) {
    new Counter({
      name: "jpki_disclosure_index_failures_total",
      help: "runs of the disclosure log's per-resident indexer that failed since the start (each retried later; the serve log says why)",
      registers: [registry],
      collect() {
        this.reset();
        this.inc(disclosureIndex.failures);
      },
    });
    new Gauge({
      name: "jpki_disclosure_index_behind_records",
      help: "disclosure records this process appended above the per-resident index's mark as it last saw it: under 4096 while the indexer keeps up; growing, the resident's view reads more of the log itself",
      registers: [registry],
      collect() {
        this.set(disclosureIndex.behind);
      },
    });
  }
  // OCSP answers likewise: source → status → count.
  const answerTallies = new Map<string, Map<string, { n: number }>>();
  const ocspAnswers = new Counter({
    name: "jpki_ocsp_answers_total",
    help: "OCSP answers: per certificate status (good, revoked, unknown) or error status, and whether pre-produced, signed for the request, or unsigned",
    labelNames: ["status", "source"] as const,
    registers: [registry],
    collect() {
      this.reset();
      for (const [source, byStatus] of answerTallies) for (const [status, t] of byStatus) this.inc({ status, source }, t.n);
    },
  });
  const tally = (source: string, status: string) => {
    let byStatus = answerTallies.get(source);
    if (!byStatus) answerTallies.set(source, (byStatus = new Map()));
    let t = byStatus.get(status);
    if (!t) byStatus.set(status, (t = { n: 0 }));
    t.n++;
  };
  const countOcspAnswer = (a: OcspAnswer) => {
    const source = a.responseStatus !== "successful" ? "unsigned" : a.preProduced ? "pre-produced" : "signed";
    if (a.responseStatus !== "successful") tally(source, a.responseStatus);
    for (const s of a.statuses) tally(source, s);
  };
  return { registry, requests, abortedRequests, ocspAnswers, requestCounter, countOcspAnswer };
}

/** The status a request is logged and counted with when its client went away before any answer (nginx's 499). */
export const CLIENT_CLOSED_REQUEST = 499;

/** The metrics route label of a refused request's scope. */
const ROUTE_OF_SCOPE: Readonly<Record<RouteScope, string>> = {
  healthz: "healthz",
  metrics: "metrics",
  "crl-index": "crl-index",
  crl: "published",
  arl: "published",
  "ca-certificate": "published",
  ocsp: "ocsp",
  openapi: "openapi",
  validate: "validate",
  status: "status",
  overview: "overview",
  page: "page",
  other: "other",
};

/**
 * A request node's HTTP parser refuses (bad request line, header overflow, chunk extensions past node's bound, a
 * timeout) is answered here, before any route: the status node's own answer gives, with the typed `code` every
 * error body of the server carries. No request object exists, so neither access control nor a route sees it:
 * `onRefused` counts and logs each refusal (buildServer), once — a socket already destroyed (reset by the client,
 * or refused before) is neither answered nor counted, nor is a request its route answered before its body ended
 * (answeredBeforeItsBody): its answer is its line.
 *
 * Each is a refusal of the connection's peer address as a credential's is (access.ts, refusedRateLimit; of the
 * client address an admitted request came from, and of no one from a trusted proxy: access.ts says why):
 * `refusalWait` takes it from the address's bucket and, once the address is past its refusals, gives the seconds
 * to wait. The answer is then 429 too-many-refusals with Retry-After, as access control answers that address's
 * other requests — else a peer sending only malformed requests would never be told to slow down — and the
 * connection still ends after it.
 *
 * On a keep-alive connection the refused request may follow requests still to be answered (HTTP/1.1 pipelining).
 * Answers go out in the order of the requests (RFC 9112 §9.3.2), so the refusal must come after theirs:
 * - Theirs not begun yet (a validation, a store read under way): the refusal is held until every answer ahead of it
 *   is written, then written and the connection closed. It was written at once, as node's own default does, and the
 *   client read it as the answer to its EARLIER request (whose own answer then went nowhere). While it waits,
 *   whatever more the client sends is dropped (the parser, failed, reads nothing more: node reports each chunk).
 * - One being written (a pipelined request behind a large CRL download, or one whose headers never end meanwhile:
 *   the 408): a refusal written then went onto the wire inside that answer's body. As node's default does, it is not
 *   written: the connection is destroyed at once, and the refusal still counted and logged (its status, though not
 *   sent). The client sees its download cut short of Content-Length, which every HTTP client detects, never a body
 *   with an answer inside. Not held until that answer ends: it may be a download of any length, and the connection's
 *   reads cannot be stopped meanwhile. The 429 of an address past its refusals is withheld there alike.
 * Either way the refusal is counted and logged once the answers ahead of it are (written, or cut), so the access log's
 * lines of one connection come in the order of its requests, a refusal's too (it came before theirs: lines are made
 * as answers end).
 */
function clientErrorHandler(o: {
  readonly refusalWait: (socket: Socket) => number;
  /** the request the parser was reading on this connection, if it reached the server's handler (requestBeingRead) */
  readonly requestBeingRead: (socket: Socket) => IncomingMessage | undefined;
  /** whether the request the parser was reading has an answer of its own already (answeredBeforeItsBody) */
  readonly answeredBeforeItsBody: (socket: Socket) => boolean;
  /** `req`: the request the refusal answers, when its headers had been read (requestBeingRead) */
  readonly onRefused: (socket: Socket, req: IncomingMessage | undefined, status: number, startedAt: number) => void;
}) {
  // connections whose refusal waits for the answers ahead of it
  const holding = new WeakSet<Socket>();
  return (err: Error & { code?: string }, socket: Socket): void => {
    if (err.code === "ECONNRESET" || socket.destroyed || holding.has(socket)) return;
    const startedAt = performance.now();
    if (!socket.writable) return void socket.destroy(err);
    // before the destroy: a socket destroyed before its peer address was read no longer knows it
    const wait = o.refusalWait(socket);
    const code = PARSER_ERROR_CODES.get(err.code ?? "") ?? "bad-request";
    const status = wait > 0 ? 429 : PARSER_REFUSALS[code].status;
    const req = o.requestBeingRead(socket);
    // Its route answered it before its body ended — while it sat queued behind the answers ahead, or whole before the
    // bad bytes came: that answer is (or was) written in its turn, and a refusal after it would be a second answer,
    // which the client reads as the answer to its next request (never read by the server). It is cut instead, as
    // answerUnderWay's is.
    const answered = o.answeredBeforeItsBody(socket);
    // Nor is it logged or counted: the request has its line and its count from its own answer (or, that answer cut,
    // from its close), and one request is one line. It was logged a second time, as an anonymous 400 under "other".
    const refused = answered ? () => undefined : () => o.onRefused(socket, req, status, startedAt);
    if (answerUnderWay(socket)) {
      socket.destroy(err);
      return afterAnswers(socket, refused);
    }
    const refuse = () => {
      // Not after an answer of the refused request's own, begun while it waited queued (a route answering before
      // its body ended): the refusal would follow it on the wire as a second answer. Cut, as answerUnderWay's.
      if (socket.writable && !answered && !attached(socket)?.headersSent) socket.write(wait > 0 ? tooManyRefusals(status, wait) : parserRefusal(status, code));
      refused();
      socket.destroy(err);
    };
    if (!answersAhead(socket)) return refuse();
    holding.add(socket);
    afterAnswers(socket, refuse, req);
  };
}

function tooManyRefusals(status: number, wait: number): string {
  return (
    `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${JSON_TYPE_LINES}Content-Length: ${Buffer.byteLength(TOO_MANY_REFUSALS)}\r\n` +
    `Cache-Control: no-store\r\nRetry-After: ${wait}\r\nConnection: close\r\n\r\n${TOO_MANY_REFUSALS}`
  );
}

/**
 * The headers of every other JSON refusal of the server (the 429 above, access.ts's): these alone went without the
 * charset and Cache-Control: no-store, so a client or cache met two shapes of one refusal.
 */
function parserRefusal(status: number, code: keyof typeof PARSER_REFUSALS): string {
  const body = parserRefusalBody(code);
  return `HTTP/1.1 ${status} ${STATUS_CODES[status]}\r\n${JSON_TYPE_LINES}Content-Length: ${Buffer.byteLength(body)}\r\nCache-Control: no-store\r\nConnection: close\r\n\r\n${body}`;
}

/** The response node attached to the connection (answerUnderWay says why it is read), if any. */
function attached(socket: Socket): ServerResponse | undefined {
  return (socket as Socket & { _httpMessage?: ServerResponse | null })._httpMessage ?? undefined;
}

/**
 * Whether answers to earlier requests on this connection are still to be written: node attaches the first one's
 * response to the connection and queues the rest behind it, attaching each as the one before finishes. One attached
 * to a request still being read is the refused request's own (requestBeingRead), none ahead of it.
 */
function answersAhead(socket: Socket): boolean {
  const res = attached(socket);
  return res !== undefined && res.req.complete;
}

/**
 * Calls `then` once every answer on this connection is written or cut, and the routes have reported each (on its
 * "finish" or "close"): each response attached in turn is waited for until it has closed, then a turn of the event
 * loop. node attaches the next queued one in its own "finish" listener, which runs first; on a connection destroyed
 * the one attached is the last (the queued ones are never written). `own`, the refused request (queued behind the
 * others while its body was read): its response is where the waiting ends, the refusal being its answer. Waited
 * for, it never came (its body never ends), and the refusal was held until the client left.
 */
function afterAnswers(socket: Socket, then: () => void, own?: IncomingMessage): void {
  const next = (): void => {
    const res = attached(socket);
    if (!res || res.closed || (own !== undefined && res.req === own)) return then();
    let done = false;
    const ended = () => {
      if (done) return;
      done = true;
      setImmediate(next);
    };
    res.once("finish", ended);
    res.once("close", ended);
  };
  next();
}

/**
 * node's parser errors that have a refusal of their own, as node's default clientError answer maps them (its
 * _http_server.js): any other is a request that is not HTTP/1.1, 400.
 */
const PARSER_ERROR_CODES: ReadonlyMap<string, keyof typeof PARSER_REFUSALS> = new Map([
  ["ERR_HTTP_REQUEST_TIMEOUT", "timeout"],
  ["HPE_HEADER_OVERFLOW", "headers-too-large"],
  ["HPE_CHUNK_EXTENSIONS_OVERFLOW", "chunk-extensions-too-large"],
]);

/**
 * Whether an answer on this connection stands in the way of writing a refusal after it: one whose body is still being
 * made (a file streamed, headers out and end() not called: whatever is written goes inside it), or the answer already
 * given to the request being refused (an early answer, its body still coming). node's response attached to the socket
 * (the "current attached http.ServerResponse" of node's clientError documentation; `_httpMessage` is not itself
 * documented, but it is what node's own default reads, set since node 0.x, and as it finishes replaced by the next
 * queued one or cleared) is read with its documented fields: headersSent (true when the head is made, a little before
 * node writes it: the safe side), writableEnded, req. An answer ended whole (a 304 still in the socket's buffer) is
 * not in the way: the refusal waits for it (afterAnswers). app.test.ts fails should node stop attaching it.
 */
function answerUnderWay(socket: Socket): boolean {
  const res = attached(socket);
  return res !== undefined && res.headersSent && (!res.writableEnded || !res.req.complete);
}

/**
 * The request node's parser was reading on this connection when it failed, if that request had reached the server's
 * handler (access.admit ran on it) and no answer to it is under way: its body had not ended. `handed` holds, per
 * connection, the response of the last request node handed to the handler (node hands each as soon as its headers
 * are read, pipelined ones too, their responses queued behind the answers ahead), which names its request
 * (`res.req`, documented); a request complete before (one pipelined ahead, its answer still to come) is not the one
 * refused. undefined when the failure came before any request's headers ended. The response attached to the socket
 * stood for it: a request queued behind an answer still to come was not found, and its refusal was logged as one
 * with no method, no target and no verifier, under "other".
 */
function requestBeingRead(handed: WeakMap<Socket, ServerResponse>, socket: Socket): IncomingMessage | undefined {
  const res = handed.get(socket);
  return res && !res.headersSent && !res.req.complete ? res.req : undefined;
}

/**
 * Whether the request node's parser was reading on this connection when it failed had been answered already by its
 * route (the last one handed to the handler, its body not ended, its answer's head made): a route that does not read
 * a body (a GET's, a method refused) answers as soon as the headers are read, into a response queued behind the
 * answers ahead when it was pipelined. requestBeingRead leaves it out: it has its answer, the refusal cannot be it.
 */
function answeredBeforeItsBody(handed: WeakMap<Socket, ServerResponse>, socket: Socket): boolean {
  const res = handed.get(socket);
  return res !== undefined && res.headersSent && !res.req.complete;
}

function parserRefusalBody(code: keyof typeof PARSER_REFUSALS): string {
  const { status, message } = PARSER_REFUSALS[code];
  return JSON.stringify({ error: STATUS_CODES[status], code, message, statusCode: status });
}

/**
 * An Expect other than 100-continue (RFC 9110 §10.1.1): node answered 417 with an empty body, the one error of
 * the server without a code. The body is not read, so the connection ends after the answer. Node asks before
 * the request reaches the server's handler, so neither access control nor a route sees it: the caller counts and
 * logs it (buildServer).
 */
function refuseExpectation(_req: IncomingMessage, res: ServerResponse): void {
  const body = parserRefusalBody("expectation-failed");
  res.writeHead(PARSER_REFUSALS["expectation-failed"].status, { ...JSON_TYPE, "Content-Length": Buffer.byteLength(body), "Cache-Control": "no-store", Connection: "close" });
  res.end(body);
}

/**
 * CONNECT asks for a tunnel, which this server never opens. node hands it to the server's "connect" listeners
 * and, with none, destroyed the socket without a word. 405 with the typed code and an empty Allow (the authority
 * it names is no resource here), then the connection ends once the answer is out. Whether it answered (not on a
 * connection already closed): like refuseExpectation's, its answer is counted and logged by the caller.
 */
function refuseConnect(_req: IncomingMessage, socket: Duplex): boolean {
  const body = METHOD_NOT_ALLOWED.body;
  if (!socket.writable) {
    socket.destroy();
    return false;
  }
  socket.end(`HTTP/1.1 405 ${STATUS_CODES[405]}\r\nAllow: \r\nContent-Length: ${Buffer.byteLength(body)}\r\n${JSON_TYPE_LINES}Cache-Control: no-store\r\nConnection: close\r\n\r\n${body}`, () => socket.destroy());
  return true;
}

/** The order methods are listed in an Allow header. */
const METHOD_ORDER = ["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"];

/**
 * The answer to a request that arrives while the server stops (app.close(): SIGTERM or the signal of serveHttp),
 * on a connection opened before: the connection closes after it, so the client goes elsewhere (another
 * instance, or this service once it is back) rather than keep a connection to a process that is going away.
 */
const STOPPING_BODY = JSON.stringify(apiErrorBody({ [STOPPING_ERROR.code]: STOPPING_ERROR }, STOPPING_ERROR.code));

export async function buildServer(
  ws: Workspace,
  opts: ServerOptions = {},
): Promise<{ app: FastifyInstance; metrics: ServerMetrics; access: VerifierAccess; ocsp?: OcspResponder }> {
  const clock = ws.clock;
  const prefix = opts.prefix ?? pathPrefix(ws.config.baseUrl);
  const crlMaxAge = opts.crlMaxAgeSeconds ?? 300;
  const certMaxAge = opts.certificateMaxAgeSeconds ?? 86_400;
  const maxConnections = opts.maxConnections ?? MAX_CONNECTIONS;
  if (!Number.isInteger(maxConnections) || maxConnections < 1) throw new JpkiError("ERR_USAGE", `maxConnections must be a whole number of at least 1, not ${maxConnections}`);
  const connectionStats: ConnectionStats = { open: 0, refused: 0 };
  // One bound on the store for every route that reads or writes it per request (the verifier API, the CRL index,
  // the overview, /metrics' CRL gauges, OCSP's status reads), and for the background reads that keep them
  // current (the registrations' re-reads, the OCSP poll and reload): a call past it marks the store stalled for all
  // of them (watchdog.ts). Reported once per stall (the routes do not report each store-unresponsive answer).
  // /healthz keeps its own bound (HEALTH_STORE_WAIT_MS): a probe must say "unresponsive", not be refused.
  const onStalled = opts.access?.onError
    ? (e: unknown) => opts.access!.onError!(e, "the store (the routes that read it answer 503 store-unresponsive, OCSP tryLater, until it answers)")
    : undefined;
  // A failed run of the disclosure log's indexer (Store.disclosureIndex): its JpkiError, our words and a SQLSTATE.
  // Said at the 1st, 2nd, 4th, 8th … failure of this server, not at each: a store that keeps failing retries every
  // quarter batch of records (≈ once a second at the API's rate), and a line each would bury the log; /metrics'
  // jpki_disclosure_index_failures_total counts every one.
  if (opts.access?.onError && ws.store.disclosureIndex) {
    const onError = opts.access.onError;
    let failures = 0;
    ws.store.disclosureIndex.onFailure = (e) => {
      failures++;
      if ((failures & (failures - 1)) !== 0) return;
      onError(e, `the disclosure log's per-resident index (failure ${failures} of this server; the next said at ${failures * 2}, /metrics counts each; retried later, until then residents' views read the records above its mark from the log itself)`);
    };
  }
  // While stalled it probes the store itself (Store.ping), so a stall ends with the outage on a quiet server too.
  const storeWatchdog = new StoreWatchdog({ ...(opts.storeWaitMs !== undefined ? { waitMs: opts.storeWaitMs } : {}), ...(opts.storeNow ? { now: opts.storeNow } : {}), ...(onStalled ? { onStalled } : {}), probe: () => ws.store.ping() });
  // which CRLs a retired generation no longer replaces (the index says so, /healthz and /metrics leave them out)
  const finishedCrls = new FinishedCrls(ws);
  const metrics = makeMetrics(ws, clock, opts.accessLog, connectionStats, storeWatchdog, finishedCrls);
  const log = opts.accessLog;
  // Who asked: a verifier id or "anonymous", never any part of a credential. Called as accessLine?.(…): with
  // no log, not even its arguments are computed.
  // The client address (behind trusted proxies, X-Forwarded-For's: client-address.ts) is worked out here and where a
  // refusal is counted, never on the way to an answer.
  const clientAddress = clientAddressOf(ws.config.trustedProxies);
  // `at`: the wall-clock time the answer's fetch record was counted at (access.record), when it was; `caller`: the
  // request's verifier as the caller read it already (access.callerOf), one read of the request's tag per answer
  // (a keyed load of a symbol that sees every request shape, megamorphic: ≈ 0.01 of node's end() per 304).
  // Every argument always passed: one call shape.
  const accessLine = log
    ? (req: IncomingMessage, status: number, ms: number, aborted: boolean, at: number | undefined, caller: VerifierRecord | undefined) =>
        log.record(at ?? Date.now(), req.method ?? "", req.url ?? "", status, ms, clientAddress(req), caller ? caller.id : "anonymous", aborted)
    : undefined;
  const counter = metrics.requestCounter;
  const tls = opts.tls;
  const verifierCa = tls ? await ws.store.getVerifierCa() : undefined;
  // Over HTTPS a client certificate is asked for, not required (tokens work too): one that does not chain to
  // the verifier CA leaves the connection unauthorized, and access.ts refuses it.
  const tlsOptions = (ca: Buffer | undefined) => ({ cert: tls!.cert, key: tls!.key, requestCert: true, rejectUnauthorized: false, ...(ca ? { ca: toPem(ca, "CERTIFICATE") } : {}) });
  let httpsServer: ReturnType<typeof createHttpsServer> | undefined;
  const refusedCounters = new Map<string, (status: number) => void>();
  // A request refused before any route (access control, or the stop): counted under its route and logged. `at`: its
  // fetch record's time (access.record's answer) when it was recorded for its verifier, which its line then carries.
  const countRefused = (req: IncomingMessage, scope: RouteScope, status: number, startedAt: number, at: number | undefined) => {
    const route = ROUTE_OF_SCOPE[scope];
    let count = refusedCounters.get(route);
    if (!count) refusedCounters.set(route, (count = counter(route)));
    count(status);
    accessLine?.(req, status, performance.now() - startedAt, false, at, access.callerOf(req));
  };
  // Requests of fastify routes already logged (answered, cut, refused by the parser, or abandoned): each gets one line.
  const gone = new WeakSet<IncomingMessage>();
  // node reports a refusal of its parser (clientErrorHandler) with the socket alone. When the request it refuses is one
  // whose headers were read, admitted and routed, and whose body had not ended (the 408 of a body that never ended,
  // the 413 of its chunk extensions), it is that request's answer: counted under its route, logged with its method,
  // target, client address and verifier, and recorded for the verifier, as any other answer of that route (it had
  // been logged under "other" without its verifier, a stalled upload hidden among malformed requests). Otherwise no
  // request is known: counted and logged as one with no method and no target ("": either may be what did not parse,
  // and what was read of them is not repeated), from the peer address (no header at hand, so no X-Forwarded-For to
  // honour), by no verifier, under the route "other". Which refused bucket it took from is parserRefusalWait's.
  const countParserRefusal = (socket: Socket, req: IncomingMessage | undefined, status: number, startedAt: number) => {
    if (!req) return countRefused({ method: "", url: "", headers: {}, socket } as unknown as IncomingMessage, "other", status, startedAt, undefined);
    // its answer: not again as abandoned when the connection, destroyed after it, aborts the request (onRequestAbort)
    gone.add(req);
    countRefused(req, access.scopeOfRequest(req), status, startedAt, access.record(req, status));
  };
  // Per connection, the response of the last request handed to the handler (requestBeingRead): one map write per request.
  const handed = new WeakMap<Socket, ServerResponse>();
  const beingRead = (socket: Socket) => requestBeingRead(handed, socket);
  // The refused bucket a parser refusal takes from (429 once it is empty): the admitted request's client address (its
  // headers were read, so behind a trusted proxy X-Forwarded-For's), else the peer's, and none when the peer is a
  // trusted proxy: that refusal is no known client's, and charged to the proxy it would get every client behind it
  // 429 (access.ts says more).
  const parserRefusalWait = (socket: Socket): number => {
    const req = beingRead(socket);
    return req ? access.refuseAdmitted(req) : access.refuseUnparsed(socket.remoteAddress ?? "");
  };
  const access = new VerifierAccess(ws.store, {
    ...opts.access,
    prefix,
    openRoutes: ws.config.openRoutes,
    rateLimit: ws.config.verifierRateLimit,
    refusedRateLimit: ws.config.refusedRateLimit,
    clientAddress,
    trustedProxy: trustedProxyOf(ws.config.trustedProxies),
    onRefused: (req, status, startedAt) => countRefused(req, access.scopeOfRequest(req), status, startedAt, undefined),
    watchdog: storeWatchdog,
    // A verifier CA made after the start: trusted for client certificates from the next handshake on.
    ...(tls && !verifierCa ? { onVerifierCa: (der: Buffer) => httpsServer?.setSecureContext(tlsOptions(der)) } : {}),
  });
  await access.start();
  // How old the registrations are: past maxListAgeMs the routes that need a credential answer 503 (access.ts).
  new Gauge({
    name: "jpki_verifier_list_age_seconds",
    help: "seconds since the list of registered verifiers was last read from the store; past jpki_verifier_list_max_age_seconds, routes that need a credential answer 503 store-unresponsive",
    registers: [metrics.registry],
    collect() {
      this.set(access.listAgeMs / 1000);
    },
  });
  new Gauge({
    name: "jpki_verifier_list_max_age_seconds",
    help: "the oldest the list of registered verifiers may be before credentials are no longer checked against it (--verifier-list-max-age)",
    registers: [metrics.registry],
    collect() {
      this.set(access.maxListAgeMs / 1000);
    },
  });
  // Where the verifier fetch records are (access.ts fetchRecords). Dropped and maybe-written records were seen only
  // in the stop's last line: an operator learned the store had not taken them when the server was stopped, if ever.
  new Gauge({
    name: "jpki_verifier_fetch_records",
    help: "verifier fetch records (one per verifier, path, status and flush interval) since the start, by where they are: recorded (written to the store), dropped (the oldest, the queue full while the store did not take them), unknown (in writes past the store bound or whose connection was lost after sending: they may have been written, and are not sent again; one that lands after all moves to recorded), queued (in memory, not written yet)",
    labelNames: ["state"] as const,
    registers: [metrics.registry],
    collect() {
      const r = access.fetchRecords;
      for (const state of ["recorded", "dropped", "unknown", "queued"] as const) this.set({ state }, r[state]);
    },
  });
  // The answers given on bare node:http (published files, OCSP GETs, plain POST /v1/validate): counted by route
  // and status, recorded for the caller's rate, and logged, as fastify routes' onResponse does for theirs.
  const rawOnResponse = (route: string) => {
    const count = counter(route);
    return (req: IncomingMessage, status: number, startedAt: number, aborted = false) => {
      count(status, aborted);
      const caller = access.callerOf(req);
      const at = access.recordFor(req, caller, status);
      accessLine?.(req, status, performance.now() - startedAt, aborted, at, caller);
    };
  };
  const idleMs = { ...CONNECTION_TIMEOUTS, ...opts.timeouts }.idleMs;
  const published = publishedRoute({
    paths: ws.paths,
    files: new PublishedFiles(),
    clock,
    prefix,
    crlMaxAgeSeconds: crlMaxAge,
    certificateMaxAgeSeconds: certMaxAge,
    isOpen: (scope) => access.isOpen(scope),
    idleMs,
    onResponse: rawOnResponse("published"),
  });
  let ocsp: OcspResponder | undefined;
  const ocspGet = ocspGetRoute({
    prefix,
    responder: () => ocsp,
    clock,
    maxAgeSeconds: opts.ocsp?.maxAgeSeconds ?? 300,
    open: access.isOpen("ocsp"),
    count: metrics.countOcspAnswer,
    onResponse: rawOnResponse("ocsp"),
  });
  // POST /v1/validate's plain requests, on bare node:http too (validate-route.ts): set once the service exists.
  let validateFast: ((req: IncomingMessage, res: ServerResponse) => boolean) | undefined;
  // From the start of a stop (preClose, below) every request is answered 503 "stopping" with Connection: close,
  // before any route. node's server.close() only ends idle connections: a keep-alive client that kept sending
  // was answered all through the stop's grace by the routes on bare node:http (published files, OCSP GETs,
  // POST /v1/validate) — ten thousand validations in 5 s under load — and then cut mid-request.
  let stopping = false;
  const refuseStopping = (req: IncomingMessage, res: ServerResponse): void => {
    const startedAt = performance.now();
    res.writeHead(STOPPING_ERROR.status, { ...JSON_TYPE, "Cache-Control": "no-store", "Content-Length": Buffer.byteLength(STOPPING_BODY), Connection: "close" });
    res.end(req.method === "HEAD" ? undefined : STOPPING_BODY);
    countRefused(req, access.scopeOfTarget(req), STOPPING_ERROR.status, startedAt, undefined);
  };
  // Two Host lines: RFC 9112 §3.2 says a server MUST answer 400. node keeps the first and drops the other, so a
  // proxy in front that reads the other one routes or logs the request under another name than ours (found by a
  // helper: 200). Refused before access control, as node's parser refuses a malformed request (its code and
  // body), and the connection closed: the client sent something a proxy and we may have read differently.
  const repeatedHostBody = parserRefusalBody("bad-request");
  const refuseRepeatedHost = (req: IncomingMessage, res: ServerResponse): void => {
    const startedAt = performance.now();
    const status = PARSER_REFUSALS["bad-request"].status;
    res.writeHead(status, { ...JSON_TYPE, "Cache-Control": "no-store", "Content-Length": Buffer.byteLength(repeatedHostBody), Connection: "close" });
    res.end(req.method === "HEAD" ? undefined : repeatedHostBody);
    countRefused(req, access.scopeOfTarget(req), status, startedAt, undefined);
  };
  // The connections open now: a stop ends each once its answer in flight is given (preClose, below).
  const connections = new Set<Socket>();
  // The methods each fastify route takes, by path (filled by the onRoute hook below): a request for a path
  // fastify serves, with a method it does not take there, is answered 405 before fastify reads its body (a PUT
  // with a JSON body that is not JSON got 400 body-not-json, not what was wrong) — fastify's router answered it
  // 404 "no such route", as if the path were not there.
  const allowByPath = new Map<string, string>();
  const allowByPattern: Array<{ readonly re: RegExp; readonly allow: string }> = [];
  const refuseMethod = (req: IncomingMessage, res: ServerResponse): boolean => {
    const path = routedPath(req.url ?? "");
    if (path === undefined) return req.url === "*" && answerAsterisk(req, res);
    let allow = allowByPath.get(path);
    if (allow === undefined) for (const p of allowByPattern) if (p.re.test(path)) allow = p.allow;
    if (allow === undefined || allow.split(", ").includes(req.method ?? "")) return false;
    const startedAt = performance.now();
    res.writeHead(METHOD_NOT_ALLOWED.status, { Allow: allow, ...JSON_TYPE, "Cache-Control": "no-store", "Content-Length": Buffer.byteLength(METHOD_NOT_ALLOWED.body) });
    res.end(METHOD_NOT_ALLOWED.body);
    countRefused(req, access.scopeOfRequest(req), METHOD_NOT_ALLOWED.status, startedAt, access.record(req, METHOD_NOT_ALLOWED.status));
    return true;
  };
  // The asterisk-form target (RFC 9112 §3.2.4) names the server as a whole, and only OPTIONS may use it; fastify's
  // router took "*" for a path, and GET * with a credential was answered the status page. Any other method with it
  // makes an invalid request-line, which RFC 9112 §3 answers 400: the code and body node's parser gives a request
  // line it cannot read (PARSER_REFUSALS "bad-request"), though the connection stays open (its framing is sound).
  // OPTIONS * is the server-wide "ping" RFC 9110 §9.3.7 describes: 204 with Allow, the methods some route of this
  // server takes and OPTIONS (for * alone: every route answers it 405). The credential is checked before, as on
  // every target no openRoutes entry names. Reached only by targets that are not a path (refuseMethod), so the
  // routes' requests pay nothing for it.
  const asteriskBody = parserRefusalBody("bad-request");
  let serverAllow: string | undefined;
  const answerAsterisk = (req: IncomingMessage, res: ServerResponse): true => {
    const startedAt = performance.now();
    let status: number;
    if (req.method === "OPTIONS") {
      if (serverAllow === undefined) {
        // Every route is registered once the server listens, so this is computed at the first OPTIONS * and kept.
        const all = new Set(["OPTIONS", ...[...allowByPath.values(), ...allowByPattern.map((p) => p.allow)].flatMap((a) => a.split(", "))]);
        serverAllow = METHOD_ORDER.filter((m) => all.has(m)).join(", ");
      }
      res.writeHead((status = 204), { Allow: serverAllow });
      res.end();
    } else {
      status = PARSER_REFUSALS["bad-request"].status;
      res.writeHead(status, { ...JSON_TYPE, "Cache-Control": "no-store", "Content-Length": Buffer.byteLength(asteriskBody) });
      res.end(req.method === "HEAD" ? undefined : asteriskBody);
    }
    countRefused(req, access.scopeOfRequest(req), status, startedAt, access.record(req, status));
    return true;
  };
  // A body in a content coding (gzip, deflate, br…) goes to no route: each read it as plain. Refused 415 before
  // fastify reads it, after the routes on bare node:http (which take no coded body: published files and OCSP GETs
  // read none, validateFast leaves a Content-Encoding to fastify), so their requests pay nothing for it. OCSP POSTs
  // are refused in their own scope, with an OCSP answer (ocsp.ts).
  const codingBody = JSON.stringify({ error: "unsupported_media_type", code: UNSUPPORTED_CONTENT_ENCODING.code, message: UNSUPPORTED_CONTENT_ENCODING.message });
  const refuseCoding = (req: IncomingMessage, res: ServerResponse): boolean => {
    const coding = req.headers["content-encoding"];
    if (coding === undefined || noContentCoding(coding) || !hasBody(req) || access.scopeOfRequest(req) === "ocsp") return false;
    const startedAt = performance.now();
    res.writeHead(UNSUPPORTED_CONTENT_ENCODING.status, {
      "Accept-Encoding": "identity",
      ...JSON_TYPE,
      "Cache-Control": "no-store",
      "Content-Length": Buffer.byteLength(codingBody),
    });
    res.end(codingBody);
    countRefused(req, access.scopeOfRequest(req), UNSUPPORTED_CONTENT_ENCODING.status, startedAt, access.record(req, UNSUPPORTED_CONTENT_ENCODING.status));
    return true;
  };
  const app = Fastify({
    // Published files and OCSP GETs are answered on bare node:http before fastify routes anything (published-route.ts).
    serverFactory: (handler) => {
      const route = (req: IncomingMessage, res: ServerResponse) => {
        if (!published(req, res) && !ocspGet(req, res) && !validateFast?.(req, res) && !refuseMethod(req, res) && !refuseCoding(req, res)) handler(req, res);
      };
      const h = (req: IncomingMessage, res: ServerResponse) => {
        handed.set(req.socket, res);
        if (stopping) return refuseStopping(req, res);
        // one walk of the header names for both repeats (access.ts repeatedFields)
        const repeated = repeatedFields(req.rawHeaders);
        if (repeated & REPEATED_HOST) return refuseRepeatedHost(req, res);
        if (access.admit(req, res, repeated)) route(req, res);
      };
      // Expect: 100-continue. node sent 100 Continue before any check, inviting the body of a caller about to be
      // refused 401. Now only an admitted request is invited; a refused one gets its answer instead, and node ends
      // the connection after it (the body it did not ask for is not awaited).
      const checkContinue = (req: IncomingMessage, res: ServerResponse) => {
        handed.set(req.socket, res);
        if (stopping) return refuseStopping(req, res);
        const repeated = repeatedFields(req.rawHeaders);
        if (repeated & REPEATED_HOST) return refuseRepeatedHost(req, res);
        if (!access.admit(req, res, repeated)) return;
        // A coded body is refused before it is invited too (no fast path takes one: refuseCoding says why).
        if (refuseCoding(req, res)) return;
        res.writeContinue();
        route(req, res);
      };
      const t = { ...CONNECTION_TIMEOUTS, ...opts.timeouts };
      // node checks the header and request bounds every connectionsCheckingInterval (default 30 s, which would
      // triple a 10 s bound); once a second costs a walk over the connections receiving a request.
      const limits = { headersTimeout: t.headersMs, requestTimeout: t.requestMs, connectionsCheckingInterval: Math.min(1000, t.headersMs) };
      // Over TLS the idle bound starts only once the handshake is done: before that, tls's handshakeTimeout
      // (120 s by default) was all that ended a connection that never sent a ClientHello.
      const server = tls
        ? (httpsServer = createHttpsServer({ ...tlsOptions(verifierCa?.certificateDer), ...limits, IncomingMessage: AdmittedRequest, handshakeTimeout: t.headersMs }, h))
        : createHttpServer({ ...limits, IncomingMessage: AdmittedRequest }, h);
      // A client may half-close once its request is sent (shutdown(SHUT_WR), as `nc -N` and some proxies do).
      // By default node then ends the connection at once, and an answer still being made — a validation, already
      // in the disclosure log — was never written. With this (node's http server reads it at the client's FIN)
      // the answer in progress is written and marked the last: the connection ends after it.
      (server as { httpAllowHalfOpen?: boolean }).httpAllowHalfOpen = true;
      // Answered outside the request path (node's "connect" and "checkExpectation" events), so counted and logged
      // here as the refusals before any route are: under the scope their target names, with no verifier (access
      // control never ran: a credential they carry is neither checked nor written).
      server.on("connect", (req: IncomingMessage, socket: Duplex) => {
        const startedAt = performance.now();
        if (refuseConnect(req, socket)) countRefused(req, access.scopeOfTarget(req), METHOD_NOT_ALLOWED.status, startedAt, undefined);
      });
      server.on("checkExpectation", (req: IncomingMessage, res: ServerResponse) => {
        const startedAt = performance.now();
        refuseExpectation(req, res);
        countRefused(req, access.scopeOfTarget(req), PARSER_REFUSALS["expectation-failed"].status, startedAt, undefined);
      });
      server.on("checkContinue", checkContinue);
      // Over TLS the HTTP parser reads the TLS socket, not the TCP one the "connection" event gives.
      server.on(tls ? "secureConnection" : "connection", (s: Socket) => {
        // The peer's address, read now: node asks the kernel when it is first read and keeps the answer, and a
        // connection the client reset answers nothing (ENOTCONN, or no handle once destroyed). An answer cut by a
        // reset, logged once the connection is gone, was logged with the client address "" (and, behind a trusted
        // proxy, the peer no longer recognised as one, without its X-Forwarded-For client). One system call per
        // connection, none per request.
        void s.remoteAddress;
        connections.add(s);
        s.once("close", () => connections.delete(s));
      });
      // The idle bound is set on each answer that can stall on the client, a body streamed from disk
      // (published-route.ts) or any fastify route's (the onSend hook below), not as server.timeout: that re-arms a
      // timer on every request of every keep-alive connection, about 2 % of a 304 measured here. Every other wait
      // is bounded by node: headersMs from the connection (or the end of the previous answer) to a request's last
      // header, requestMs to its last byte, the keep-alive timeout after each answer.
      capConnections(server, { max: maxConnections, tls: Boolean(tls), lingerMs: Math.min(1000, t.headersMs), stats: connectionStats });
      return server;
    },
    logger: false,
    // Paths are matched against fixed shapes below; anything longer is not ours.
    routerOptions: { maxParamLength: 200 },
    // HEAD of every GET route (RFC 9110 §9.3.2): without, HEAD /healthz or /openapi.json was a 404 "no such route".
    exposeHeadRoutes: true,
    // fastify's default, set here so that the answer past it names the number it enforces
    bodyLimit: DEFAULT_BODY_LIMIT,
    return503OnClosing: true,
    clientErrorHandler: clientErrorHandler({
      refusalWait: parserRefusalWait,
      requestBeingRead: beingRead,
      answeredBeforeItsBody: (socket) => answeredBeforeItsBody(handed, socket),
      onRefused: countParserRefusal,
    }),
  });
  app.addHook("onRoute", (r) => {
    const methods = new Set(Array.isArray(r.method) ? r.method : [r.method]);
    if (methods.has("GET")) methods.add("HEAD"); // exposeHeadRoutes
    // The OCSP GETs under /ocsp/<ca>/ are answered on bare node:http (ocsp.ts), beside this POST route.
    if (r.url === `${prefix}/ocsp/:ca` || r.url === `${prefix}/ocsp/:ca/`) methods.add("GET").add("HEAD");
    if (r.url.includes(":") || r.url.includes("*")) {
      const re = new RegExp(`^${r.url.replace(/[.+?^${}()|[\]\\]/g, "\\$&").replace(/:[^/]+/g, "[^/]+").replace(/\*/g, ".*")}$`);
      const known = allowByPattern.findIndex((p) => p.re.source === re.source);
      const all = new Set([...(known >= 0 ? allowByPattern[known]!.allow.split(", ") : []), ...methods]);
      const entry = { re, allow: METHOD_ORDER.filter((m) => all.has(m)).join(", ") };
      if (known >= 0) allowByPattern[known] = entry;
      else allowByPattern.push(entry);
      return;
    }
    const all = new Set([...(allowByPath.get(r.url)?.split(", ") ?? []), ...methods]);
    allowByPath.set(r.url, METHOD_ORDER.filter((m) => all.has(m)).join(", "));
  });
  // JSON bodies (the validation, liveness and signed-file routes): JSON.parse, after a linear check of the
  // nesting. JSON.parse spends ~1 µs a level, so a 2 MiB body of brackets held the one thread ~1 s per request;
  // no body we take nests deeper than 3.
  // A `__proto__` (or `constructor.prototype`) key is valid JSON, and JSON.parse makes it an own data property of
  // its object — it never calls the __proto__ setter, so nothing's prototype changes. Every route then refuses it
  // as any key it does not know (field-unknown; an item's, item-invalid), and none copies a body into another
  // object. fastify's parser refused such bodies as not JSON (body-not-json), which they are; it still words the
  // refusal of text that is not JSON, as before.
  const json = app.getDefaultJsonParser("ignore", "ignore");
  app.removeContentTypeParser("application/json");
  const parseJson = (req: IncomingMessage, text: string, done: (err: Error | null, value?: unknown) => void): void => {
    if (jsonNestsDeeper(text, MAX_JSON_DEPTH)) return done(Object.assign(new Error(`the body nests deeper than ${MAX_JSON_DEPTH} levels`), { statusCode: 400, code: "body-too-deep" }), undefined);
    let parsed: unknown;
    try {
      parsed = JSON.parse(text);
    } catch {
      json(req as never, text, done as never); // fastify's own refusal of text that is not JSON (an empty body too)
      return;
    }
    done(null, parsed);
  };
  // fastify takes application/json whatever its parameters, and read a body sent as latin1 (or UTF-16) as UTF-8.
  const notUtf8 = () => Object.assign(new Error("the body's charset is not UTF-8"), { statusCode: 415, code: "charset-not-utf-8" });
  app.addContentTypeParser("application/json", { parseAs: "string" }, (req, body, done) =>
    charsetIsUtf8(req.headers["content-type"] ?? "") ? parseJson(req.raw, body as string, done) : done(notUtf8(), undefined),
  );
  // No route takes text/plain, but fastify parses it by default: a JSON object sent as text/plain (what fetch
  // sends for a string body without a Content-Type) reached the routes as a string and was answered
  // body-invalid, "the body must be a JSON object". Without the parser fastify refuses it 415, which the
  // routes answer unsupported-media-type, "send Content-Type: application/json": what is wrong.
  app.removeContentTypeParser("text/plain");
  // Routes without their own error handler (the CRL index, /metrics, the page): fastify's default would send the
  // error's message, and a store error's message carries the driver's (a database host, user, file path). The
  // code and a fixed message go out; the error goes to onError. A client's own error (4xx) keeps its status.
  app.setErrorHandler((err: Error & { statusCode?: number; code?: string }, _req, reply) => {
    const status = err.statusCode !== undefined && err.statusCode >= 400 && err.statusCode < 500 ? err.statusCode : undefined;
    // fastify's refusals of a body (too large, wrong media type, not JSON): the API's typed codes, as on the routes
    // with a table of their own.
    const refused = bodyRefusalCode(err);
    if (refused) return sendApiError(reply, DEFAULT_BODY_ERRORS, refused);
    // Its other refusals: their fixed messages, as fastify sends them.
    // Every error body carries a code (issue 13 point 3): fastify's own, or the status's word for an error without one.
    if (status !== undefined) return reply.code(status).send({ statusCode: status, code: err.code ?? `http-${status}`, error: STATUS_CODES[status], message: err.message });
    // A store that did not answer within the bound (the CRL index, /metrics): reported once per stall by the
    // watchdog, answered as the API answers it.
    if (storeErrorCode(err) === "store-unresponsive") return sendApiError(reply, { "store-unresponsive": STORE_UNRESPONSIVE }, "store-unresponsive");
    opts.access?.onError?.(err, "answering a request (no answer given)");
    const unavailable = (err.code ?? "").startsWith("ERR_STORE") || err.code === "ERR_WORKSPACE_LOCKED";
    return reply
      .code(unavailable ? 503 : 500)
      .header("Cache-Control", "no-store")
      .send(unavailable ? { error: "unavailable", code: "store-unavailable", message: "the store did not answer: try again" } : { error: "internal_error", code: "internal", message: "the request failed unexpectedly" });
  });
  // No such route: fastify's default body has no `code` (and echoes the method and path); every error answer of
  // the server carries one (issue 13 point 3).
  app.setNotFoundHandler((_req, reply) => reply.code(404).header("Cache-Control", "no-store").send({ error: "not_found", code: "not-found", message: "no such route: the routes are listed at /openapi.json" }));
  // A fastify answer can stall on its client too (a large /metrics or CRL index the client stops reading): it held
  // the connection and the unsent body for good. Bounded from when it is written, as published-route.ts bounds its
  // bodies; node replaces this with its keep-alive timeout once the answer finishes.
  // And nosniff on each (api-errors.ts JSON_TYPE says why; the page sets its own).
  app.addHook("onSend", (req, reply, payload, done) => {
    reply.header("X-Content-Type-Options", "nosniff");
    if (idleMs) req.raw.socket.setTimeout?.(idleMs); // app.inject's socket has none
    done(null, payload);
  });
  // Each fastify route counts and logs its own responses: a route-level hook knows its name, where reading
  // request.routeOptions in a global hook builds an object per request.
  const onResponse = (route: string) => {
    const count = counter(route);
    return (req: FastifyRequest, reply: FastifyReply, done: () => void) => {
      // fastify calls this on the response's "finish", which node emits too when the connection is destroyed
      // with the body unsent (the client gone, the idle bound): then it is an answer cut short, as published-route.ts's.
      const aborted = req.raw.socket.destroyed;
      // Once: a request whose client left is logged here or by the onRequestAbort hook below, whichever comes first.
      if (gone.has(req.raw)) return done();
      gone.add(req.raw);
      count(reply.statusCode, aborted);
      const caller = access.callerOf(req.raw);
      // the line carries its fetch record's time, as the bare routes' (rawOnResponse): it took Date.now(), another
      // reading of another clock, so one request was logged at two times
      const at = access.recordFor(req.raw, caller, reply.statusCode);
      accessLine?.(req.raw, reply.statusCode, reply.elapsedTime, aborted, at, caller);
      done();
    };
  };

  // A request whose client went away before a fastify route answered it (a reset or close while a validation or a
  // store read was under way, or mid-body) never reaches onResponse: node emits no "finish" for an answer written to
  // a closed connection, and fastify none when it no longer answers. It left no line and no count: a client could
  // make the server validate or read the store without end and appear nowhere. Logged and counted 499 (nginx's
  // "client closed request": no answer was given), with no duration (nothing was answered); a moment later, so that
  // a cut answer that does reach onResponse keeps its own status.
  app.addHook("onRequestAbort", (req, done) => {
    setImmediate(() => {
      if (gone.has(req.raw)) return;
      gone.add(req.raw);
      countRefused(req.raw, access.scopeOfRequest(req.raw), CLIENT_CLOSED_REQUEST, NaN, undefined);
    });
    done();
  });

  app.route({
    method: ["GET", "HEAD"],
    url: `${prefix}/crl/index.json`,
    onResponse: onResponse("crl-index"),
    handler: async (_req, reply) => {
      // Every scope: each CA's full CRL, then its delta CRL, its municipality partitions and its ARL (crl/scope.ts).
      // Bounded (watchdog.ts): past it the error handler answers 503 store-unresponsive with Retry-After.
      const { status, more: ended } = await crlIndexRecords(ws.store, storeWatchdog, (status) => {
        const t = clock.now().getTime();
        return finishedCrls.ended(new Set(status.filter((s) => s.latest && s.latest.nextUpdate.getTime() <= t).map((s) => s.caId)));
      });
      const crls = [];
      for (const s of status) {
        const l = s.latest;
        if (!l || !l.path) continue;
        const scope = "scope" in s ? s.scope : "";
        const kind = scope === "" ? "full" : scope === "arl" ? "arl" : scope === "delta" ? "delta" : "partition";
        let size: number | undefined;
        try {
          size = (await stat(join(ws.paths.root, l.path))).size;
        } catch {
          size = undefined;
        }
        crls.push({
          scope: kind,
          // caId, as the rest of the HTTP API (/v1/status items) and 'crl generate --json' name a CA. `ca` is the
          // same value under its first name, kept for the clients that read it: deprecated, never removed silently.
          caId: s.caId,
          ca: s.caId,
          ...(kind === "partition" ? { municipality: scope } : {}),
          url: `${prefix}${kind === "full" ? `/crl/${s.caId}.crl` : kind === "delta" ? `/crl/${s.caId}-delta.crl` : kind === "arl" ? `/arl/${s.caId}.crl` : `/crl/${s.caId}/${scope}.crl`}`,
          number: l.number.toString(),
          ...(l.baseNumber !== undefined ? { baseNumber: l.baseNumber.toString() } : {}),
          thisUpdate: l.thisUpdate.toISOString(),
          nextUpdate: l.nextUpdate.toISOString(),
          entries: l.entries,
          ...(size !== undefined ? { size } : {}),
          ...(l.sha256 ? { sha256: l.sha256 } : {}),
          // past its nextUpdate, and the last of its scope: a retired generation that publishes it no more (crl/finished.ts)
          ...(l.nextUpdate.getTime() <= clock.now().getTime() && ended(s.caId, scope, l) ? { ended: true } : {}),
        });
      }
      return reply.header("Cache-Control", "no-cache").send({ generatedAt: clock.now().toISOString(), crls });
    },
  });

  // One store read at a time for all probes: while the store hangs, probes share the read in flight instead of
  // each queueing one more behind it.
  let healthRead: Promise<[Awaited<ReturnType<typeof everyCrl>>, EndedCrls]> | undefined;
  const healthWaitMs = opts.healthStoreWaitMs ?? HEALTH_STORE_WAIT_MS;
  app.get(`${prefix}/healthz`, { onResponse: onResponse("healthz") }, async (_req, reply) => {
    // The registrations' age in every answer; past its bound the server refuses credentials (503), so it is unhealthy.
    const verifierList = { ageSeconds: Math.round(access.listAgeMs / 100) / 10, maxAgeSeconds: access.maxListAgeMs / 1000 };
    let crls;
    let ended: EndedCrls;
    let timer: NodeJS.Timeout | undefined;
    try {
      const read = (healthRead ??= everyCrl(ws)
        .then(async (all) => {
          const t = clock.now().getTime();
          const expired = new Set(all.filter((s) => !s.latest || s.latest.nextUpdate.getTime() <= t).map((s) => s.caId));
          return [all, await finishedCrls.ended(expired)] as [typeof all, EndedCrls];
        })
        .finally(() => (healthRead = undefined)));
      const waited = new Promise<"unresponsive">((r) => (timer = setTimeout(() => r("unresponsive"), healthWaitMs)));
      const got = await Promise.race([read, waited]);
      if (got === "unresponsive") {
        read.catch(() => undefined); // its failure, when it comes, is no one's to report
        return reply.code(503).header("Cache-Control", "no-store").send({ status: "unavailable", store: "unresponsive", waitedMs: healthWaitMs, verifierList });
      }
      [crls, ended] = got;
    } catch (e) {
      return reply.code(503).send({ status: "unavailable", store: "unreachable", error: (e as { code?: string }).code ?? "error", verifierList });
    } finally {
      clearTimeout(timer);
    }
    // Every CRL the certificates point to must be fresh: a full CRL is named by its CA ("13-sig"), a partition
    // or ARL by CA and scope ("13-sig/131016", "13-sig/arl"). None published yet counts as stale.
    const now = clock.now().getTime();
    const name = (s: (typeof crls)[number]) => (s.scope === "full" ? s.caId : `${s.caId}/${s.scope}`);
    // A retired generation's CRL that will not be replaced (crl/finished.ts) expires by design: not stale.
    const storeScope = (s: (typeof crls)[number]) => (s.scope === "full" ? FULL_SCOPE : s.scope === "arl" ? ARL_SCOPE : s.scope);
    const stale = crls.filter((s) => (!s.latest || s.latest.nextUpdate.getTime() <= now) && !ended(s.caId, storeScope(s), s.latest)).map(name);
    // A fresh record is not a CRL served: its file gone from the workspace (a restore, a hand, a full disk's
    // cleanup) is answered 404 to every verifier. Only that a file is there is checked (a stat each); whether it
    // is the recorded CRL is the overview's deeper check (fullCrlProblem), too costly for a probe.
    const missing: string[] = [];
    await Promise.all(
      crls.map(async (s) => {
        if (!s.latest?.path) return;
        try {
          if (!(await stat(join(ws.paths.root, s.latest.path))).isFile()) missing.push(name(s));
        } catch {
          missing.push(name(s));
        }
      }),
    );
    missing.sort();
    const cas = new Set(crls.map((s) => s.caId)).size;
    const status = stale.length ? "stale" : missing.length ? "missing" : access.listStale ? "verifier-list-stale" : "ok";
    // The store answered this probe, but the watchdog may refuse the routes' calls: stalled (a call past the bound
    // has not settled: every kind refused but one probe per bound, until a call answers in time) or holding kinds
    // it does not answer in time (a lock on one table). The probe said "ok" of a store whose routes all answered 503
    // store-unresponsive for as long as a stall lasted (a bound at least; while the probes hang too, until they
    // answer). Said here, in the JSON, the worse first; the status code stays the store's answer and the CRLs' (this
    // read answered, and a load balancer taking the server out would refuse the routes the watchdog lets through).
    const held = storeWatchdog.heldKinds;
    const watched = storeWatchdog.stalled ? "stalled" : held.length ? "degraded" : "ok";
    return reply
      .code(status === "ok" ? 200 : 503)
      .header("Cache-Control", "no-store")
      .send({ status, store: watched, held, cas, crls: crls.length, stale, missing, verifierList });
  });

  app.get(`${prefix}/metrics`, { onResponse: onResponse("metrics") }, async (_req, reply) => {
    const body = await metrics.registry.metrics();
    return reply.header("Cache-Control", "no-store").type(metrics.registry.contentType).send(body);
  });

  // the liveness checks in writes whose outcome is not known (said at the stop)
  const livenessWrites = new UnknownWrites();
  // The engine on a thread of its own (verifier/engine-thread.ts): the serving thread keeps the HTTP and the store.
  const validation = new VerifierValidationService(ws, { engineThread: true, watchdog: storeWatchdog, ...(opts.access?.onError ? { onError: opts.access.onError } : {}), ...opts.validation });
  // The disclosure log's and the liveness checks' writes whose outcome is not known (store/write-outcome.ts) were said
  // only in the stop's last lines: an operator learned that a PostgreSQL server may hold records of answers given
  // 503 when the server was stopped, if ever. The stop still says them; this is the running count.
  new Gauge({
    name: "jpki_unknown_write_records",
    help: "records in store writes whose outcome is not known, by writer (disclosures: the disclosure log's records of POST /v1/validate and /v1/verify-signature; liveness-checks: POST /v1/status's checks) and state: abandoned (in writes past the store bound, not settled yet or settled by a connection closed under them), lost (in writes whose connection was lost after they were sent); their verifiers were answered 503, and on PostgreSQL they may have been written all the same; an abandoned write that settles known leaves the count",
    labelNames: ["writer", "state"] as const,
    registers: [metrics.registry],
    collect() {
      for (const [writer, counts] of [
        ["disclosures", validation.disclosureLog.unknown],
        ["liveness-checks", livenessWrites.counts],
      ] as const) {
        this.set({ writer, state: "abandoned" }, counts.abandoned);
        this.set({ writer, state: "lost" }, counts.lost);
      }
    },
  });
  await registerValidate(app, { prefix, service: validation, access, onResponse: onResponse("validate"), ...(opts.access?.onError ? { onError: opts.access.onError } : {}) });
  validateFast = validateFastPath({
    prefix,
    service: validation,
    access,
    parseJson,
    onResponse: rawOnResponse("validate"),
    // not when node's parser refused it first (the 408 of a body that never ended: countParserRefusal logged it)
    onAbandoned: (req) => {
      if (gone.has(req)) return;
      gone.add(req);
      countRefused(req, "validate", CLIENT_CLOSED_REQUEST, NaN, undefined);
    },
    ...(opts.access?.onError ? { onError: opts.access.onError } : {}),
  });
  await registerStatus(app, { prefix, ws, access, watchdog: storeWatchdog, unknownWrites: livenessWrites, onResponse: onResponse("status"), ...(opts.access?.onError ? { onError: opts.access.onError } : {}) });
  await registerVerifySignature(app, { prefix, service: validation, access, onResponse: onResponse("verify-signature"), ...(opts.access?.onError ? { onError: opts.access.onError } : {}) });
  const openapi = JSON.stringify(validationApiDocument(prefix));
  app.get(`${prefix}/openapi.json`, { onResponse: onResponse("openapi") }, async (_req, reply) => reply.header("Cache-Control", "no-cache").type("application/json; charset=utf-8").send(openapi));

  registerOverview(app, { prefix, ws, access, watchdog: storeWatchdog, finishedCrls, onResponse: onResponse("overview"), ...(opts.overviewCacheMs !== undefined ? { cacheMs: opts.overviewCacheMs } : {}), ...(opts.access?.onError ? { onError: opts.access.onError } : {}) });
  registerPage(app, { prefix, assets: await loadPage(), onResponse: onResponse("page") });

  // The stop begins (before fastify ends the idle connections and closes the listening socket): from now on
  // requests are refused (refuseStopping), and each answer still in flight is the last on its connection —
  // Connection: close when its headers are still to be written, else the connection ends once it is sent. A
  // keep-alive client then learns that the connection is going instead of finding it cut when the grace ends.
  app.addHook("preClose", (done) => {
    stopping = true;
    for (const s of connections) {
      // node's answer being written on the connection (undocumented, but what it has kept there since 0.x); none
      // when the connection is idle, and node ends those itself.
      const res = (s as Socket & { _httpMessage?: unknown })._httpMessage;
      if (!(res instanceof ServerResponse)) continue;
      if (!res.headersSent) res.setHeader("Connection", "close");
      else res.once("finish", () => app.server.closeIdleConnections());
    }
    done();
  });

  // The disclosure records in flight are written before the fetch records and the store close — each waited for
  // within the watchdog's bound at most: a stop on a hung PostgreSQL server waited for good (SIGTERM or not, until a
  // service manager's SIGKILL). What was abandoned is said, once, to the operator's log.
  app.addHook("onClose", async () => {
    const said = (what: string, message: string) => opts.access?.onError?.(new JpkiError("ERR_STORE_UNRESPONSIVE", message), what);
    const { abandoned, lost } = await validation.close();
    if (abandoned) {
      said(
        "stopping without the disclosure log's write in flight",
        `the store did not answer a disclosure write of ${abandoned} record${abandoned === 1 ? "" : "s"} within ${storeWatchdog.waitMs} ms: abandoned (their verifiers were answered 503 store-unresponsive; on PostgreSQL the statement sent may have committed, or may still commit once the server answers)`,
      );
    }
    if (lost) {
      said(
        "stopping after disclosure writes whose outcome is not known",
        `the store's connection was lost under a disclosure write of ${lost} record${lost === 1 ? "" : "s"} after it was sent (their verifiers were answered 503; the server may have committed it)`,
      );
    }
    // The liveness checks' writes likewise (each its request's: nothing to wait for here).
    const checks = livenessWrites.counts;
    if (checks.abandoned || checks.lost) {
      const n = (k: number) => `${k} liveness check${k === 1 ? "" : "s"}`;
      said(
        "stopping after liveness-check writes whose outcome is not known",
        `${[checks.abandoned ? `${n(checks.abandoned)} in writes the store did not answer within ${storeWatchdog.waitMs} ms` : "", checks.lost ? `${n(checks.lost)} in writes whose connection was lost after they were sent` : ""].filter(Boolean).join(", ")}: their verifiers were answered 503; on PostgreSQL the write may have committed (the check then in the verifier's history and the disclosure log)`,
      );
    }
    // Each batch of the last flush is a call the watchdog watches (access.ts #write): refused while the store is
    // stalled, abandoned at the bound, so this is not waited for longer than that.
    await access.close();
    const { queued, unknown } = access.fetchRecords;
    if (queued || unknown) {
      const records = (n: number) => `${n} verifier fetch record${n === 1 ? "" : "s"}`;
      said(
        "stopping without the fetch records",
        `${[queued ? `${records(queued)} not written (the store did not take them)` : "", unknown ? `${records(unknown)} in writes whose outcome is not known (abandoned past the ${storeWatchdog.waitMs} ms bound, or their connection lost after they were sent: they may have been written)` : ""].filter(Boolean).join(", ")}: counts of what verifiers fetched, not disclosures`,
      );
    }
    storeWatchdog.close();
  });

  if (opts.ocsp) {
    const { maxAgeSeconds, ...o } = opts.ocsp;
    const responder = (ocsp = new OcspResponder({ ...o, store: ws.store, clock, watchdog: storeWatchdog }));
    await responder.start();
    app.addHook("onClose", async () => responder.stop());
    registerOcsp(app, { prefix, responder, clock, maxAgeSeconds: maxAgeSeconds ?? 300, count: metrics.countOcspAnswer, onResponse: onResponse("ocsp") });
  }

  return { app, metrics, access, ...(ocsp ? { ocsp } : {}) };
}
