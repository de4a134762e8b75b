/**
 * Manual revocation (失効): at the resident's request, on loss or theft, on key compromise. The cause is
 * mapped to a CRLReason by the table in crl/reason.ts; the record keeps what caused it.
 */
import { JpkiError } from "../errors.js";
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
