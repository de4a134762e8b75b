/**
 * Which CA ids a new CA may take (`jpki ca init`, `jpki ca rollover`): an id is never created twice. A CA id names
 * an issuer's CRL, delta, partition and ARL URLs and its CRL number sequence (RFC 5280 §5.2.3: "monotonically
 * increasing … for a given CRL scope and CRL issuer"), and in a PKCS#11 token the label of its key object
 * (authority.ts tokenKeyLabel). A second CA under an id whose CRLs went out numbers its CRLs from 1 again under
 * the same name and URL. Found by an audit: after a restore from a backup older than a rollover, the next
 * rollover made 13-sig-g2 a second time and published a second CRL #1.
 *
 * An id is claimed by:
 *   - a CA the store holds;
 *   - a retired id the store records (Store.retireCaIds): a restore retires the ids whose CRLs the workspace
 *     it replaced had published and the backup has no CA of (backup/restore.ts);
 *   - a published CRL or ARL file in this workspace (crl/<id>.crl, crl/<id>-delta.crl, crl/<id>/, arl/<id>.crl)
 *     with no CA behind it in the store: CRLs of a CA the store has lost, with no restore to say so (a store put
 *     back by hand). Such an id is retired in the store when found, so the decision outlives the files.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import type { CertificateType } from "../profile/types.js";
import type { RetiredCaIdRecord } from "../store/types.js";
import type { Workspace } from "../workspace/workspace.js";
import { nextFreeGeneration } from "./ids.js";

/** An id passed over for a new CA, and why. */
export interface PassedOverCaId {
  readonly id: string;
  readonly reason: string;
}

/** The workspace files that say CRLs of `id` were published. */
function publishedFiles(ws: Workspace, id: string): string[] {
  const crl = ws.paths.crlDir;
  const arl = join(ws.paths.root, "arl");
  return [join(crl, `${id}.crl`), join(crl, `${id}.crl.pem`), join(crl, `${id}-delta.crl`), join(crl, id), join(arl, `${id}.crl`)].filter((p) => existsSync(p));
}

/**
 * Chooses, for each request, the first free generation from `from` (a prefecture and purpose each at most once),
 * retiring in the store the ids it passes over for their published files. Call under the CA-keys lock
 * (manage.ts withCaKeysLock), before any key is generated.
 */
export async function freeCaIds(
  ws: Workspace,
  wanted: ReadonlyArray<{ readonly prefectureCode: string; readonly purpose: CertificateType; readonly from: number }>,
): Promise<Array<{ readonly generation: number; readonly id: string; readonly passedOver: readonly PassedOverCaId[] }>> {
  const inStore = new Set((await ws.store.listCas()).map((c) => c.id));
  const retired = new Map((await ws.store.listRetiredCaIds()).map((r) => [r.id, r]));
  const toRetire: RetiredCaIdRecord[] = [];
  const now = ws.clock.now();
  const taken = (id: string): string | undefined => {
    if (inStore.has(id)) return `CA ${id} exists`;
    const r = retired.get(id);
    if (r) return `retired ${r.retiredAt.toISOString()}: ${r.reason}`;
    const files = publishedFiles(ws, id);
    if (!files.length) return undefined;
    const rel = files.map((f) => f.slice(ws.paths.root.length + 1)).join(", ");
    const rec: RetiredCaIdRecord = { id, retiredAt: now, reason: `its CRLs were published (${rel}) by a CA the store does not hold` };
    retired.set(id, rec);
    toRetire.push(rec);
    return `retired now: ${rec.reason}`;
  };
  const out = wanted.map((w) => nextFreeGeneration(w.prefectureCode, w.purpose, w.from, taken));
  if (toRetire.length) await ws.store.retireCaIds(toRetire);
  return out;
}
