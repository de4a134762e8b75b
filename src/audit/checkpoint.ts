/**
 * Audit checkpoints: the chain head (seq, hash) signed with a CA key (sha256WithRSAEncryption, RFC 8017
 * RSASSA-PKCS1-v1_5), stored with the signer's certificate. The hash chain alone shows a record altered,
 * removed or moved, but not a tail rewritten as a whole with recomputed hashes, nor a tail deleted: whoever can
 * write the database can do both. A checkpoint pins the chain up to its seq to a value only a CA key holder
 * could sign, so such a rewrite up to a checkpoint is found (audit/verify.ts); records after the last
 * checkpoint are reported as unanchored.
 *
 * When: `jpki audit checkpoint` (an operator, a timer), and `jpki crl generate` after it publishes (it holds a
 * CA key unlocked then anyway), when the log moved since the last checkpoint.
 */
import { verify as rsaVerify } from "node:crypto";
import { certificateParts } from "../pki/der.js";
import { publicKeyOf, type Signer } from "../pki/signer.js";
import type { AuditCheckpoint } from "../store/audit-log.js";
import type { Store } from "../store/types.js";

/** The bytes a checkpoint's signature covers: a fixed label, then its fields, one per line. */
export function checkpointMessage(cp: Pick<AuditCheckpoint, "seq" | "hash" | "at" | "caId">): Buffer {
  return Buffer.from(`jpki audit checkpoint v1\n${cp.seq}\n${cp.hash}\n${cp.at.getTime()}\n${cp.caId}\n`, "utf8");
}

/**
 * Signs the current head and stores the checkpoint (with its own "audit.checkpoint" record). Returns undefined
 * when the log is empty or already checkpointed at its head's predecessor (nothing but the last checkpoint's
 * own record came after it).
 */
export async function createAuditCheckpoint(
  store: Store,
  opts: { readonly caId: string; readonly certificateDer: Buffer; readonly signer: Signer; readonly now: Date; readonly force?: boolean },
): Promise<AuditCheckpoint | undefined> {
  const head = await store.auditHead();
  if (!head) return undefined;
  if (!opts.force && head.action === "audit.checkpoint") return undefined;
  const unsigned = { seq: head.seq, hash: head.hash, at: opts.now, caId: opts.caId };
  const signature = await opts.signer.sign(checkpointMessage(unsigned));
  const cp: AuditCheckpoint = { ...unsigned, certificateDer: opts.certificateDer, signature };
  await store.putAuditCheckpoint(cp);
  return cp;
}

/**
 * Whether a checkpoint's signature verifies with its certificate, and that certificate is one of `trusted`
 * (the store's CA certificates, compared byte for byte): a signature by a key an attacker made would verify
 * with the certificate stored beside it, so the certificate itself must be one the operator trusts.
 */
export function checkpointProblem(cp: AuditCheckpoint, trusted: readonly Buffer[], trustedFrom: "store" | "given" = "store"): string | undefined {
  // SQLite keeps whatever type an UPDATE gives a column: text where the certificate or signature was made
  // verify crash with a stack trace (found by a helper) instead of naming the checkpoint.
  if (!Buffer.isBuffer(cp.certificateDer) || !Buffer.isBuffer(cp.signature)) return `its certificate or signature is not binary data (it was written outside jpki)`;
  if (!trusted.some((t) => t.equals(cp.certificateDer))) {
    // With --trust, a CA of the store left out of the files given is the likelier cause than a forgery: say which.
    return trustedFrom === "given"
      ? `it is signed by ${cp.caId}, whose certificate is not among the trusted certificates given (--trust): give every CA's certificate, or this is a signature by a key nobody trusts`
      : `its signer certificate is not the certificate of any CA of this store (${cp.caId})`;
  }
  let ok = false;
  try {
    ok = rsaVerify("sha256", checkpointMessage(cp), publicKeyOf(certificateParts(cp.certificateDer).spki), cp.signature);
  } catch {
    ok = false;
  }
  return ok ? undefined : `its signature does not verify with the certificate of CA ${cp.caId}`;
}

/**
 * The CA generations rolled over because their key was suspected compromised (ca/compromised.ts): whoever stole
 * such a key can sign a checkpoint over a log they rewrote, so their checkpoints anchor nothing (audit/verify.ts)
 * and no new checkpoint is signed with them. Found by a helper: after 'ca rollover --compromised' the default
 * signer could still be the stolen key, and verify trusted what it signed.
 */
export { compromisedCaIds } from "../ca/compromised.js";
