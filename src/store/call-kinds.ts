/**
 * The kinds of store calls jpki serve's watchdog watches (store/watchdog.ts WatchedCall.kind: what the call does).
 * A kind is a label of /metrics (jpki_store_held{kind}, jpki_store_refused_calls_total{kind,why}) and a word of
 * /healthz's `held`, so the set is fixed here: a kind built from a request (a CA id, a serial, a verifier) would
 * give the scraper one series per value, without end. `StoreWatchdog.run` takes a StoreCallKind only; a string
 * outside the table that reaches it anyway (a cast, a plain-JS caller) is counted and held as UNNAMED_CALL.
 */
export const STORE_CALL_KINDS = Object.freeze([
  /** a call given no kind, and any string not in this table */
  "a store call",
  /** the watchdog's own probe while stalled (Store.ping) */
  "a probe of the store",
  /** the disclosure log's group writes (verifier/disclosure-log.ts) */
  "recording disclosures",
  // server/crl-records.ts, server/app.ts (/metrics' CRL gauges), server/access.ts
  "the CRL records",
  "the CRL index's reads",
  "reading the registered verifiers",
  "recording verifier fetches",
  // verifier/liveness.ts (POST /v1/status)
  "reading certificates for a liveness check",
  "reading carried-over revocations",
  "reading consents",
  "reading a resident's certificates",
  "recording liveness checks",
  "reading the cursor key",
  "reading the check history",
  // verifier/validation-service.ts (POST /v1/validate, /v1/verify-signature)
  "reading the CA certificates",
  "reading the certificate's owner",
  "reading the resident",
  // verifier/overview.ts (GET /v1/overview)
  "the overview's reads",
  // ocsp/responder.ts
  "the OCSP responder's poll of the CAs' revisions",
  "the OCSP responder's read of compromised CAs",
  "the OCSP responder's reload",
  "an OCSP responder's reload",
  "an OCSP status read",
] as const);

/** What a watched store call does: one of STORE_CALL_KINDS. */
export type StoreCallKind = (typeof STORE_CALL_KINDS)[number];

/** The kind a call given none, or one not in the table, is counted under. */
export const UNNAMED_CALL: StoreCallKind = "a store call";

const KNOWN: ReadonlySet<string> = new Set(STORE_CALL_KINDS);

/** `kind` if the table has it, else UNNAMED_CALL: what may reach a metric's label. */
export function storeCallKind(kind: string | undefined): StoreCallKind {
  return kind !== undefined && KNOWN.has(kind) ? (kind as StoreCallKind) : UNNAMED_CALL;
}
