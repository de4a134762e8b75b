/**
 * Manual revocation (失効): at the resident's request, on loss or theft, on key compromise. The cause is
 * mapped to a CRLReason by the table in crl/reason.ts; the record keeps what caused it.
 */
import { JpkiError, isJpkiError } from "../errors.js";
import { normaliseSerial } from "../pki/serial.js";
import { parseReason } from "../crl/reason.js";
import type { CertificateRow, Store } from "../store/types.js";

export async function revokeCertificate(
  store: Store,
  opts: { serial: string; reason: string; at: Date; source?: string },
): Promise<CertificateRow> {
  const serial = normaliseSerial(opts.serial);
  if (!serial) throw new JpkiError("ERR_USAGE", `${JSON.stringify(opts.serial)} is not a serial number: give it in hex as 'jpki issue' printed it`);
  const reason = parseReason(opts.reason);
  return store.revoke({ serial, reason: reason.code, revokedAt: opts.at, source: opts.source ?? `manual:${reason.cause ?? reason.name}` });
}

export interface RevokeAllResult {
  readonly caId: string;
  /** certificates this run revoked */
  readonly revoked: number;
  /** unrevoked certificates left alone because they had expired (no CRL lists an expired certificate) */
  readonly expired: number;
  /** certificates another run revoked between this run's listing and its revocation */
  readonly alreadyRevoked: number;
}

/** Certificates read per store query: bounded memory however many the CA issued. */
const REVOKE_ALL_PAGE = 500;

/**
 * Revokes every unexpired, unrevoked certificate a CA issued — the day its key is suspected compromised
 * (鍵危殆化; `jpki revoke --ca 13-sig --all --reason ca-compromise`). Each one through Store.revoke as a manual
 * revocation is (its own transaction and audit record, the CA marked for a new CRL), so an interrupted run loses
 * nothing it reported and a re-run revokes only what is left (0 the second time).
 *
 * The store lists unrevoked certificates oldest first with no cursor; revoked ones drop out of the next query, and
 * the expired ones (skipped) are remembered and the next query asked for that many more, so every query makes
 * progress and the loop ends.
 */
export async function revokeAllIssuedBy(
  store: Store,
  caId: string,
  opts: { readonly reason: string; readonly at: Date; readonly source?: string; readonly onProgress?: (revoked: number) => void; readonly pageSize?: number },
): Promise<RevokeAllResult> {
  if (!(await store.getCa(caId))) throw new JpkiError("ERR_CA_UNKNOWN", `no CA ${caId} in this workspace: 'jpki ca list' shows the CA ids`);
  const reason = parseReason(opts.reason);
  const source = opts.source ?? `manual:${reason.cause ?? reason.name}`;
  const expired = new Set<string>();
  let revoked = 0;
  let alreadyRevoked = 0;
  for (;;) {
    const limit = expired.size + (opts.pageSize ?? REVOKE_ALL_PAGE);
    const rows = await store.findCertificates({ caId, status: "valid", limit });
    for (const row of rows) {
      if (expired.has(row.serial)) continue;
      if (row.notAfter.getTime() < opts.at.getTime()) {
        expired.add(row.serial);
        continue;
      }
      try {
        await store.revoke({ serial: row.serial, reason: reason.code, revokedAt: opts.at, source });
        revoked++;
      } catch (e) {
        // a concurrent revocation of the same certificate: it is revoked, which is what this run wants
        if (!isJpkiError(e, "ERR_CERT_ALREADY_REVOKED")) throw e;
        alreadyRevoked++;
      }
    }
    opts.onProgress?.(revoked);
    if (rows.length < limit) break;
  }
  return { caId, revoked, expired: expired.size, alreadyRevoked };
}
