/**
 * Delta CRLs (差分失効リスト), RFC 5280 §5.2.4 (deltaCRLIndicator), §5.2.6 (freshestCRL), §5.3.1
 * (removeFromCRL): the changes since a complete CRL, so a verifier polling every few minutes fetches a few
 * entries instead of a CA's whole list.
 *
 * - What: per CA, the delta of its full CRL, at `crl/<ca>-delta.crl` (caUrls().delta), beside the base at
 *   `crl/<ca>.crl`. The store keeps it under its own scope, "delta" (DELTA_SCOPE), rather than a flag on the full
 *   scope: it is a file of its own with its own latest number and history (publishCrl supersedes within a scope,
 *   keepHistory links per file), and the full scope's "latest" stays the base a delta names. Its RFC scope is
 *   the full CRL's: neither carries an issuingDistributionPoint, as §5.2.4 asks of a delta and its base.
 * - Numbering: from the CA's one sequence (crl/scope.ts), as §5.2.4 asks of a delta and its complete CRLs, so a
 *   delta's number lies above its base's and below the next base's. deltaCRLIndicator (critical) names the
 *   base: the CA's latest published full CRL when the delta's number is reserved.
 * - Content: every revocation committed after the base's number was reserved (store.deltaCrlEntries: SQLite by
 *   the revocation log's block ids, PostgreSQL by the base's snapshot), with the base's expiry rule. That may
 *   repeat a few the base lists (committed between its reservation and its read), never miss one, so base and
 *   delta together are the CA's revocations as of the delta's reservation.
 * - nextUpdate: two delta intervals after thisUpdate (one late publication is tolerated), never after the
 *   base's nextUpdate (§5.2.4); the store caps it.
 * - removeFromCRL (reason 8) is never emitted. A delta uses it for a certificateHold released, or for an entry
 *   its complete CRLs dropped. JPKI never releases a hold (crl/reason.ts: "key-suspect" holds for good), and
 *   an entry the base drops past its certificate's notAfter (expiredGraceDays) needs none: a certificate past
 *   notAfter fails validation anyway, and base plus delta still tell its status truly. So a delta only adds.
 * - freshestCRL (non-critical) names the delta in full CRLs and, while deltas are on, in new certificates
 *   (§4.2.1.15); never in a delta itself (§5.2.6), nor in partitions or the ARL, which have no deltas, nor in the
 *   full CRL of a retired generation whose certificates have all expired (crl/retired.ts), which gets no delta.
 * - Partitions get no delta: a certificate's distribution point names its municipality partition, a small CRL
 *   the schedule republishes within its interval of every revocation already, and a delta must carry its
 *   base's IDP, so each partition would need its own delta file and certificates a per-municipality
 *   freshestCRL, doubling the files per CA for lists that are small to begin with. The full CRL is the one
 *   that grows with the country; it is the one with a delta.
 */
import { caUrls } from "../ca/ids.js";
import { extension, integer } from "../pki/der.js";
import { crlDistributionPoints } from "../profile/extensions.js";
import { EXT_OID } from "../profile/oids.js";
import type { WorkspaceConfig } from "../workspace/config.js";

/** deltaCRLIndicator (critical): BaseCRLNumber ::= CRLNumber, the complete CRL this delta updates. */
export function deltaCrlIndicator(baseNumber: bigint): Buffer {
  if (baseNumber < 1n) throw new RangeError("a base CRL number is positive");
  return extension(EXT_OID.deltaCRLIndicator, true, integer(baseNumber));
}

/** freshestCRL (non-critical), FreshestCRL ::= CRLDistributionPoints: the delta's URI as fullName. */
export function freshestCrl(deltaUrl: string): Buffer {
  return extension(EXT_OID.freshestCRL, false, crlDistributionPoints(undefined, [deltaUrl]));
}

/** The delta cadence a configuration asks for, or undefined when it publishes no deltas. */
export interface DeltaCadence {
  /** between two deltas of a CA, ms */
  readonly intervalMs: number;
  /** how old a base may grow before pending revocations make a new one instead of a delta, ms */
  readonly baseIntervalMs: number;
  /** a delta listing this many entries makes the next publication a base */
  readonly maxEntries: number;
}

export function deltaCadence(config: Pick<WorkspaceConfig, "deltaCrlIntervalMinutes" | "crlBaseIntervalHours" | "deltaCrlMaxEntries">): DeltaCadence | undefined {
  if (config.deltaCrlIntervalMinutes <= 0) return undefined;
  return { intervalMs: config.deltaCrlIntervalMinutes * 60_000, baseIntervalMs: config.crlBaseIntervalHours * 3600_000, maxEntries: config.deltaCrlMaxEntries };
}

/** A delta's nextUpdate before the base's caps it: two intervals, so one late tick leaves no verifier stale. */
export function deltaNextUpdate(thisUpdate: Date, cadence: DeltaCadence): Date {
  return new Date(thisUpdate.getTime() + 2 * cadence.intervalMs);
}

/** The freshestCRL a CA's full CRLs and new certificates carry under this configuration (none without deltas). */
export function freshestCrlFor(config: Pick<WorkspaceConfig, "baseUrl" | "deltaCrlIntervalMinutes">, caId: string): Buffer | undefined {
  return config.deltaCrlIntervalMinutes > 0 ? freshestCrl(caUrls(config.baseUrl, caId).delta) : undefined;
}
