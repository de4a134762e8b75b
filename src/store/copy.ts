/**
 * Moving a workspace between stores (`jpki store copy`): SQLite to PostgreSQL and back, or to a standalone
 * SQLite file. The copy is logical — the source's `dump()` streamed into the target's `load()` (types.ts) — so
 * it depends on no table layout, and both ends keep their own.
 *
 * What an operator can rely on:
 * - Bounded memory: records travel in chunks (a server-side cursor or keyset pages out, one multi-row insert or
 *   prepared statements per chunk in), whatever the store's size.
 * - The source's facts are never written. Its dump is one snapshot and keeps its writers out (they wait, then
 *   fail with ERR_WORKSPACE_LOCKED) until the copy is verified and put in place, so no revocation can land in
 *   the old store after the snapshot and be lost. Readers go on. On a switch the old store is then retired in
 *   that same transaction (Store.dump's `retire`: a note in meta, triggers refusing every write), so a jpki
 *   process that opened it before — waiting for its lock, or a `jpki watch` — fails on its next write
 *   (ERR_STORE, "this jpki store is retired…") rather than writing where nobody reads; only then does
 *   config.json name the new store. Stop such processes first all the same.
 * - The target is all or nothing: `load` runs in one transaction (PostgreSQL rolls back a killed copy; a new
 *   SQLite file is built under a temporary name, `.jpki.db.<pid>.<random>.tmp`, and linked into place only
 *   after verification). A killed copy leaves an empty target, never one that looks complete — except a PostgreSQL
 *   target killed after its load committed, while it is read back: that one is marked unverified until
 *   `confirmLoad`, refused for use by PostgresStore.open, and replaced by the next copy into it.
 * - Verification: the target is dumped again through its own read path and its fingerprint — counts and a
 *   SHA-256 per kind of record over a canonical encoding, the revoked serials per CA with reasons and sources,
 *   the CRL numbers per CA — must equal the one taken of the source stream. Otherwise ERR_STORE_COPY_MISMATCH,
 *   and the workspace is not switched.
 * - CRL order: the dump carries each CA's CRL entries in the order the source lists them (revocationOrder: its
 *   revocation log's order, on either backend). The target rebuilds its log in that order, so its next CRLs list
 *   the same entries in the same order as the source's (and this is verified).
 *
 * Switching (copyWorkspaceStore): a copy to the other kind of store at the workspace's own location (PostgreSQL
 * from SQLite; the workspace's jpki.db from PostgreSQL) switches the workspace unless `switch: false`:
 * config.json's `store` is rewritten, atomically, only after verification and once the source is retired, so
 * that a move stopped at any point leaves one store taking writes, or none — never two — and run again finishes
 * (copyWorkspaceStore says how). Moving to PostgreSQL, the old jpki.db is kept, retired and renamed
 * `jpki.db.before-postgres-<UTC time>` (a read-only backup the workspace no longer opens); moving back, the
 * PostgreSQL database keeps its facts, retired (read-only), to be dropped by the operator. Without a switch
 * (`switch: false`, `sqlite:PATH`, PostgreSQL to PostgreSQL) the source is not retired. A copy to `sqlite:PATH` (a standalone file) or to
 * another PostgreSQL database from a PostgreSQL workspace never switches (for the latter, point JPKI_STORE at it).
 *
 * Connection strings: a password in a URL is never printed (redactStoreUrl); the CLI refuses one on the command
 * line, where `ps` shows it, and takes it from JPKI_STORE, PGPASSWORD or ~/.pgpass instead.
 */
import { createHash, type Hash } from "node:crypto";
import { chmodSync, closeSync, existsSync, linkSync, openSync, readFileSync, renameSync, rmSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";
import { isJpkiError, JpkiError } from "../errors.js";
import { parseConfig } from "../workspace/config.js";
import { Workspace, workspacePaths } from "../workspace/workspace.js";
import { zeroCounts } from "./dump.js";
import { writeFileAtomic } from "./files.js";
import { retirementNote } from "./retirement.js";
import type { PostgresStoreOptions } from "./postgres.js";
import { parsePostgresUrl } from "./postgres-url.js";
import { SqliteStore } from "./sqlite.js";
import { sweepStaleTemps, syncDir, tempPathFor } from "./staging.js";
import { DUMP_KINDS, type DumpBatch, type DumpCounts, type DumpKind, type Store } from "./types.js";

// ---------------------------------------------------------------------------------------------------------
// Fingerprints: what "the same store" means

/** What a copy is checked by, taken of a dump stream. Equal fingerprints: the same facts. */
export interface StoreFingerprint {
  readonly counts: DumpCounts;
  /** SHA-256 (hex) per kind over every record, in dump order, canonically encoded */
  readonly sha256: Readonly<Record<DumpKind, string>>;
  /** per CA: how many certificates are revoked, and a SHA-256 over their serials, reasons, times and sources in serial order */
  readonly revocations: Readonly<Record<string, { readonly count: number; readonly sha256: string }>>;
  /** per CA: the highest CRL number handed out (the next one continues above it) and the latest published */
  readonly crls: Readonly<Record<string, { readonly highest: string; readonly latestPublished: string | undefined }>>;
  /** the id the next liveness check gets (verifiers page their history by these ids) */
  readonly nextStatusCheckId: number | undefined;
  /** SHA-256 (hex) of the counter notice id key (registry/counter.ts), when the store has one: a digest, as a fingerprint is printed */
  readonly counterNoticeIdKeySha256: string | undefined;
}

/**
 * Feeds a record's canonical encoding to a hash: keys sorted, absent fields left out, dates in milliseconds,
 * bytes as they are (length-prefixed, never hex-encoded: DER is most of a certificate record). Text is gathered
 * and hashed in one update per record, or per stretch between two byte fields.
 */
function feed(h: Hash, record: unknown): void {
  let text = "";
  const walk = (v: unknown): void => {
    if (v === null) {
      text += "N";
      return;
    }
    switch (typeof v) {
      case "string":
        text += JSON.stringify(v);
        return;
      case "number":
      case "boolean":
        text += `(${String(v)})`;
        return;
      case "bigint":
        text += `(${v}n)`;
        return;
      case "object":
        break;
      default:
        throw new JpkiError("ERR_INTERNAL", `a dump record holds a ${typeof v}`);
    }
    if (Buffer.isBuffer(v)) {
      h.update(`${text}x${v.length}:`);
      h.update(v);
      text = "";
      return;
    }
    if (v instanceof Date) {
      text += `@${v.getTime()}`;
      return;
    }
    if (Array.isArray(v)) {
      text += "[";
      for (const x of v) (walk(x), (text += ","));
      text += "]";
      return;
    }
    const o = v as Record<string, unknown>;
    text += "{";
    for (const k of Object.keys(o).sort()) {
      if (o[k] === undefined) continue;
      text += `${k}:`;
      walk(o[k]);
      text += ",";
    }
    text += "}";
  };
  walk(record);
  h.update(`${text}\n`);
}

/** A canonical text of a small value (for comparing fingerprint parts). */
function canon(v: unknown): string {
  return JSON.stringify(v, (_k, x: unknown) => (typeof x === "bigint" ? `${x}n` : x));
}

/** Accumulates a StoreFingerprint batch by batch, as a dump streams by. */
export class FingerprintBuilder {
  readonly #counts = zeroCounts();
  readonly #hash = Object.fromEntries(DUMP_KINDS.map((k) => [k, createHash("sha256")])) as Record<DumpKind, Hash>;
  readonly #revoked = new Map<string, { count: number; hash: Hash }>();
  readonly #crls = new Map<string, { highest: bigint; latestPublished: bigint | undefined }>();

  #nextStatusCheckId: number | undefined;
  #counterKeySha256: string | undefined;

  add(b: DumpBatch): void {
    if (b.kind === "header") {
      this.#nextStatusCheckId = b.nextStatusCheckId;
      this.#counterKeySha256 = b.counterNoticeIdKey === undefined ? undefined : createHash("sha256").update(b.counterNoticeIdKey).digest("hex");
    }
    if (b.kind === "header" || b.kind === "end") return;
    this.#counts[b.kind] += b.records.length;
    const h = this.#hash[b.kind];
    for (const r of b.records) feed(h, r);
    if (b.kind === "certificates") {
      for (const r of b.records) {
        if (!r.revocation) continue;
        let e = this.#revoked.get(r.caId);
        if (!e) this.#revoked.set(r.caId, (e = { count: 0, hash: createHash("sha256") }));
        e.count++;
        e.hash.update(`${r.serial} ${r.revocation.reason} ${r.revocation.revokedAt.getTime()} ${r.revocation.source}\n`);
      }
    } else if (b.kind === "crls") {
      for (const r of b.records) {
        const e = this.#crls.get(r.caId) ?? { highest: 0n, latestPublished: undefined };
        if (r.number > e.highest) e.highest = r.number;
        if (r.state === "published" && (e.latestPublished === undefined || r.number > e.latestPublished)) e.latestPublished = r.number;
        this.#crls.set(r.caId, e);
      }
    }
  }

  result(): StoreFingerprint {
    return {
      counts: { ...this.#counts },
      sha256: Object.fromEntries(DUMP_KINDS.map((k) => [k, this.#hash[k].copy().digest("hex")])) as Record<DumpKind, string>,
      revocations: Object.fromEntries([...this.#revoked].sort(byKey).map(([ca, e]) => [ca, { count: e.count, sha256: e.hash.copy().digest("hex") }])),
      crls: Object.fromEntries(
        [...this.#crls].sort(byKey).map(([ca, e]) => [ca, { highest: e.highest.toString(), latestPublished: e.latestPublished?.toString() }]),
      ),
      nextStatusCheckId: this.#nextStatusCheckId,
      counterNoticeIdKeySha256: this.#counterKeySha256,
    };
  }
}

const byKey = <T>(a: [string, T], b: [string, T]) => (a[0] < b[0] ? -1 : a[0] > b[0] ? 1 : 0);

/** The fingerprint of a whole store, read through its dump (which keeps writers out while it runs). */
export async function fingerprintStore(store: Store, opts: { chunkSize?: number } = {}): Promise<StoreFingerprint> {
  const f = new FingerprintBuilder();
  for await (const b of store.dump(opts)) f.add(b);
  return f.result();
}

/**
 * What differs between two fingerprints, in words; empty when they are equal. `order: false` for a target that
 * keeps no CRL order of its own (both backends now keep it; PostgreSQL before schema 7 listed by serial): the
 * revocationOrder records are then compared by count only — which certificates are revoked, when, why and by whom is still compared (`revocations`).
 */
export function fingerprintDifferences(a: StoreFingerprint, b: StoreFingerprint, opts: { readonly order?: boolean } = {}): string[] {
  const out: string[] = [];
  for (const k of DUMP_KINDS) {
    if (a.counts[k] !== b.counts[k]) out.push(`${k}: ${a.counts[k]} in the source, ${b.counts[k]} in the target`);
    else if (a.sha256[k] !== b.sha256[k] && !(k === "revocationOrder" && opts.order === false)) out.push(`${k}: same count (${a.counts[k]}), different content`);
  }
  if (canon(a.revocations) !== canon(b.revocations)) out.push("revoked serials per CA differ");
  if (canon(a.crls) !== canon(b.crls)) out.push("CRL numbers per CA differ");
  if (a.nextStatusCheckId !== b.nextStatusCheckId) out.push(`the next liveness-check id: ${a.nextStatusCheckId} in the source, ${b.nextStatusCheckId} in the target`);
  // Another key would give a resident's next notice another id than the source would: a re-decided notice no longer a duplicate.
  if (a.counterNoticeIdKeySha256 !== b.counterNoticeIdKeySha256) out.push("the counter notice id key differs");
  return out;
}

// ---------------------------------------------------------------------------------------------------------
// Store to store

export interface StoreCopyProgress {
  /** copy: source to target; verify: re-reading the target */
  readonly phase: "copy" | "verify";
  readonly kind: DumpKind;
  /** records of this kind so far, and how many there are */
  readonly done: number;
  readonly total: number;
  /** records of every kind so far, and how many there are */
  readonly allDone: number;
  readonly allTotal: number;
}

export interface StoreCopyOptions {
  /** records per chunk (default 1000) */
  readonly chunkSize?: number;
  readonly onProgress?: (p: StoreCopyProgress) => void;
  /**
   * Runs once the target is loaded and verified, before the source's dump ends: the source's writers are still
   * kept out, so what is put in place is exactly what was copied. With `retireSource` it must not make the target
   * the store in use (that is `afterRelease`'s): the source still takes writes if the copy stops here. A throw
   * fails the copy.
   */
  readonly beforeRelease?: (result: StoreCopyResult) => Promise<void> | void;
  /**
   * Once `beforeRelease` has succeeded, close the source to writers with this note (Store.dump's `retire`), in
   * the transaction that kept them out: a process that opened the source before, or is waiting for its lock,
   * fails on its next write instead of writing where nobody will read. For a move, not for a backup.
   */
  readonly retireSource?: string;
  /**
   * Runs once the source's dump has ended — retired, with `retireSource` — and the target is confirmed (a
   * PostgreSQL target's confirmLoad comes after the retirement then): where a move makes the target the store in
   * use. A move stopped before it leaves no store taking writes rather than two (copyWorkspaceStore finishes it
   * when run again).
   */
  readonly afterRelease?: (result: StoreCopyResult) => Promise<void> | void;
  /**
   * The target already holds a copy of the source, which an earlier move put in place and stopped before it
   * switched: it is compared with the source (the same fingerprints, from the source's snapshot with its writers
   * kept out), not loaded, and not confirmed again. A difference is ERR_STORE_COPY_MISMATCH.
   */
  readonly existingTarget?: boolean;
  /** Called after each step that lasts (test hooks: a throw there stands for the copy being killed there). */
  readonly onStep?: (step: StoreCopyStep) => void;
}

/**
 * The steps of a copy that leave something behind, in order: verified (the target read back), retired (the source
 * closed to writers; a retiring copy only), confirmed (a loaded target cleared for use); copyWorkspaceStore adds
 * placed (a SQLite copy linked in as the workspace's jpki.db, before the retirement) and switched (config.json).
 */
export type StoreCopyStep = "verified" | "placed" | "retired" | "confirmed" | "switched";

export interface StoreCopyResult {
  readonly from: Store["kind"];
  readonly to: Store["kind"];
  /** the source's fingerprint, which the target's matched */
  readonly fingerprint: StoreFingerprint;
  readonly durationMs: number;
}

function progressTracker(phase: StoreCopyProgress["phase"], onProgress: StoreCopyOptions["onProgress"]) {
  let totals: DumpCounts = zeroCounts();
  let allTotal = 0;
  const done = zeroCounts();
  let allDone = 0;
  return (b: DumpBatch) => {
    if (b.kind === "header") {
      totals = b.counts;
      allTotal = DUMP_KINDS.reduce((n, k) => n + b.counts[k], 0);
      return;
    }
    if (b.kind === "end" || !onProgress) return;
    done[b.kind] += b.records.length;
    allDone += b.records.length;
    onProgress({ phase, kind: b.kind, done: done[b.kind], total: totals[b.kind], allDone, allTotal });
  };
}

/**
 * Copies every fact of `source` into `target`, which must be empty (ERR_STORE_NOT_EMPTY), then reads the target
 * back and compares fingerprints (ERR_STORE_COPY_MISMATCH). The source is only read. Neither store is closed.
 */
export async function copyStore(source: Store, target: Store, opts: StoreCopyOptions = {}): Promise<StoreCopyResult> {
  const started = Date.now();
  const chunkSize = opts.chunkSize ?? 1000;
  let retire: string | undefined;
  const it = source.dump({ chunkSize, retire: () => retire })[Symbol.asyncIterator]();
  try {
    const seen = new FingerprintBuilder();
    const progress = progressTracker("copy", opts.onProgress);
    // The source's batches up to and including `end`, and no further: its dump stays open (writers kept out)
    // until this function is done with the target.
    async function* relay(): AsyncGenerator<DumpBatch> {
      // One chunk read ahead: the source reads the next while the target writes this one.
      // (a read-ahead nobody awaits, because the target failed first, must not be an unhandled rejection)
      const ahead = () => {
        const p = it.next();
        p.catch(() => undefined);
        return p;
      };
      let next = ahead();
      for (;;) {
        const r = await next;
        if (r.done) throw new JpkiError("ERR_STORE_COPY_MISMATCH", "the source's dump ended without its end record: nothing was loaded");
        if (r.value.kind !== "end") next = ahead();
        seen.add(r.value);
        progress(r.value);
        yield r.value;
        if (r.value.kind === "end") return;
      }
    }
    if (opts.existingTarget) for await (const b of relay()) void b;
    else await target.load(relay());
    const expected = seen.result();
    const check = new FingerprintBuilder();
    const verifying = progressTracker("verify", opts.onProgress);
    for await (const b of target.dump({ chunkSize })) {
      check.add(b);
      verifying(b);
    }
    // Either target rebuilds its revocation log in the source's CRL order and must read it back so.
    const diff = fingerprintDifferences(expected, check.result());
    if (diff.length) {
      const what = opts.existingTarget ? `the copy the ${target.kind} target already holds differs from the ${source.kind} source` : `the ${target.kind} target does not read back as the ${source.kind} source wrote it`;
      throw new JpkiError("ERR_STORE_COPY_MISMATCH", `${what} (${diff.join("; ")})`, { details: { differences: diff } });
    }
    const result: StoreCopyResult = { from: source.kind, to: target.kind, fingerprint: expected, durationMs: Date.now() - started };
    opts.onStep?.("verified");
    // Until confirmed, a target that shows what it loaded (PostgreSQL) refuses to be used, and a rerun replaces it.
    // A move confirms it only once the source is retired: stopped in between, neither store takes writes, and the
    // rerun copies from the retired source again (it can no longer change).
    const confirm = async () => {
      if (opts.existingTarget) return;
      await target.confirmLoad();
      opts.onStep?.("confirmed");
    };
    if (!opts.retireSource) await confirm();
    await opts.beforeRelease?.(result);
    // Past `end`: the source's dump finishes (retiring the source first when asked) and lets writers in again.
    retire = opts.retireSource;
    try {
      await it.next();
    } catch (e) {
      if (!retire) throw e;
      throw new JpkiError("ERR_STORE", `the copy is verified, but the ${source.kind} source could not be closed to writers, so nothing was switched to the copy: stop every jpki process still using it and run the copy again (${(e as Error).message})`, { cause: e });
    }
    if (retire) {
      opts.onStep?.("retired");
      await confirm();
    }
    await opts.afterRelease?.(result);
    return { ...result, durationMs: Date.now() - started };
  } finally {
    await it.return?.();
  }
}

// ---------------------------------------------------------------------------------------------------------
// Workspaces

/** Where a copy goes: a SQLite file (the workspace's jpki.db when no path is given) or a PostgreSQL database. */
export type StoreTarget = { readonly kind: "sqlite"; readonly path?: string } | { readonly kind: "postgres"; readonly url: string };

const PG_URL = /^postgres(ql)?:\/\//i;

/** A connection string safe to print: any password replaced by ***. Not a URL at all: a placeholder. */
export function redactStoreUrl(url: string): string {
  // Read as the driver reads it: postgres://role@/db?host=/dir (no host) is a connection string like any.
  const p = parsePostgresUrl(url);
  if (!p) return "(a connection string that is not a URL)";
  if (p.url.password) p.url.password = "***";
  const text = p.url.toString();
  return p.hostless ? text.replace("@placeholder.invalid/", "@/") : text;
}

/**
 * Parses a `--to` value: `sqlite` (the workspace's jpki.db), `sqlite:PATH`, `postgres` (the connection string
 * in `env.storeUrl`, JPKI_STORE for the CLI) or a `postgres://…` URL. A URL holding a password is refused unless
 * `allowPassword` (the CLI never allows it: the command line is visible to every user of the host).
 */
export function parseStoreTarget(spec: string, env: { storeUrl?: string | undefined; allowPassword?: boolean; cwd?: string } = {}): StoreTarget {
  const s = spec.trim();
  if (s === "sqlite") return { kind: "sqlite" };
  if (s.startsWith("sqlite:")) {
    const path = s.slice("sqlite:".length);
    if (!path) throw new JpkiError("ERR_USAGE", "--to sqlite:PATH needs a path (or plain --to sqlite for the workspace's jpki.db)");
    return { kind: "sqlite", path: resolve(env.cwd ?? process.cwd(), path) };
  }
  if (s === "postgres" || s === "postgresql") {
    if (!env.storeUrl) {
      throw new JpkiError("ERR_USAGE", "--to postgres takes the connection string from JPKI_STORE, which is not set: export JPKI_STORE=postgres://user@host/db (the password in PGPASSWORD or ~/.pgpass)");
    }
    if (!PG_URL.test(env.storeUrl)) throw new JpkiError("ERR_USAGE", "JPKI_STORE must be a PostgreSQL connection string starting with postgres:// or postgresql://");
    return { kind: "postgres", url: env.storeUrl };
  }
  if (PG_URL.test(s)) {
    const parsed = parsePostgresUrl(s);
    if (!parsed) throw new JpkiError("ERR_USAGE", "--to: not a valid postgres:// URL");
    const u = parsed.url;
    if (u.password && !env.allowPassword) {
      throw new JpkiError(
        "ERR_USAGE",
        "--to holds a password, which every user of this host can read on the command line: give the password in PGPASSWORD or ~/.pgpass, or put the whole connection string in JPKI_STORE and pass --to postgres",
      );
    }
    return { kind: "postgres", url: s };
  }
  // Not echoed: whatever it is, it may hold a password.
  throw new JpkiError("ERR_USAGE", "--to must be sqlite, sqlite:PATH, postgres (the connection string in JPKI_STORE) or a postgres://… URL");
}

export interface WorkspaceStoreCopyOptions {
  readonly to: StoreTarget;
  /** the workspace's own PostgreSQL connection string, when it is on PostgreSQL (the CLI: JPKI_STORE) */
  readonly storeUrl?: string | undefined;
  /** switch the workspace to the copy when it is at the workspace's location (default true) */
  readonly switch?: boolean;
  readonly chunkSize?: number;
  readonly onProgress?: (p: StoreCopyProgress) => void;
  /** passed to PostgresStore.open for either end */
  readonly postgres?: Omit<PostgresStoreOptions, "create">;
  /** test hook: called after each step that lasts (StoreCopyStep); a throw there stands for a kill there */
  readonly onStep?: (step: StoreCopyStep) => void;
}

export interface StoreLocation {
  readonly kind: Store["kind"];
  /** a file path, or a connection string with any password redacted */
  readonly location: string;
}

export interface WorkspaceStoreCopyReport {
  readonly workspace: string;
  readonly from: StoreLocation;
  readonly to: StoreLocation;
  readonly counts: DumpCounts;
  readonly fingerprint: StoreFingerprint;
  /** whether config.json now names the target's kind of store */
  readonly switched: boolean;
  /** where the workspace's old jpki.db went when it moved to PostgreSQL */
  readonly previousStore: string | undefined;
  /**
   * The copy was already in place: a move stopped after it put the copy there and before it switched the
   * workspace (killed, or its source could not be retired) left it, and it matched the source, so it was switched
   * to as it is.
   */
  readonly reused: boolean;
  /**
   * Where a jpki.db found in the way of a move back to SQLite went (a copy left by a move stopped before it
   * switched, older than the store now, or a store retired by an earlier move away): renamed, never deleted.
   */
  readonly setAside: string | undefined;
  readonly durationMs: number;
  /** what the operator does next */
  readonly next: readonly string[];
}

function utcStamp(d = new Date()): string {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

/**
 * The WAL companions of SQLite copies killed midway (`.jpki.db.<pid>~@<ns>.<random>.tmp-wal`, `-shm`): the staged
 * file itself is swept by sweepStaleTemps on the workspace's next open, its companions here, by the same rule.
 */
function sweepStaleCopyCompanions(dir: string): void {
  sweepStaleTemps(dir, { suffixes: ["-wal", "-shm", "-journal"] });
}

function removeSqliteFiles(path: string): void {
  for (const f of [path, `${path}-wal`, `${path}-shm`, `${path}-journal`]) rmSync(f, { force: true });
}

/** A name beside `path` that is free: `<path>.<tag>-<UTC time>`, with -2, -3… after it when taken. */
function freeName(path: string, tag: string): string {
  const base = `${path}.${tag}-${utcStamp()}`;
  for (let i = 1; ; i++) {
    const p = i > 1 ? `${base}-${i}` : base;
    if (![p, `${p}-wal`, `${p}-shm`].some((f) => existsSync(f))) return p;
  }
}

/** Renames a SQLite store and its companions to `to`. */
function renameSqliteFiles(from: string, to: string): void {
  renameSync(from, to);
  for (const ext of ["-wal", "-shm"]) if (existsSync(from + ext)) renameSync(from + ext, to + ext);
  syncDir(dirname(to));
}

/**
 * Copies a workspace's store to `opts.to`, verifies the copy, and (see the header) switches the workspace to it.
 * The source is opened as the workspace's config.json says (PostgreSQL with `opts.storeUrl`).
 *
 * A move (a copy that switches) keeps one store taking writes at every moment, so that a kill anywhere leaves no
 * two: it puts the verified copy where the workspace would open it but config.json does not name it yet (the
 * SQLite file linked in as jpki.db; a PostgreSQL target still unconfirmed), retires the source, confirms the
 * target, and only then rewrites config.json. Found by a helper: config.json was switched first and the source
 * retired after, so a move killed in between left the workspace on the new store and the old one taking writes
 * from every process that still used it (other hosts on the database), for good: the rerun refused ("already
 * runs on jpki.db"). Stopped at any step, the move run again finishes it:
 * - nothing in place yet, or an unconfirmed PostgreSQL target: copied again (from the retired source, if it was
 *   retired; the unconfirmed target is replaced);
 * - the copy in place, config.json not switched: compared with the source (existingTarget) and switched to when
 *   equal; a jpki.db that differs (the workspace went on writing to PostgreSQL meanwhile) or is retired is set
 *   aside (renamed, never deleted) and the copy made afresh. A PostgreSQL target holding records is used so only
 *   when the source is retired (a move's own copy), else refused as ever (ERR_STORE_NOT_EMPTY).
 */
export async function copyWorkspaceStore(root: string, opts: WorkspaceStoreCopyOptions): Promise<WorkspaceStoreCopyReport> {
  const paths = workspacePaths(root);
  const ws = await Workspace.openAsync(root, { storeUrl: opts.storeUrl, ...(opts.postgres ? { postgres: opts.postgres } : {}) });
  let target: Store | undefined;
  let staged: string | undefined;
  let installed = false;
  try {
    const from: StoreLocation =
      ws.config.store === "sqlite" ? { kind: "sqlite", location: paths.db } : { kind: "postgres", location: redactStoreUrl(opts.storeUrl ?? "") };
    const to = opts.to;
    const targetPath = to.kind === "sqlite" ? resolve(to.path ?? paths.db) : undefined;
    const atWorkspace = to.kind === "postgres" || targetPath === paths.db;
    if (to.kind === "sqlite" && targetPath === paths.db && ws.config.store === "sqlite") {
      throw new JpkiError("ERR_USAGE", `the workspace already runs on ${paths.db}: copy it to postgres, or to another file with --to sqlite:PATH`);
    }
    if (to.kind === "postgres" && ws.config.store === "postgres" && to.url === opts.storeUrl) {
      throw new JpkiError("ERR_USAGE", "the target is the workspace's own PostgreSQL database (JPKI_STORE): name another database");
    }
    const canSwitch = atWorkspace && to.kind !== ws.config.store;
    const doSwitch = canSwitch && opts.switch !== false;
    if (to.kind === "sqlite" && targetPath === paths.db && !doSwitch) {
      throw new JpkiError("ERR_USAGE", "a copy to the workspace's jpki.db that does not switch the workspace would leave a store nobody uses: give another file with --to sqlite:PATH");
    }
    const toLoc: StoreLocation = to.kind === "sqlite" ? { kind: "sqlite", location: targetPath! } : { kind: "postgres", location: redactStoreUrl(to.url) };
    const sourceRetired = (await ws.store.retirement()) !== undefined;
    let setAside: string | undefined;
    let reused = false;

    /** A new SQLite file built under a temporary name beside the target, linked into place only once verified. */
    const stageSqlite = (path: string): Store => {
      if (!existsSync(dirname(path))) throw new JpkiError("ERR_FILE_NOT_FOUND", `no directory ${dirname(path)} for --to sqlite:${path}`);
      sweepStaleCopyCompanions(dirname(path));
      staged = tempPathFor(path);
      closeSync(openSync(staged, "wx", 0o600));
      chmodSync(staged, 0o600);
      return SqliteStore.open(staged, { create: true });
    };
    /** A jpki.db in the way of a move back (nothing opens it: config.json names PostgreSQL), renamed aside. */
    const setAsideDb = () => {
      setAside = freeName(paths.db, "unused");
      renameSqliteFiles(paths.db, setAside);
    };
    // A move's note on the store it leaves: what a process still writing to it is told.
    const note = retirementNote(paths.root, toLoc, new Date());
    const copy = (t: Store, existingTarget: boolean) =>
      copyStore(ws.store, t, {
        ...(opts.chunkSize ? { chunkSize: opts.chunkSize } : {}),
        ...(opts.onProgress ? { onProgress: opts.onProgress } : {}),
        ...(opts.onStep ? { onStep: opts.onStep } : {}),
        existingTarget,
        // A moved workspace's old store refuses writes from then on (jpki processes that opened it before the switch).
        ...(doSwitch ? { retireSource: note } : {}),
        // Verified; the source still keeps its writers out: put the copy in place, where config.json does not name it yet.
        beforeRelease: async () => {
          if (!staged) return;
          await t.close();
          target = undefined;
          // link, not rename: fails rather than replace a file that appeared at the target meanwhile
          try {
            linkSync(staged, targetPath!);
          } catch (e) {
            if ((e as NodeJS.ErrnoException).code === "EEXIST") throw new JpkiError("ERR_STORE_NOT_EMPTY", `${targetPath} appeared while copying: the copy was not installed`, { cause: e });
            throw e;
          }
          installed = true;
          removeSqliteFiles(staged);
          staged = undefined;
          syncDir(dirname(targetPath!));
          opts.onStep?.("placed");
        },
        // The source retired (a move) and the target confirmed: only now does the workspace name the target.
        afterRelease: () => {
          if (!doSwitch) return;
          const config = parseConfig({ ...JSON.parse(readFileSync(paths.config, "utf8")), store: to.kind });
          writeFileAtomic(paths.config, JSON.stringify(config, null, 2) + "\n");
          opts.onStep?.("switched");
        },
      });

    let result: StoreCopyResult;
    if (to.kind === "sqlite") {
      const path = targetPath!;
      if (existsSync(path) && !doSwitch) {
        throw new JpkiError("ERR_STORE_NOT_EMPTY", `${path} already exists: a copy goes into a new file only (move the old one aside first)`);
      }
      let done: StoreCopyResult | undefined;
      if (existsSync(path)) {
        // A move back to the workspace's jpki.db that finds one: left by a move stopped before it switched (the
        // copy in place), or a store an earlier move away retired.
        let existing: SqliteStore | undefined;
        try {
          existing = SqliteStore.open(path, { create: false });
        } catch {
          // not a store this jpki can open as it is (damaged, or an older schema retired): set aside below
        }
        target = existing;
        if (existing && (await existing.retirement()) === undefined) {
          try {
            done = await copy(existing, true);
            reused = true;
          } catch (e) {
            if (!isJpkiError(e, "ERR_STORE_COPY_MISMATCH")) throw e;
          }
        }
        if (!done) {
          await existing?.close();
          target = undefined;
          setAsideDb();
        }
      }
      if (!done) {
        const t = stageSqlite(path);
        target = t;
        done = await copy(t, false);
      }
      result = done;
    } else {
      const { PostgresStore } = await import("./postgres.js");
      const t = await PostgresStore.open(to.url, { ...opts.postgres, create: true, loadTarget: true });
      target = t;
      try {
        result = await copy(t, false);
      } catch (e) {
        // A move's own copy, left confirmed by a move stopped before it switched: the source is retired then.
        if (!(doSwitch && sourceRetired && isJpkiError(e, "ERR_STORE_NOT_EMPTY") && (await t.retirement()) === undefined)) throw e;
        try {
          result = await copy(t, true);
          reused = true;
        } catch (again) {
          if (isJpkiError(again, "ERR_STORE_COPY_MISMATCH")) throw e;
          throw again;
        }
      }
    }
    await ws.close();
    // Moved off SQLite: the old file stays as a backup under a name the workspace never opens.
    let previousStore: string | undefined;
    if (doSwitch && ws.config.store === "sqlite") {
      previousStore = join(paths.root, `${basename(paths.db)}.before-postgres-${utcStamp()}`);
      renameSqliteFiles(paths.db, previousStore);
    }
    const next: string[] = [];
    if (reused) next.push(`the copy a stopped move had left in ${toLoc.location} matched the store: the move is finished with it`);
    if (setAside) next.push(`${paths.db} was in the way (a copy left by a stopped move, or a retired store) and was renamed ${setAside}: delete it once you no longer need it`);
    if (doSwitch && to.kind === "postgres") {
      next.push(
        opts.storeUrl === to.url
          ? "the workspace now runs on PostgreSQL: keep JPKI_STORE set for every jpki command"
          : `the workspace now runs on PostgreSQL: set JPKI_STORE=${toLoc.location} for every jpki command (the password, if any, in PGPASSWORD or ~/.pgpass)`,
      );
      next.push(`the old SQLite store is kept, read-only (retired), as ${previousStore}: delete it once you no longer need it`);
    } else if (doSwitch && to.kind === "sqlite") {
      next.push("the workspace now runs on its jpki.db: JPKI_STORE is no longer needed");
      next.push(`the PostgreSQL database ${from.location} keeps its records, read-only (retired): drop it once you no longer need it`);
    } else if (to.kind === "postgres" && ws.config.store === "postgres") {
      next.push(`to run the workspace on the copy, set JPKI_STORE to ${toLoc.location}`);
    } else if (canSwitch) {
      next.push("the workspace was not switched (--no-switch): it still runs on its old store, and the copy will not follow its changes");
    } else {
      next.push(`the copy in ${toLoc.location} is a standalone store: the workspace still runs on its own`);
    }
    return {
      workspace: paths.root,
      from,
      to: toLoc,
      counts: result.fingerprint.counts,
      fingerprint: result.fingerprint,
      switched: doSwitch,
      previousStore,
      reused,
      setAside,
      durationMs: result.durationMs,
      next,
    };
  } finally {
    await target?.close().catch(() => undefined);
    if (staged && !installed) removeSqliteFiles(staged);
    await ws.close().catch(() => undefined);
  }
}
