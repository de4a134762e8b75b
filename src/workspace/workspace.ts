/**
 * A workspace: one directory holding the store, the configuration and the published artefacts.
 *   jpki.db       the embedded store (SQLite), when config.json says `store: "sqlite"` (the default); with
 *                 `store: "postgres"` the facts live in the PostgreSQL database named by the caller (the CLI:
 *                 JPKI_STORE), and everything below stays on disk
 *   config.json   WorkspaceConfig
 *   ca/           CA certificates (PEM and DER) for openssl and verifiers
 *   crl/          published CRLs
 *   certs/        issued certificates written by the CLI
 *   rejects/      rejected input records
 * Everything is owner-only (directories 0700, files 0600) whatever the umask: the store holds the encrypted
 * CA keys and personal data.
 */
import { chmodSync, closeSync, existsSync, lstatSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { JpkiError, isJpkiError } from "../errors.js";
import { systemClock, type Clock } from "../pki/clock.js";
import { SqliteStore } from "../store/sqlite.js";
import { sweepStaleTemps } from "../store/staging.js";
import { writeFileAtomic } from "../store/files.js";
import type { Store } from "../store/types.js";
import type { PostgresStoreOptions } from "../store/postgres.js";
import type { UpgradeOptions } from "../store/upgrade.js";
import { parsePkcs11Uri } from "../pki/pkcs11.js";
import { KEY_WRAP_HINT_FILE, takeDerivedKeyWrap } from "../pki/key-wrap.js";
import { readRegularFile } from "../pki/regular-file.js";
import { parseConfig, type WorkspaceConfig } from "./config.js";

export interface WorkspacePaths {
  readonly root: string;
  readonly db: string;
  readonly config: string;
  readonly caDir: string;
  readonly crlDir: string;
  readonly certDir: string;
  readonly rejectsDir: string;
  /**
   * The municipality's administrative key for the IC cards the counter issues (`jpki card issue` makes it on first
   * use): the only key that unblocks a card's PIN or renews its certificates. Backed up with the workspace.
   */
  readonly counterAdminKey: string;
}

/** The administrative key's file name in the workspace root (WorkspacePaths.counterAdminKey). */
export const COUNTER_ADMIN_KEY_FILE = "counter-admin.key";

export function workspacePaths(root: string): WorkspacePaths {
  const r = resolve(root);
  return { root: r, db: join(r, "jpki.db"), config: join(r, "config.json"), caDir: join(r, "ca"), crlDir: join(r, "crl"), certDir: join(r, "certs"), rejectsDir: join(r, "rejects"), counterAdminKey: join(r, COUNTER_ADMIN_KEY_FILE) };
}

const DIR_MODE = 0o700;
const FILE_MODE = 0o600;

function ownerOnlyDir(path: string): void {
  mkdirSync(path, { recursive: true, mode: DIR_MODE });
  chmodSync(path, DIR_MODE);
}

/** Sets the store and its SQLite companions (-wal, -shm) to 0600 where they exist. */
function ownerOnlyStore(db: string): void {
  for (const f of [db, `${db}-wal`, `${db}-shm`]) {
    try {
      chmodSync(f, FILE_MODE);
    } catch (e) {
      if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw e;
    }
  }
}

/**
 * Makes what an existing workspace keeps secret owner-only again where someone loosened it since (chmod -R,
 * a restore or copy under another umask): the root and its directories, config.json, the store and its
 * -wal/-shm. Returns each path it changed with the mode it had, for a warning: its content (the four items,
 * the encrypted CA keys) may have been read meanwhile. Symlinks are not followed (lstat; chmod of a link
 * would change its target).
 */
function tightenLoosened(paths: WorkspacePaths, sqlite: boolean): string[] {
  const changed: string[] = [];
  const check = (p: string, want: number) => {
    let st;
    try {
      st = lstatSync(p);
    } catch {
      return;
    }
    // Only what is there as it should be: a file where a directory belongs (rejects/ made a file by mistake) is
    // the command's to report when it needs the place (ERR_FILE_UNUSABLE), not a loosened directory.
    if (st.isSymbolicLink() || (want === DIR_MODE ? !st.isDirectory() : !st.isFile()) || !(st.mode & 0o077)) return;
    chmodSync(p, want);
    changed.push(`${p} (mode ${(st.mode & 0o777).toString(8)})`);
  };
  for (const d of [paths.root, paths.caDir, paths.crlDir, paths.certDir, paths.rejectsDir]) check(d, DIR_MODE);
  check(paths.config, FILE_MODE);
  // the Bridge CA's directory and its encrypted key (ca/bridge.ts bridgePaths), when the workspace has one
  const bridge = join(paths.root, "bridge");
  check(bridge, DIR_MODE);
  for (const f of ["bridge.key", "bridge.key.next"]) check(join(bridge, f), FILE_MODE);
  if (sqlite) for (const f of [paths.db, `${paths.db}-wal`, `${paths.db}-shm`]) check(f, FILE_MODE);
  return changed;
}

export interface WorkspaceOpenOptions {
  readonly clock?: Clock;
  /**
   * The PostgreSQL connection string of a `store: "postgres"` workspace (`postgres://user@host/db`,
   * `postgres:///jpki?host=/run/postgresql`; the password from PGPASSWORD or ~/.pgpass). Ignored for SQLite.
   */
  readonly storeUrl?: string;
  /** passed to PostgresStore.open */
  readonly postgres?: Omit<PostgresStoreOptions, "create">;
  /** progress of a store upgrade that fills a column for every certificate (store/upgrade.ts), either store */
  readonly upgrade?: UpgradeOptions;
  /**
   * A stop (a daemon's SIGTERM) ends the open while it waits — on a PostgreSQL server, connecting or on another
   * process's upgrade (PostgresStore.open); on a SQLite store, for another process's write lock during an upgrade
   * (SqliteStore.openAsync) — rejecting with the signal's reason.
   */
  readonly signal?: AbortSignal;
}

function syncOnlySqlite(paths: WorkspacePaths): JpkiError {
  return new JpkiError("ERR_USAGE", `the workspace ${paths.root} uses a PostgreSQL store: open it with Workspace.openAsync (or createAsync) and a storeUrl`);
}

/**
 * The PostgreSQL store of a workspace. The connection string may hold a password: it never appears in a
 * message, and only its scheme is checked here (pg parses the rest).
 */
async function openPostgres(paths: WorkspacePaths, opts: WorkspaceOpenOptions, create: boolean): Promise<Store> {
  const url = opts.storeUrl;
  if (!url) {
    // Creating one, the workspace is not there yet to "use" anything: say what is being made.
    const what = create ? `the workspace ${paths.root} is to use a PostgreSQL store` : `the workspace ${paths.root} uses a PostgreSQL store`;
    throw new JpkiError("ERR_USAGE", `${what}: set JPKI_STORE to its connection string (postgres://user@host/db or postgres:///db?host=/run/postgresql; the password in PGPASSWORD or ~/.pgpass)`);
  }
  if (!/^postgres(ql)?:\/\//i.test(url)) {
    throw new JpkiError("ERR_USAGE", "JPKI_STORE must be a PostgreSQL connection string starting with postgres:// or postgresql://");
  }
  const { PostgresStore } = await import("../store/postgres.js");
  return PostgresStore.open(url, { ...opts.postgres, create, ...(opts.upgrade ? { upgrade: opts.upgrade } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
}

export class Workspace {
  readonly paths: WorkspacePaths;
  #config: WorkspaceConfig;
  readonly store: Store;
  readonly clock: Clock;
  /**
   * What opening found readable or writable by others and made owner-only again ("path (mode 644)"): a caller
   * with a user to tell (the CLI) warns, since the content may have been read meanwhile. Empty as a rule.
   */
  readonly loosened: readonly string[];

  private constructor(paths: WorkspacePaths, config: WorkspaceConfig, store: Store, clock: Clock, loosened: readonly string[]) {
    this.paths = paths;
    this.#config = config;
    this.store = store;
    this.clock = clock;
    this.loosened = loosened;
  }

  /** The workspace's configuration (config.json), validated. */
  get config(): WorkspaceConfig {
    return this.#config;
  }

  /**
   * Lets this host load the PKCS#11 module at `modulePath` for CA keys (config.json pkcs11Modules): what `jpki ca
   * init --pkcs11-module` records, the operator having named the module on this host's command line. A key
   * reference in the store naming any other module is refused (pki/pkcs11.ts assertPkcs11ModuleAllowed).
   */
  allowPkcs11Module(modulePath: string): void {
    if (this.#config.pkcs11Modules.includes(modulePath)) return;
    this.#config = Workspace.#updateConfig(this.paths, { pkcs11Modules: [...this.#config.pkcs11Modules, modulePath] });
  }

  /**
   * Creates the workspace if absent (config merged over defaults), or opens it. SQLite only: a workspace
   * whose config says `store: "postgres"` needs {@link Workspace.createAsync}.
   */
  static create(root: string, opts: { config?: Partial<WorkspaceConfig>; clock?: Clock } = {}): Workspace {
    const paths = workspacePaths(root);
    if (!existsSync(paths.config)) {
      // Validate before touching the disk: a bad setting leaves no half-made workspace behind.
      const config = parseConfig(opts.config ?? {});
      if (config.store !== "sqlite") throw syncOnlySqlite(paths);
      Workspace.#writeLayout(paths, config);
    }
    return Workspace.#openSqlite(paths, Workspace.#readConfig(paths), true, opts.clock);
  }

  /**
   * Opens an existing SQLite workspace; ERR_WORKSPACE_MISSING when there is none, ERR_WORKSPACE_CORRUPT when
   * damaged. A PostgreSQL workspace needs {@link Workspace.openAsync}.
   */
  static open(root: string, opts: { clock?: Clock; upgrade?: UpgradeOptions } = {}): Workspace {
    const paths = workspacePaths(root);
    Workspace.#checkExists(paths);
    return Workspace.#openSqlite(paths, Workspace.#readConfig(paths), false, opts.clock, opts.upgrade);
  }

  /**
   * Creates the workspace if absent, or opens it, on the store its configuration names. A new workspace's
   * store is `opts.config.store` (default sqlite); an existing one keeps the store recorded in config.json (on
   * PostgreSQL its database must hold its schema already: an empty one is ERR_WORKSPACE_CORRUPT, never filled).
   * For PostgreSQL, `storeUrl` is the connection string (the CLI takes it from JPKI_STORE); it is never written
   * to config.json. The database is reached before anything is written, so an unreachable server leaves no
   * half-made workspace behind.
   */
  static async createAsync(root: string, opts: WorkspaceOpenOptions & { config?: Partial<WorkspaceConfig> } = {}): Promise<Workspace> {
    const paths = workspacePaths(root);
    if (existsSync(paths.config)) {
      const config = Workspace.#readConfig(paths);
      if (opts.config?.store !== undefined && opts.config.store !== config.store) {
        throw new JpkiError("ERR_USAGE", `the workspace ${paths.root} already uses the ${config.store} store; its store cannot be changed to ${opts.config.store}`);
      }
      return Workspace.#openAny(paths, config, true, opts);
    }
    const config = parseConfig(opts.config ?? {});
    if (config.store === "sqlite") {
      Workspace.#writeLayout(paths, config);
      return Workspace.#openSqlite(paths, config, true, opts.clock, opts.upgrade);
    }
    const store = await openPostgres(paths, opts, true);
    try {
      Workspace.#writeLayout(paths, config);
      return Workspace.#finish(paths, config, store, opts.clock);
    } catch (e) {
      await store.close();
      throw e;
    }
  }

  /** Opens an existing workspace on the store its configuration names (see {@link Workspace.createAsync}). */
  static async openAsync(root: string, opts: WorkspaceOpenOptions = {}): Promise<Workspace> {
    const paths = workspacePaths(root);
    Workspace.#checkExists(paths);
    return Workspace.#openAny(paths, Workspace.#readConfig(paths), false, opts);
  }

  static async #openAny(paths: WorkspacePaths, config: WorkspaceConfig, create: boolean, opts: WorkspaceOpenOptions): Promise<Workspace> {
    if (config.store === "sqlite") return Workspace.#openSqliteAsync(paths, config, create, opts);
    // An existing workspace's schema was made with it (createAsync reaches the database before writing
    // config.json): an empty database here is the wrong one, typically a mistyped JPKI_STORE naming another
    // database on the same server. Never create a schema there, not even for `ca init`, which would then put
    // new CAs where no later command with the right JPKI_STORE finds them.
    let store: Store;
    try {
      store = await openPostgres(paths, opts, false);
    } catch (e) {
      if (isJpkiError(e, "ERR_WORKSPACE_CORRUPT") && e.details?.reason === "empty-database") {
        throw new JpkiError(
          "ERR_WORKSPACE_CORRUPT",
          `the workspace ${paths.root} keeps its records in PostgreSQL, but the database JPKI_STORE names is empty: check the host and database in JPKI_STORE, or restore the database from a backup`,
          { cause: e },
        );
      }
      throw e;
    }
    try {
      return Workspace.#finish(paths, config, store, opts.clock);
    } catch (e) {
      await store.close();
      throw e;
    }
  }

  /** ERR_WORKSPACE_MISSING when there is no workspace at `root` (neither its store file nor its config.json). */
  static assertExists(root: string): void {
    Workspace.#checkExists(workspacePaths(root));
  }

  static #checkExists(paths: WorkspacePaths): void {
    if (!existsSync(paths.db) && !existsSync(paths.config)) {
      throw new JpkiError("ERR_WORKSPACE_MISSING", `no jpki workspace at ${paths.root}: run 'jpki ca init' (or 'jpki demo'), or pass --workspace / set JPKI_HOME`);
    }
  }

  /** The directories and config.json, on disk whatever the store. */
  static #writeLayout(paths: WorkspacePaths, config: WorkspaceConfig): void {
    ownerOnlyDir(paths.root);
    for (const d of [paths.caDir, paths.crlDir, paths.certDir, paths.rejectsDir]) ownerOnlyDir(d);
    writeFileAtomic(paths.config, JSON.stringify(config, null, 2) + "\n");
  }

  static #readRawConfig(paths: WorkspacePaths): unknown {
    try {
      return JSON.parse(readFileSync(paths.config, "utf8"));
    } catch (e) {
      throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${paths.config} is missing or not valid JSON: restore it or recreate the workspace`, { cause: e });
    }
  }

  static #readConfig(paths: WorkspacePaths): WorkspaceConfig {
    return parseConfig(Workspace.#readRawConfig(paths));
  }

  /** Rewrites config.json with `changes` over what the file says (the operator's other settings kept as written). */
  static #updateConfig(paths: WorkspacePaths, changes: Partial<WorkspaceConfig>): WorkspaceConfig {
    const raw = Workspace.#readRawConfig(paths);
    const next = { ...(raw as Record<string, unknown>), ...changes };
    const config = parseConfig(next);
    writeFileAtomic(paths.config, JSON.stringify(next, null, 2) + "\n");
    return config;
  }

  /**
   * A SQLite workspace made before config.json listed PKCS#11 modules (no "pkcs11Modules" in the file) adopts, once,
   * the modules its own token CAs' key references name: its jpki.db lies in this owner-only directory beside
   * config.json and was written by this host's own `ca init --pkcs11-module`, so whoever could change it could
   * change config.json as well. From then on config.json decides, and a reference rewritten in the store is
   * refused. Never done on PostgreSQL: that database is written by every host that shares it.
   */
  static #adoptPkcs11Modules(paths: WorkspacePaths, config: WorkspaceConfig, store: SqliteStore): WorkspaceConfig {
    const raw = Workspace.#readRawConfig(paths);
    if (typeof raw !== "object" || raw === null || "pkcs11Modules" in raw) return config;
    const modules = new Set<string>();
    for (const uri of store.caKeyRefsSync()) {
      try {
        modules.add(parsePkcs11Uri(uri).modulePath);
      } catch {
        // a damaged reference fails where its CA is opened, with its own message
      }
    }
    if (modules.size === 0) return config;
    const next = { ...raw, pkcs11Modules: [...modules] };
    const adopted = parseConfig(next);
    try {
      writeFileAtomic(paths.config, JSON.stringify(next, null, 2) + "\n");
    } catch {
      // a read-only workspace (a mounted backup): adopted for this process, and again by the next
    }
    return adopted;
  }

  static #openSqlite(paths: WorkspacePaths, config: WorkspaceConfig, create: boolean, clock?: Clock, upgrade?: UpgradeOptions): Workspace {
    const loosened = Workspace.#beforeSqlite(paths, config, create);
    return Workspace.#afterSqlite(paths, config, create, SqliteStore.open(paths.db, { create, ...(upgrade ? { upgrade } : {}) }), clock, loosened);
  }

  /** #openSqlite, the store's upgrade waiting without blocking and ended by `opts.signal` (SqliteStore.openAsync). */
  static async #openSqliteAsync(paths: WorkspacePaths, config: WorkspaceConfig, create: boolean, opts: WorkspaceOpenOptions): Promise<Workspace> {
    const loosened = Workspace.#beforeSqlite(paths, config, create);
    const store = await SqliteStore.openAsync(paths.db, { create, ...(opts.upgrade ? { upgrade: opts.upgrade } : {}), ...(opts.signal ? { signal: opts.signal } : {}) });
    return Workspace.#afterSqlite(paths, config, create, store, opts.clock, loosened);
  }

  /** What comes before SQLite opens the store file: checks, its mode, a new one made; what was found loosened. */
  static #beforeSqlite(paths: WorkspacePaths, config: WorkspaceConfig, create: boolean): readonly string[] {
    if (config.store !== "sqlite") throw syncOnlySqlite(paths);
    if (!create && !existsSync(paths.db)) {
      throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${paths.db} is missing although ${paths.config} exists: restore the store from a backup`);
    }
    // before SQLite opens it: a -wal it creates takes the store's mode
    const loosened = tightenLoosened(paths, true);
    if (create && !existsSync(paths.db)) {
      // Made here, 0600, before SQLite creates it under the umask; SQLite gives -wal/-shm the same mode.
      closeSync(openSync(paths.db, "a", FILE_MODE));
      chmodSync(paths.db, FILE_MODE);
    }
    return loosened;
  }

  static #afterSqlite(paths: WorkspacePaths, config: WorkspaceConfig, create: boolean, store: SqliteStore, clock: Clock | undefined, loosened: readonly string[]): Workspace {
    if (create) ownerOnlyStore(paths.db);
    try {
      config = Workspace.#adoptPkcs11Modules(paths, config, store);
    } catch (e) {
      store.close().catch(() => undefined);
      throw e;
    }
    return Workspace.#finish(paths, config, store, clock, loosened);
  }

  static #finish(paths: WorkspacePaths, config: WorkspaceConfig, store: Store, clock: Clock = systemClock, loosened: readonly string[] = tightenLoosened(paths, false)): Workspace {
    // A run killed mid-write leaves its staged files behind; they go on the next start (files of a live
    // process, named with its pid, are left alone).
    for (const d of [paths.root, paths.caDir, paths.crlDir, paths.certDir, paths.rejectsDir]) sweepStaleTemps(d);
    // The audit log's records are stamped with the workspace's clock (the actor stays the OS user).
    store.setAuditContext({ now: () => clock.now() });
    return new Workspace(paths, config, store, clock, loosened);
  }

  /**
   * Makes an existing workspace owner-only: the root and its directories 0700, the store 0600 (workspaces
   * made before this was the rule). Files already published under ca/ and crl/ are left as they are.
   */
  restrictPermissions(): void {
    for (const d of [this.paths.root, this.paths.caDir, this.paths.crlDir, this.paths.certDir, this.paths.rejectsDir]) {
      if (existsSync(d)) chmodSync(d, DIR_MODE);
    }
    if (this.config.store === "sqlite") ownerOnlyStore(this.paths.db);
  }

  async close(): Promise<void> {
    try {
      await this.store.close();
    } finally {
      this.#rememberKeyWrap();
    }
  }

  /**
   * Names the key-wrap parameters this run had to derive a KEK for in the workspace's hint file, so that the next
   * run's launcher derives it while the program loads (bin/early-kek.cjs). Only a hint: the salt and count are in
   * every wrapped key anyway, and a wrong or missing hint costs one wasted derivation, so a failure to write it is
   * no error.
   */
  #rememberKeyWrap(): void {
    const p = takeDerivedKeyWrap();
    if (!p) return;
    const text = `${JSON.stringify({ salt: Buffer.from(p.salt).toString("base64"), iterations: p.iterations })}\n`;
    const file = join(this.paths.root, KEY_WRAP_HINT_FILE);
    // Read as any file that must be regular (pki/regular-file.ts): a FIFO or a link to a device at the hint's path
    // neither hangs nor floods the close; anything but the same hint is replaced below.
    try {
      const sameSize = (st: { size: number }) => {
        if (st.size !== text.length) throw new Error("another hint");
      };
      if (readRegularFile(file, { accept: sameSize }).bytes.equals(Buffer.from(text))) return;
    } catch {
      // none, another one, or not a regular file: written below
    }
    try {
      if (existsSync(this.paths.root)) writeFileAtomic(file, text);
    } catch {
      // a read-only or vanished workspace: the next run derives its KEK after loading, as before
    }
  }
}
