/**
 * `jpki registry apply`: the registry side (住基ネット) takes the same change notices as the CA, so the next
 * issuance certifies the four items after the change (shared/spec/JPKI.md "The link between the two
 * networks"). A library service; the CLI and the demo call it.
 *
 * Batches are decided inside the store's write transaction that commits them (two appliers never decide
 * from the same state). Every notice carries the complete items after its change, so a record only ever
 * moves forward: a notice at or below the record's last applied sequence is skipped, and one applied across a
 * gap takes its municipality from the notice (the one a missed move went to). A resident-code change
 * (住民票コード変更) to a code another record holds is refused (ERR_RESIDENT_CODE_IN_USE), never merged.
 * A notice still filed under the old code of an applied resident-code change, later than the change, is the
 * person's under the code they have now: it is applied there (as the CA side files it, ca/notices.ts).
 */
import { JpkiError, isJpkiError, type ErrorCode } from "../errors.js";
import type { ResidentRecord, Store } from "../store/types.js";
import type { RecordResult } from "./import.js";
import { MAX_SEQUENCE_JUMP, notYetEffective, parseNotice, type ChangeNotice } from "./notice.js";
import { applyNoticeToResident } from "./notice-apply.js";
import { endsRecord } from "./notice-rules.js";

export interface RegistryApplySummary {
  read: number;
  applied: number;
  skipped: number;
  errors: Array<{ line: number; code: ErrorCode; message: string }>;
}

type Stored = ResidentRecord & { readonly noticeSequence: number };

/**
 * The record a notice is about: the one under its code, or, when a resident-code change closed that one before
 * the notice (at a lower sequence), the record under the code the person has had since — followed along a chain
 * of changes (A → B → C) as far as the notice is later than each. A death the registry filed under the old code
 * after the change went through, skipped at the closed record, left the person active under the new code.
 */
function recordOf(n: ChangeNotice, get: (code: string) => Stored | undefined): Stored | undefined {
  let r = get(n.residentCode);
  const seen = new Set<string>();
  while (r?.successorCode !== undefined && n.sequence > r.noticeSequence && !seen.has(r.residentCode)) {
    seen.add(r.residentCode);
    const next = get(r.successorCode);
    if (!next) break; // not read yet (PostgreSQL decides again once it is), or gone: the closed record's verdict
    r = next;
  }
  return r;
}

/** Decides one notice against the records as they stand (including this batch's earlier changes). */
function decideOne(n: ChangeNotice, line: number, get: (code: string) => Stored | undefined): { put: Stored; retire?: Stored } | "skip" {
  const r = recordOf(n, get);
  const to = n.newResidentCode;
  if (!r) {
    // Applied before old codes were kept as closed records: the record lives under the new code.
    const moved = to ? get(to) : undefined;
    if (moved && moved.noticeSequence >= n.sequence) return "skip";
    throw new JpkiError("ERR_RESIDENT_UNKNOWN", `line ${line}: notice ${n.noticeId} names a resident the registry does not hold`);
  }
  if (r.status !== "active") return "skip";
  if (n.sequence <= r.noticeSequence) {
    // A death or removal closes the record whenever it comes (as the CA side still revokes on it, ca/notices.ts):
    // skipped as older than a notice applied across its gap, it left a dead person's record active, and a
    // certificate could be issued to them. The items and the sequence stay those of the newer notice.
    if (!endsRecord(n.kind)) return "skip";
    const { after: _older, ...closing } = n;
    return { put: { ...applyNoticeToResident(r, { ...closing, residentCode: r.residentCode }), noticeSequence: r.noticeSequence } };
  }
  // Filed under an old code: decided and applied exactly as if the registry had filed it under the current one.
  if (r.residentCode !== n.residentCode) n = { ...n, residentCode: r.residentCode };
  if (n.sequence - r.noticeSequence > MAX_SEQUENCE_JUMP) {
    throw new JpkiError(
      "ERR_NOTICE_SEQUENCE_JUMP",
      `line ${line}: notice ${n.noticeId} has sequence ${n.sequence}, more than ${MAX_SEQUENCE_JUMP} after the resident's last applied ${r.noticeSequence}: not applied (a feed that skips that far is broken; ask the registry)`,
    );
  }
  if (to === r.residentCode) {
    // "A → B" again under A after A → B was applied (the CA side refuses it with the same code): nothing to change.
    throw new JpkiError("ERR_RESIDENT_CODE_IN_USE", `line ${line}: notice ${n.noticeId} changes the resident code to the one the resident already has since an earlier resident-code change: not applied (ask the registry to check the code)`);
  }
  if (to && get(to)) {
    throw new JpkiError("ERR_RESIDENT_CODE_IN_USE", `line ${line}: notice ${n.noticeId} changes the resident code to one another record holds; two people are never merged (ask the registry to check the code)`);
  }
  let next = applyNoticeToResident(r, n);
  // Across a gap (an earlier notice not yet here, and skipped when it comes) the items after are complete, but a
  // missed move (転出/転入) shows only as the municipality that recorded this notice: keep that, or the record
  // would hold the new address under the old municipality, one no counter procedure could change any more.
  if (n.sequence > r.noticeSequence + 1 && n.newMunicipalityCode === undefined && n.municipalityCode !== next.municipalityCode) {
    next = { ...next, municipalityCode: n.municipalityCode };
  }
  // The old code of a resident-code change stays as a closed record at this sequence, naming the new code: nobody
  // can be issued a certificate under it, a later notice under it is applied under the new code (recordOf), and
  // the CA side still recognises the code.
  const retire = next.residentCode !== r.residentCode ? { ...r, status: "removed" as const, noticeSequence: n.sequence, successorCode: next.residentCode } : undefined;
  return { put: { ...next, noticeSequence: n.sequence }, ...(retire ? { retire } : {}) };
}

export async function applyNoticesToRegistry(store: Store, records: AsyncIterable<RecordResult>, now: Date, opts: { batchSize?: number } = {}): Promise<RegistryApplySummary> {
  const size = opts.batchSize ?? 500;
  const out: RegistryApplySummary = { read: 0, applied: 0, skipped: 0, errors: [] };
  const fail = (line: number, e: JpkiError) => out.errors.push({ line, code: e.code, message: e.message.includes(`line ${line}`) ? e.message : `line ${line}: ${e.message}` });
  let batch: Array<{ line: number; n: ChangeNotice }> = [];
  const flush = async () => {
    if (!batch.length) return;
    const b = batch;
    batch = [];
    const r = await store.applyToRegistry((read) => {
      // This batch's own changes first, then the store (read inside the transaction).
      const local = new Map<string, Stored>();
      const get = (code: string) => local.get(code) ?? read(code);
      const put = new Map<string, Stored>();
      const relink: Array<{ from: string; to: string }> = [];
      let applied = 0;
      let skipped = 0;
      const errors: Array<{ line: number; e: JpkiError }> = [];
      for (const { line, n } of b) {
        try {
          const d = decideOne(n, line, get);
          if (d === "skip") {
            skipped++;
            continue;
          }
          // A resident-code change: the registry's consents follow the resident to the new code.
          if (d.retire) relink.push({ from: d.retire.residentCode, to: d.put.residentCode });
          for (const rec of d.retire ? [d.retire, d.put] : [d.put]) {
            local.set(rec.residentCode, rec);
            put.set(rec.residentCode, rec);
          }
          applied++;
        } catch (e) {
          if (!isJpkiError(e)) throw e;
          errors.push({ line, e });
        }
      }
      return { put: [...put.values()], remove: [], relink, result: { applied, skipped, errors } };
    });
    out.applied += r.applied;
    out.skipped += r.skipped;
    for (const { line, e } of r.errors) fail(line, e);
  };
  for await (const item of records) {
    out.read++;
    if ("error" in item) {
      fail(item.line, item.error);
      continue;
    }
    try {
      const n = parseNotice(item.value, { line: item.line, now });
      const early = notYetEffective(n, now);
      if (early) throw early;
      batch.push({ line: item.line, n });
    } catch (e) {
      if (!isJpkiError(e)) throw e;
      fail(item.line, e);
    }
    if (batch.length >= size) await flush();
  }
  await flush();
  out.errors.sort((a, b) => a.line - b.line);
  return out;
}
