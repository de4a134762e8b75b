/**
 * Liveness checks (現況確認) and old/new certificate links (新旧証明書の紐付け), issue 11 point 4
 * (shared/spec/JPKI.md "Verifier services today"). A registered verifier that recorded a customer's certificate
 * at sign-up asks later, in batches, whether each is still good; every checked item is kept in that verifier's
 * check history, and every answer about one of our certificates lands in the disclosure log the resident reads.
 *
 * Where the answer comes from: the CA's own records in the store (revoked or not, since when, why), as the
 * platform services answer — not a CRL file. They agree with the CRLs: a revocation is in the store the moment
 * it commits and on the next CRL the schedule publishes, so a liveness check may say "revoked" a little
 * before a verifier polling CRLs learns it, never the other way round.
 *
 * Who sees what (the views.ts rule, carried over):
 * | | government body 行政機関 | private provider 民間認証事業者 |
 * |---|---|---|
 * | status good / revoked / unknown | yes | yes (an expired certificate is unknown, revoked or not: privateLivenessOf) |
 * | revocation time and reason; why unknown (not ours, expired) | yes | no |
 * | the replacing certificate (`link: true` asked) | yes | only with the resident's live consent recorded in the registry |
 * A private provider without consent gets exactly the answer it gets without asking for the link: no field,
 * no flag, nothing that says a link exists.
 *
 * The link: for a certificate revoked as superseded (4) or affiliationChanged (3) — a renewal, a move, a name
 * change — the current certificate of the same resident and the same purpose that replaced it, following the
 * chain: the next certificate of that resident and purpose issued after it; if that one was in turn revoked as
 * superseded or affiliationChanged, the next after it, and so on, until one that is neither revoked nor
 * expired (the link) or one that ended the line otherwise (death, loss, expiry: no link). It may come from
 * another prefecture's CA (a move between prefectures) — so the link's CA id tells the prefecture moved to,
 * which is one more reason it goes only where the table above allows.
 *
 * Certificate id (ours): the lower-case hex SHA-256 of the certificate's DER — what a verifier can compute from
 * the certificate it stored. A verifier that kept only the issuer and serial names `{caId, serial}` instead.
 */
import { createCipheriv, createDecipheriv, createHash, createHmac, hash } from "node:crypto";
import { JpkiError } from "../errors.js";
import { CRL_REASON, reasonName, type CrlReasonName } from "../crl/reason.js";
import { normaliseSerial } from "../pki/serial.js";
import type { CarriedStatus, CertificateRow, DisclosureRecord, LivenessStatus, StatusCheckRecord, StoredStatusCheck, VerifierRecord } from "../store/types.js";
import type { Workspace } from "../workspace/workspace.js";
import { isLate, type StoreCallKind, type StoreWatchdog, type WatchedCall } from "../store/watchdog.js";
import type { UnknownWrites } from "../store/write-outcome.js";

/** At most this many items in one liveness check. */
export const MAX_STATUS_ITEMS = 1000;
/** History pages: default and largest size. */
export const DEFAULT_HISTORY_LIMIT = 100;
export const MAX_HISTORY_LIMIT = 1000;

/** The certificate id of a certificate: lower-case hex SHA-256 of its DER. */
export function certificateId(der: Uint8Array): string {
  return hash("sha256", der, "hex");
}

/** A certificate named in a liveness check: by issuing CA and serial, or by certificate id. */
export type StatusItemRef = { readonly caId: string; readonly serial: string } | { readonly certificateId: string };

/** Why an item of a batch could not be checked (the rest of the batch is answered). */
export const STATUS_ITEM_ERRORS = Object.freeze({
  "item-invalid": "an item is an object with caId and serial, or with certificateId, and nothing else",
  "ca-id-invalid": "caId is a CA id such as 13-sig (1 to 64 letters, digits, - or _)",
  "serial-invalid": "serial is the certificate's serial number in hex (at most 20 octets)",
  "certificate-id-invalid": "certificateId is the lower-case hex SHA-256 of the certificate's DER (64 hex digits)",
} as const);
export type StatusItemErrorCode = keyof typeof STATUS_ITEM_ERRORS;

const CA_ID = /^[A-Za-z0-9_-]{1,64}$/;
const CERT_ID = /^[0-9a-fA-F]{64}$/;

/** One item of a request, parsed: the reference, or why it is malformed. Pure. */
export function parseStatusItem(x: unknown): StatusItemRef | { readonly error: StatusItemErrorCode } {
  if (typeof x !== "object" || x === null || Array.isArray(x)) return { error: "item-invalid" };
  const o = x as Record<string, unknown>;
  const keys = Object.keys(o).sort().join(",");
  if (keys === "certificateId") {
    if (typeof o.certificateId !== "string" || !CERT_ID.test(o.certificateId)) return { error: "certificate-id-invalid" };
    return { certificateId: o.certificateId.toLowerCase() };
  }
  if (keys === "caId,serial") {
    if (typeof o.caId !== "string" || !CA_ID.test(o.caId)) return { error: "ca-id-invalid" };
    const serial = typeof o.serial === "string" && o.serial.length <= 64 ? normaliseSerial(o.serial) : undefined;
    if (!serial || serial.length > 40) return { error: "serial-invalid" };
    return { caId: o.caId, serial };
  }
  return { error: "item-invalid" };
}

export interface StatusRequest {
  /** the items as sent: each parsed on its own, so one malformed item does not fail the batch */
  readonly items: readonly unknown[];
  /** ask for the replacing certificate of revoked ones (given only where allowed) */
  readonly link?: boolean;
}

/** The certificate that replaced a revoked one. */
export interface ReplacedBy {
  readonly caId: string;
  readonly serial: string;
  readonly certificateId: string;
}

/** The answer for one item, in the caller's view; `item` echoes what was asked. */
export type StatusItemAnswer =
  | {
      readonly index: number;
      readonly item: StatusItemRef;
      readonly status: LivenessStatus;
      /** government bodies: when and why it was revoked */
      readonly revocation?: { readonly time: string; readonly reason: CrlReasonName | "unknown" };
      /** government bodies: why the status is unknown */
      readonly unknownReason?: "not-ours" | "expired";
      /** the current certificate that replaced it (government; private with the resident's consent) */
      readonly replacedBy?: ReplacedBy;
    }
  | { readonly index: number; readonly error: StatusItemErrorCode; readonly message: string };

export interface StatusAnswer {
  readonly view: VerifierRecord["kind"];
  readonly checkedAt: string;
  readonly items: readonly StatusItemAnswer[];
}

/** Reasons after which a certificate has a successor of the same resident and purpose. */
const LINKABLE: ReadonlySet<number> = new Set([CRL_REASON.superseded, CRL_REASON.affiliationChanged]);

/**
 * Checks a batch for `verifier` and records it (history and disclosure log, one write) before returning the
 * answer: an answer the records do not hold is never given. Throws ERR_USAGE for a batch that is empty or over
 * MAX_STATUS_ITEMS, and what the store throws (no answer then). With a `watchdog`, each store call is bounded
 * (ERR_STORE_UNRESPONSIVE past it), and the write is told the deadline, as the disclosure log's is
 * (disclosure-log.ts says which way that errs and why).
 */
export async function checkStatus(
  ws: Workspace,
  verifier: VerifierRecord,
  req: StatusRequest,
  o: { readonly watchdog?: StoreWatchdog; readonly unknownWrites?: UnknownWrites } = {},
): Promise<StatusAnswer> {
  const dog = o.watchdog;
  const watched = <T>(what: StoreCallKind, f: () => Promise<T>): Promise<T> => (dog ? dog.run(what, f) : f());
  if (req.items.length === 0 || req.items.length > MAX_STATUS_ITEMS) {
    throw new JpkiError("ERR_USAGE", `a liveness check names 1 to ${MAX_STATUS_ITEMS} certificates: split the list into batches`);
  }
  const refs = req.items.map(parseStatusItem);
  const serials: string[] = [];
  const ids: string[] = [];
  for (const r of refs) {
    if ("serial" in r) serials.push(r.serial);
    else if ("certificateId" in r) ids.push(r.certificateId);
  }
  const rows = await watched("reading certificates for a liveness check", () => ws.store.certificatesForStatus({ serials: [...new Set(serials)], certificateIds: [...new Set(ids)] }));
  const bySerial = new Map<string, CertificateRow>();
  const byId = new Map<string, CertificateRow>();
  for (const row of rows) {
    bySerial.set(row.serial, row);
    byId.set(certificateId(row.der), row);
  }
  const now = ws.clock.now();
  const government = verifier.kind === "government";
  const lookUp = (r: StatusItemRef): CertificateRow | undefined => {
    if ("certificateId" in r) return byId.get(r.certificateId);
    const row = bySerial.get(r.serial);
    // The serial alone is unique in this store, but the verifier named the issuer too: another CA's certificate is not the one it asked about.
    return row && row.caId === r.caId ? row : undefined;
  };
  const found = refs.map((r) => ("error" in r ? undefined : lookUp(r)));
  // A serial the store has no row of may be one whose CRL entry a restore carried over (a certificate issued after
  // the backup): revoked, as the CRLs say, not "not ours". Read only when some serial was not found.
  const missing = refs.flatMap((r, i) => ("serial" in r && !found[i] ? [r.serial] : []));
  const carried = missing.length ? await watched("reading carried-over revocations", () => ws.store.carriedRevocations(missing)) : new Map<string, CarriedStatus>();
  const carriedOf = (r: StatusItemRef): CarriedStatus | undefined => {
    const c = "serial" in r ? carried.get(r.serial) : undefined;
    return c && "caId" in r && c.caId === r.caId ? c : undefined;
  };

  // The link is looked for only where it may be given: asked, and for a government body or a resident who consented.
  // The consents are read for every certificate found, linkable or not: read only for the linkable ones (revoked
  // for a move or a renewal), a private provider without consent timed that read — ≈ 60 µs more an answer — and so
  // told those revocations from the others (a review helper's repro), which its view must not.
  let consented = new Set<string>();
  if (req.link && !government) {
    const codes = [...new Set(found.filter((row): row is CertificateRow => !!row).map((row) => row.residentCode))];
    consented = await watched("reading consents", () => ws.store.liveConsents(verifier.id, codes));
  }
  const mayLink = (row: CertificateRow | undefined): row is CertificateRow => !!row && !!req.link && isLinkable(row) && (government || consented.has(row.residentCode));
  // Each resident's line of certificates of one purpose, read once per batch, the reads side by side (a
  // PostgreSQL pool runs them in parallel): a batch of movers costs one round trip's time, not one per item.
  const lineKey = (row: CertificateRow) => `${row.residentCode}\u0000${row.type}`;
  const wanted = new Map<string, CertificateRow>();
  for (const row of found) if (mayLink(row)) wanted.set(lineKey(row), row);
  const lines = new Map(
    await Promise.all(
      [...wanted].map(async ([key, row]) => [key, await watched("reading a resident's certificates", () => ws.store.findCertificates({ residentCode: row.residentCode, type: row.type, status: "all", limit: 10_000 }))] as const),
    ),
  );
  const linkOf = (row: CertificateRow): ReplacedBy | undefined => {
    const next = successor(lines.get(lineKey(row)) ?? [], row, now);
    return next ? { caId: next.caId, serial: next.serial, certificateId: certificateId(next.der) } : undefined;
  };

  const answers: StatusItemAnswer[] = [];
  const checks: StatusCheckRecord[] = [];
  const disclosures: DisclosureRecord[] = [];
  const disclosed = new Set<string>();
  for (let index = 0; index < refs.length; index++) {
    const ref = refs[index]!;
    if ("error" in ref) {
      answers.push({ index, error: ref.error, message: STATUS_ITEM_ERRORS[ref.error] });
      continue;
    }
    const row = found[index];
    const gone = row ? undefined : carriedOf(ref);
    const { status, unknownReason } = gone ? { status: "revoked" as const, unknownReason: undefined } : government ? livenessOf(row, now) : privateLivenessOf(row, now);
    const rev = row?.revocation ?? (gone ? { revokedAt: gone.revokedAt, reason: gone.reason } : undefined);
    const replacedBy = mayLink(row) ? linkOf(row) : undefined;
    answers.push({
      index,
      item: ref,
      status,
      ...(government && rev ? { revocation: { time: crlTime(rev.revokedAt), reason: reasonName(rev.reason) ?? "unknown" } } : {}),
      ...(government && unknownReason ? { unknownReason } : {}),
      ...(replacedBy ? { replacedBy } : {}),
    });
    checks.push({
      verifierId: verifier.id,
      at: now,
      // The certificate as asked (the answer echoes that, no more): the disclosure record names the certificate found.
      caId: "caId" in ref ? ref.caId : undefined,
      serial: "serial" in ref ? ref.serial : undefined,
      certificateId: "certificateId" in ref ? ref.certificateId : undefined,
      status,
      // What the verifier was told, no more: a private provider's history holds no reason.
      reason: government && rev ? rev.reason : undefined,
      revokedAt: government && rev ? rev.revokedAt : undefined,
      replacedBy: replacedBy ? { caId: replacedBy.caId, serial: replacedBy.serial } : undefined,
    });
    // One record per certificate a batch names, however often: the same certificate 1000 times in one batch was
    // 1000 records in the resident's listing, enough to push every other verifier's check out of its view.
    if (row && !disclosed.has(row.serial)) {
      disclosed.add(row.serial);
      disclosures.push({
        verifierId: verifier.id,
        serial: row.serial,
        issuer: row.caId,
        residentCode: row.residentCode,
        purpose: row.type,
        legalBasis: undefined,
        at: now,
        validationTime: now,
        answer: `status:${status}${replacedBy ? "+link" : ""}`,
        itemsDisclosed: false,
      });
    }
  }
  // Told the moment the watchdog answers 503 for it: SQLite does not write past it. A write whose outcome is not
  // known (abandoned at the bound, or its connection lost after COMMIT was sent: it may have committed) is counted
  // for the stop to say, as the disclosure log's are; its caller is answered 503 either way.
  let call: WatchedCall | undefined;
  let own: Promise<void> | undefined;
  try {
    if (dog) await dog.run("recording liveness checks", (deadline, c) => ((call = c), (own = ws.store.recordStatusChecks(checks, disclosures, { deadline }))));
    else await ws.store.recordStatusChecks(checks, disclosures);
  } catch (e) {
    if (call && own && isLate(call)) o.unknownWrites?.abandoned(checks.length, own);
    else o.unknownWrites?.failed(checks.length, e);
    throw e;
  }
  return { view: verifier.kind, checkedAt: now.toISOString(), items: answers };
}

/**
 * The status of a certificate by the CA's records at `now`, as a government body is told it. Revoked wins over
 * expired: the CA's record of the revocation outlives the certificate's place on the CRL, and "revoked" is the
 * truer answer to "is the account's certificate still good". A private provider's is privateLivenessOf. Pure.
 */
export function livenessOf(row: CertificateRow | undefined, now: Date): { status: LivenessStatus; unknownReason?: "not-ours" | "expired" } {
  if (!row) return { status: "unknown", unknownReason: "not-ours" };
  if (row.revocation) return { status: "revoked" };
  if (row.notAfter.getTime() < now.getTime()) return { status: "unknown", unknownReason: "expired" };
  return { status: "good" };
}

/**
 * A private provider's status (民間認証事業者): as livenessOf, except that an expired certificate is unknown
 * whether or not it was revoked — views.ts's rule for POST /v1/validate, and what the CRL says once the
 * certificate has left it. A change notice revokes every unrevoked certificate of the resident, expired ones
 * included, so "revoked wins" would let a provider that once stored a customer's certificate keep polling it
 * after it expired and learn of the resident's later move, name change or death. Pure.
 */
export function privateLivenessOf(row: CertificateRow | undefined, now: Date): { status: LivenessStatus; unknownReason?: undefined } {
  if (row && row.notAfter.getTime() < now.getTime()) return { status: "unknown" };
  return { status: livenessOf(row, now).status };
}

function isLinkable(row: CertificateRow): boolean {
  return !!row.revocation && LINKABLE.has(row.revocation.reason);
}

/**
 * The current certificate at the end of `row`'s chain of replacements within `line` (the resident's
 * certificates of one purpose, in issuance order), or undefined when the line ended otherwise. Pure.
 */
export function successor(line: readonly CertificateRow[], row: CertificateRow, now: Date): CertificateRow | undefined {
  const at = line.findIndex((c) => c.serial === row.serial);
  let cur: CertificateRow = row;
  for (let i = at < 0 ? line.length : at + 1; i < line.length; i++) {
    const next = line[i]!;
    if (next.issuedAt.getTime() < cur.issuedAt.getTime()) continue; // issued before the one it would replace
    if (!cur.revocation || !LINKABLE.has(cur.revocation.reason)) return undefined;
    if (!next.revocation) return next.notAfter.getTime() >= now.getTime() ? next : undefined;
    cur = next;
  }
  return undefined;
}

/** One check of the caller's history, as the API shows it. */
export interface StatusHistoryEntry {
  readonly at: string;
  readonly caId?: string;
  readonly serial?: string;
  readonly certificateId?: string;
  readonly status: LivenessStatus;
  readonly revocation?: { readonly time: string; readonly reason: CrlReasonName | "unknown" };
  readonly replacedBy?: { readonly caId: string; readonly serial: string };
}

export interface StatusHistoryPage {
  readonly items: readonly StatusHistoryEntry[];
  /** give it back as `cursor` for the next page; absent on the last page */
  readonly nextCursor?: string;
}

/** The verifier's own check history, oldest first, from `since`, after `cursor` (a page's nextCursor). */
export async function statusHistory(
  ws: Workspace,
  verifier: VerifierRecord,
  q: { readonly since?: Date; readonly cursor?: string; readonly limit?: number } = {},
  o: { readonly watchdog?: StoreWatchdog } = {},
): Promise<StatusHistoryPage> {
  const watched = <T>(what: StoreCallKind, f: () => Promise<T>): Promise<T> => (o.watchdog ? o.watchdog.run(what, f) : f());
  const limit = q.limit ?? DEFAULT_HISTORY_LIMIT;
  if (!Number.isInteger(limit) || limit < 1 || limit > MAX_HISTORY_LIMIT) throw new JpkiError("ERR_USAGE", `limit is 1 to ${MAX_HISTORY_LIMIT}`);
  const after = q.cursor === undefined ? 0 : openCursor(q.cursor, verifier.id, await watched("reading the cursor key", () => cursorKey(ws)));
  // One more than asked, to know whether a next page exists.
  const rows: StoredStatusCheck[] = await watched("reading the check history", () => ws.store.listStatusChecks({ verifierId: verifier.id, ...(q.since ? { since: q.since } : {}), after, limit: limit + 1 }));
  const page = rows.slice(0, limit);
  return {
    items: page.map((r) => ({
      at: r.at.toISOString(),
      ...(r.caId !== undefined ? { caId: r.caId } : {}),
      ...(r.serial !== undefined ? { serial: r.serial } : {}),
      ...(r.certificateId !== undefined ? { certificateId: r.certificateId } : {}),
      status: r.status,
      ...(r.reason !== undefined && r.revokedAt ? { revocation: { time: crlTime(r.revokedAt), reason: reasonName(r.reason) ?? "unknown" } } : {}),
      ...(r.replacedBy ? { replacedBy: r.replacedBy } : {}),
    })),
    ...(rows.length > limit ? { nextCursor: sealCursor(page[page.length - 1]!.id, verifier.id, await watched("reading the cursor key", () => cursorKey(ws))) } : {}),
  };
}

/*
 * Cursors. Check ids are drawn from one sequence for all verifiers, so a cursor that showed its id ("h" and the id
 * in base 36, as cursors were) told a verifier how many checks every other verifier made between two of its pages.
 * A cursor is now the id sealed for its verifier: one AES-128 block (the id, and 8 octets of SHA-256 of the
 * verifier's id) under a key derived from the workspace's secret key (Store.counterNoticeIdKey, carried by store
 * copies and backups, so cursors survive both), in base64url: "c" and 22 characters. A block that does not open
 * to this verifier's tag is refused (another verifier's cursor, or one made up). Cursors handed out before ("h…")
 * are still taken: they tell the verifier nothing it was not told then.
 */
const CURSOR_SYNTAX = /^(?:h[0-9a-z]{1,11}|c[A-Za-z0-9_-]{22})$/;
const cursorKeys = new WeakMap<object, Promise<Buffer>>();

function cursorKey(ws: Workspace): Promise<Buffer> {
  let key = cursorKeys.get(ws.store);
  if (!key) {
    key = ws.store.counterNoticeIdKey().then((secret) => createHmac("sha256", secret).update("jpki status-history cursor v1").digest().subarray(0, 16));
    // A failed read is not kept: the next page asks again.
    key.catch(() => cursorKeys.delete(ws.store));
    cursorKeys.set(ws.store, key);
  }
  return key;
}

const verifierTag = (verifierId: string) => createHash("sha256").update(verifierId).digest().subarray(0, 8);

function sealCursor(id: number, verifierId: string, key: Buffer): string {
  const block = Buffer.alloc(16);
  block.writeBigUInt64BE(BigInt(id));
  verifierTag(verifierId).copy(block, 8);
  const c = createCipheriv("aes-128-ecb", key, null).setAutoPadding(false);
  return `c${Buffer.concat([c.update(block), c.final()]).toString("base64url")}`;
}

function openCursor(s: string, verifierId: string, key: Buffer): number {
  if (s.startsWith("h")) return parseCursor(s);
  parseCursor(s); // the syntax
  const d = createDecipheriv("aes-128-ecb", key, null).setAutoPadding(false);
  const block = Buffer.concat([d.update(Buffer.from(s.slice(1), "base64url")), d.final()]);
  const id = block.readBigUInt64BE();
  if (!block.subarray(8).equals(verifierTag(verifierId)) || id > BigInt(Number.MAX_SAFE_INTEGER)) throw new JpkiError("ERR_USAGE", "cursor is the nextCursor of a previous page");
  return Number(id);
}

/**
 * Checks a cursor's form (the route refuses a malformed one before it reads anything); for an old-form cursor
 * ("h" and the id in base 36) the id it names, for a sealed one -1 (statusHistory opens it).
 */
export function parseCursor(s: string): number {
  if (!CURSOR_SYNTAX.test(s)) throw new JpkiError("ERR_USAGE", "cursor is the nextCursor of a previous page");
  if (s.startsWith("c")) return -1;
  const id = parseInt(s.slice(1), 36);
  if (!Number.isSafeInteger(id) || id < 0) throw new JpkiError("ERR_USAGE", "cursor is the nextCursor of a previous page");
  return id;
}

/**
 * A revocation time as the CRLs and OCSP say it: whole seconds (X.509's times carry none finer; der.ts drops the
 * milliseconds), so a liveness answer names the very time a verifier reads on the CRL, not one a fraction later.
 */
function crlTime(d: Date): string {
  return new Date(Math.floor(d.getTime() / 1000) * 1000).toISOString();
}
