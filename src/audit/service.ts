/** The audit log as a workspace service: a checkpoint signed with one of the workspace's CA keys. */
import { openCrlIssuer } from "../crl/generate.js";
import { JpkiError } from "../errors.js";
import type { AuditCheckpoint } from "../store/audit-log.js";
import type { Signer } from "../pki/signer.js";
import type { CaRecord } from "../store/types.js";
import type { Workspace } from "../workspace/workspace.js";
import { compromisedCaIds, createAuditCheckpoint } from "./checkpoint.js";

/**
 * Signs the log's head with a CA's key (`caId`, default the workspace's first CA whose key is not compromised: its listing order is fixed)
 * and stores the checkpoint. Undefined when there is nothing to sign (see createAuditCheckpoint).
 */
export async function checkpointAuditLog(ws: Workspace, opts: { readonly passphrase: string; readonly caId?: string; readonly force?: boolean }): Promise<AuditCheckpoint | undefined> {
  let record: CaRecord | undefined;
  if (opts.caId !== undefined) {
    record = await ws.store.getCa(opts.caId);
    if (!record) throw new JpkiError("ERR_CA_UNKNOWN", `no CA ${opts.caId} in this workspace: see 'jpki ca list'`);
  } else {
    const compromised = await compromisedCaIds(ws.store);
    record = (await ws.store.listCas()).find((c) => !compromised.has(c.id));
    if (!record) throw new JpkiError("ERR_CA_UNKNOWN", "the workspace has no CA to sign an audit checkpoint with: run 'jpki ca init' first");
  }
  if (opts.caId !== undefined && (await compromisedCaIds(ws.store)).has(record.id)) {
    throw new JpkiError("ERR_USAGE", `CA ${record.id} was rolled over because its key was suspected compromised: a checkpoint it signs proves nothing; sign with another CA (--ca)`);
  }
  return checkpointWith(ws, record, await openCrlIssuer(record, opts.passphrase, ws.config.pkcs11Modules).signer, opts.force);
}

/** A checkpoint with a key already unlocked (crl generate's). */
export function checkpointWith(ws: Workspace, record: CaRecord, signer: Signer, force = false): Promise<AuditCheckpoint | undefined> {
  return createAuditCheckpoint(ws.store, { caId: record.id, certificateDer: record.certificateDer, signer, now: ws.clock.now(), force });
}
