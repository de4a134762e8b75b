/**
 * `jpki registry import`: resident records loaded in bulk into the registry side (住基ネット), as a municipality's
 * initial load or a correction of a record nobody relies on yet. A library service; the CLI is a shell over it.
 *
 * A record the CA side relies on is never replaced here. Once a resident holds a certificate (their issuance
 * information, 発行情報, is registered) or has had a change notice applied, the registry side must tell the CA side
 * of every change through a change notice (異動等情報の通知, shared/spec/JPKI.md "The link between the two
 * networks", step 3) — `jpki registry apply` and the CA's ingestion. A bare replacement (a new address, a death
 * written as status "deceased") changed the registry and left the certificate certifying the old items valid for
 * good: no notice, no revocation. Such a line is refused (ERR_RESIDENT_CHANGE_NEEDS_NOTICE) and the others go on.
 * A record closed by a resident-code change (it names the code the person moved to) is never reopened or replaced
 * either. A record the same as the one held is left alone, and counted as unchanged: the same in the registry's
 * normal form (normaliseRegistryText: trimmed, NFC), which is also the form stored, so the same residents exported
 * in NFD or with padded fields neither replace records nor are refused as changes.
 *
 * A file holds one record per resident code (住民票コード). A code listed again is refused (ERR_RESIDENT_DUPLICATE,
 * naming the line of the first), as the CA side refuses a notice id that comes again with another body
 * (ERR_NOTICE_CONFLICT): only the first is decided, so the outcome never depends on which line came last or where a
 * batch ended. Repeated identically it is refused as well: it says the exporting system is broken, and the
 * operator hears of it. The same holds when the first line was refused as malformed but its resident code can
 * still be read (ImportedCodes.noteMalformed): that line was the first about the resident and was decided (refused),
 * so a later well-formed one is a repeat like any other. Taking the later one instead would let the file's order
 * pick which of two disagreeing records stands, and import a record whose own file is inconsistent about it; the
 * operator corrects the malformed line (the exporting system) and imports the file again.
 *
 * Each batch is decided inside the store's write transaction that commits it (Store.applyToRegistry), so an
 * issuance or a notice committed between the read and the write cannot slip past the rule.
 *
 * importResidentFile is the whole of an import: a file read, parsed and committed batch by batch, every refused line
 * reported by its number. importResidents is one batch of it, for a caller that has the records in hand.
 */
import { JpkiError, isJpkiError, type ErrorCode } from "../errors.js";
import { registryLoadAudit } from "../store/audit-ops.js";
import type { ResidentRecord, Store } from "../store/types.js";
import { readRecords, type ImportFormat } from "./import.js";
import { releaseStream, untilStopped } from "./reading-stop.js";
import { normaliseRegistryText, parseResidentRecord } from "./resident.js";
import { isValidResidentCode } from "./resident-code.js";

export interface ResidentImportSummary {
  /** new resident codes */
  inserted: number;
  /** records replaced (residents with no certificate and no applied notice) */
  updated: number;
  /** records the same as the one held */
  unchanged: number;
  /**
   * records refused, by their index in the batch given; `first`, for a repeated code (ERR_RESIDENT_DUPLICATE), is
   * the position of the record that named it first: its line when `lines` was given, else its index in the batch
   */
  errors: Array<{ index: number; code: ErrorCode; message: string; first?: number }>;
}

/**
 * The resident codes one input has named so far, over all its batches, each with the position (line) where it
 * first appeared. Keyed by the code's value as a number: an 11-digit code is exact in a double, and a number key
 * costs less memory than a string one over a municipality's few million lines (not measured here).
 */
export class ImportedCodes {
  readonly #first = new Map<number | string, number>();
  /** codes whose first line was refused as malformed (few: a set of its own, not a flag on every code) */
  readonly #malformed = new Set<number | string>();

  /** The position `code` was first named at, or undefined; remembers `position` for it when new. */
  firstOrAdd(code: string, position: number): number | undefined {
    const key = keyOf(code);
    const first = this.#first.get(key);
    if (first === undefined) this.#first.set(key, position);
    return first;
  }

  /**
   * A record refused before import (it did not parse: a field missing or invalid) at `position`: when its resident
   * code can still be read (a valid code, check digit and all), the code is remembered as first named there, so a
   * later line with the same code is a repeat (ERR_RESIDENT_DUPLICATE) as after any refused first line. A code that
   * cannot be read names nobody for certain, and is not remembered.
   */
  noteMalformed(record: unknown, position: number): void {
    if (typeof record !== "object" || record === null || Array.isArray(record)) return;
    const raw = (record as Record<string, unknown>)["residentCode"];
    // read as parseResidentRecord reads it: in the normal form (trimmed), then checked
    const code = typeof raw === "string" ? normaliseRegistryText(raw) : undefined;
    if (!isValidResidentCode(code)) return;
    if (this.firstOrAdd(code, position) === undefined) this.#malformed.add(keyOf(code));
  }

  /** Whether `code` was first named by a line refused as malformed ({@link noteMalformed}). */
  firstWasMalformed(code: string): boolean {
    return this.#malformed.size > 0 && this.#malformed.has(keyOf(code));
  }
}

/** A code's key in ImportedCodes: a library caller's unchecked code keeps its string key (NaN would make all such codes one). */
function keyOf(code: string): number | string {
  return /^\d{11}$/.test(code) ? Number(code) : code;
}

export interface ResidentImportOptions {
  /** The codes earlier batches of the same input named: give one to every batch of a file. Default: this batch only. */
  readonly seen?: ImportedCodes;
  /** The line of each record of the batch in the input (same length as the records), for `seen` and the messages. */
  readonly lines?: readonly number[];
}

type Stored = ResidentRecord & { readonly noticeSequence: number };

/** The record in the registry's normal form: what import stores, and compares with the record held. */
function normalRecord<R extends ResidentRecord>(r: R): R {
  const { name, address } = r.fourItems;
  const n = normaliseRegistryText(name);
  const a = normaliseRegistryText(address);
  return n === name && a === address ? r : { ...r, fourItems: { ...r.fourItems, name: n, address: a } };
}

/** Whether two records are the same in the normal form (`a` is in it already; `b` may be one stored before it was kept). */
function sameRecord(a: ResidentRecord, b: ResidentRecord): boolean {
  const x = a.fourItems;
  const y = normalRecord(b).fourItems;
  return a.municipalityCode === b.municipalityCode && a.status === b.status && x.name === y.name && x.address === y.address && x.birthDate === y.birthDate && x.gender === y.gender;
}

/**
 * Imports one batch of parsed resident records. `index` in the errors is the record's position in `records`. A
 * code already named earlier in the batch, or in an earlier batch recorded in `opts.seen`, is refused
 * (ERR_RESIDENT_DUPLICATE) and the earlier record alone is decided.
 */
export async function importResidents(store: Store, records: readonly ResidentRecord[], opts: ResidentImportOptions = {}): Promise<ResidentImportSummary> {
  if (!records.length) return { inserted: 0, updated: 0, unchanged: 0, errors: [] };
  const { lines } = opts;
  if (lines && lines.length !== records.length) throw new JpkiError("ERR_INTERNAL", "importResidents: opts.lines must give one line per record");
  // Repeats are found here, not in `decide`: the store may run that again (PostgreSQL retries it), and `seen` must
  // take each record once.
  const seen = opts.seen ?? new ImportedCodes();
  const at = (position: number) => (lines ? `line ${position}` : `record ${position + 1} of the batch`);
  const repeats: ResidentImportSummary["errors"] = [];
  const taken: Array<{ index: number; record: ResidentRecord }> = [];
  for (const [index, r] of records.entries()) {
    const first = seen.firstOrAdd(r.residentCode, lines ? lines[index]! : index);
    if (first === undefined) taken.push({ index, record: normalRecord(r) });
    else {
      repeats.push({
        index,
        first,
        code: "ERR_RESIDENT_DUPLICATE",
        message: `resident ${r.residentCode} is listed again (first at ${at(first)}${seen.firstWasMalformed(r.residentCode) ? ", refused as malformed: the file disagrees with itself about this resident" : ""}): a file holds one record per resident code, so only the first is imported or refused, and this one is left out; correct the file (the exporting system) and import it again`,
      });
    }
  }
  if (!taken.length) return { inserted: 0, updated: 0, unchanged: 0, errors: repeats };
  return store.applyToRegistry((read, registered) => {
    const local = new Map<string, Stored>();
    const out: ResidentImportSummary = { inserted: 0, updated: 0, unchanged: 0, errors: [...repeats] };
    for (const { index, record: r } of taken) {
      const held = read(r.residentCode); // each code once: repeats were taken out above
      try {
        if (!held) {
          local.set(r.residentCode, { ...r, noticeSequence: 0 });
          out.inserted++;
          continue;
        }
        if (sameRecord(r, held)) {
          out.unchanged++;
          continue;
        }
        if (held.successorCode !== undefined) {
          // Closed by a resident-code change: the person lives under the successor. A change at the counter of a
          // resident with no certificate leaves it at sequence 0 with nothing registered, and replacing it (the
          // municipality's original file again, the old code active) made one person two records, the link a
          // later notice under the old code follows (registry/apply.ts recordOf) dropped.
          throw new JpkiError(
            "ERR_RESIDENT_CHANGE_NEEDS_NOTICE",
            `resident ${r.residentCode} was closed by a resident-code change (the person's code is now ${held.successorCode}): import does not reopen or replace it; a change to the person must come as a change notice (jpki registry apply FILE) or a counter procedure under the new code`,
          );
        }
        if (held.status !== "active") {
          // Death and removal are final in the registry, as at the counter (registry/counter.ts) and in registry
          // apply: an import that made such a record active again (no certificate, no notice, so no rule above
          // stopped it) brought back a person whom issuance then certified.
          throw new JpkiError(
            "ERR_RESIDENT_CHANGE_NEEDS_NOTICE",
            `resident ${r.residentCode} is ${held.status} in the registry, which is final: import does not reopen or change the record`,
          );
        }
        if (held.noticeSequence > 0 || registered(r.residentCode).length > 0) {
          // Never the items in the message: the code says whose record, the operator has the file.
          throw new JpkiError(
            "ERR_RESIDENT_CHANGE_NEEDS_NOTICE",
            `resident ${r.residentCode} ${registered(r.residentCode).length > 0 ? "holds a certificate (its issuance information is registered)" : "has had change notices applied"}: a change to the record must come as a change notice (jpki registry apply FILE), so the CA side follows it; import does not replace it`,
          );
        }
        local.set(r.residentCode, { ...r, noticeSequence: held.noticeSequence });
        out.updated++;
      } catch (e) {
        if (!isJpkiError(e)) throw e;
        out.errors.push({ index, code: e.code, message: e.message });
      }
    }
    out.errors.sort((a, b) => a.index - b.index);
    return { put: [...local.values()], remove: [], audit: registryLoadAudit(out.inserted, out.updated), result: out };
  });
}

/** Resident records per batch of {@link importResidentFile}: one store transaction each. */
export const RESIDENT_FILE_BATCH = 2000;

/** A line of the input that was not imported: why, and for a repeated code the line that named it first. */
export interface ResidentFileImportError {
  readonly line: number;
  readonly code: ErrorCode;
  /** names the line ("line N: …"); never quotes its content, which is personal data */
  readonly message: string;
  /** for ERR_RESIDENT_DUPLICATE, the line that named the code first */
  readonly firstLine?: number;
}

/** The counts so far, reported after each committed batch. */
export interface ResidentFileImportProgress {
  /** records read from the input, good and bad */
  readonly read: number;
  readonly inserted: number;
  readonly updated: number;
  readonly unchanged: number;
  readonly rejected: number;
}

export interface ResidentFileImportSummary {
  /** records read from the input and decided (imported, unchanged or refused), good and bad */
  readonly read: number;
  /** new resident codes */
  readonly inserted: number;
  /** records replaced (residents with no certificate and no applied notice) */
  readonly updated: number;
  /** records the same as the one held */
  readonly unchanged: number;
  /** the lines refused, in line order */
  readonly errors: readonly ResidentFileImportError[];
  /**
   * The signal aborted before the input ended: what was read was decided and committed, the rest not read. The same
   * file imported again takes the rest (the lines committed now are then unchanged).
   */
  readonly stopped: boolean;
  /** the line of the last record read (0: none): stopped, the lines after it were not read */
  readonly lastLine: number;
}

export interface ResidentFileImportOptions {
  /** "today" for the birth-date check: the workspace's clock (Workspace.clock.now()), not the wall clock */
  readonly now: Date;
  /** "auto" (default): by the file's extension, else by its first character (readRecords) */
  readonly format?: ImportFormat | "auto";
  /** records per transaction, default {@link RESIDENT_FILE_BATCH} */
  readonly batchSize?: number;
  /** called after each committed batch */
  readonly onProgress?: (p: ResidentFileImportProgress) => void;
  /**
   * stop after the records already read are committed (SIGTERM, SIGINT); a stream given as the source is destroyed
   * when the stop comes while it waits for its next line (releaseStream), so the stop does not wait for one
   */
  readonly signal?: AbortSignal;
}

/**
 * Imports a file (or stream) of resident records, JSON Lines or CSV (readRecords): each record parsed
 * (parseResidentRecord), committed in batches (importResidents) that share one {@link ImportedCodes}, so a code
 * repeated across a batch boundary, or after a line refused as malformed, is a repeat (ERR_RESIDENT_DUPLICATE).
 * A bad line is reported by its number and the others go on; only a problem with the input as a whole (unreadable,
 * a bad CSV header) or with the store is thrown.
 */
export async function importResidentFile(store: Store, source: NodeJS.ReadableStream | string, opts: ResidentFileImportOptions): Promise<ResidentFileImportSummary> {
  const size = opts.batchSize ?? RESIDENT_FILE_BATCH;
  if (!Number.isInteger(size) || size < 1) throw new JpkiError("ERR_CONFIG_INVALID", "importResidentFile: batchSize must be a positive integer");
  const { now, signal } = opts;
  const errors: ResidentFileImportError[] = [];
  const seen = new ImportedCodes();
  let read = 0, inserted = 0, updated = 0, unchanged = 0;
  let lastLine = 0;
  let batch: ResidentRecord[] = [];
  let lines: number[] = [];
  const flush = async () => {
    if (!batch.length) return;
    const r = await importResidents(store, batch, { seen, lines });
    inserted += r.inserted;
    updated += r.updated;
    unchanged += r.unchanged;
    for (const e of r.errors) {
      errors.push({ line: lines[e.index]!, code: e.code, message: `line ${lines[e.index]}: ${e.message}`, ...(e.first !== undefined ? { firstLine: e.first } : {}) });
    }
    batch = [];
    lines = [];
    opts.onProgress?.({ read, inserted, updated, unchanged, rejected: errors.length });
  };
  // A field named twice is refused (JSON.parse keeps the last; the exporter's own tools may mean the first): the
  // record decides the four items certificates certify, and its status whether the resident is alive.
  // The stop is checked before each record rather than when a batch is full: a file of bad lines fills no batch, and
  // a stop must not wait for its end. The record in hand is left undecided and uncounted, as the rest of the input.
  // A stream's wait for its next line (a pipe) ends at the stop too: the stream is destroyed, the rest unread.
  const records = untilStopped(readRecords(source, { format: opts.format ?? "auto", rejectDuplicateKeys: true }), signal, typeof source === "string" ? undefined : releaseStream(source));
  for await (const item of records) {
    read++;
    lastLine = item.line;
    if ("error" in item) {
      errors.push({ line: item.line, code: item.error.code, message: item.error.message });
      continue;
    }
    try {
      batch.push(parseResidentRecord(item.value, { now }));
      lines.push(item.line);
    } catch (e) {
      if (!isJpkiError(e)) throw e;
      errors.push({ line: item.line, code: e.code, message: e.message.includes(`line ${item.line}`) ? e.message : `line ${item.line}: ${e.message}` });
      // Still the first line about its resident, if its code can be read: a later line with that code is a repeat.
      seen.noteMalformed(item.value, item.line);
    }
    if (batch.length >= size) await flush();
  }
  // The batch in progress is committed, stopped or not: every record counted in `read` is decided.
  await flush();
  errors.sort((a, b) => a.line - b.line);
  return { read, inserted, updated, unchanged, errors, stopped: records.stopped, lastLine };
}
