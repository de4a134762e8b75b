/**
 * A workspace: one directory holding the store, the configuration and the published artefacts.
 *   jpki.db       the embedded store (SQLite)
 *   config.json   WorkspaceConfig
 *   ca/           CA certificates (PEM and DER) for openssl and verifiers
 *   crl/          published CRLs
 *   certs/        issued certificates written by the CLI
 *   rejects/      rejected input records
 * Everything is owner-only (directories 0700, files 0600) whatever the umask: the store holds the encrypted
 * CA keys and personal data.
 */
import { chmodSync, closeSync, existsSync, mkdirSync, openSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { JpkiError } from "../errors.js";
import { systemClock, type Clock } from "../pki/clock.js";
import { SqliteStore } from "../store/sqlite.js";
import { sweepStaleTemps } from "../store/staging.js";
import { writeFileAtomic } from "../store/files.js";
import type { Store } from "../store/types.js";
import { parseConfig, type WorkspaceConfig } from "./config.js";

export interface WorkspacePaths {
  readonly root: string;
  readonly db: string;
  readonly config: string;
  readonly caDir: string;
  readonly crlDir: string;
  readonly certDir: string;
  readonly rejectsDir: string;
}

export function workspacePaths(root: string): WorkspacePaths {
  const r = resolve(root);
  return { root: r, db: join(r, "jpki.db"), config: join(r, "config.json"), caDir: join(r, "ca"), crlDir: join(r, "crl"), certDir: join(r, "certs"), rejectsDir: join(r, "rejects") };
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

export class Workspace {
  readonly paths: WorkspacePaths;
  readonly config: WorkspaceConfig;
  readonly store: Store;
  readonly clock: Clock;

  private constructor(paths: WorkspacePaths, config: WorkspaceConfig, store: Store, clock: Clock) {
    this.paths = paths;
    this.config = config;
    this.store = store;
    this.clock = clock;
  }

  /** Creates the workspace if absent (config merged over defaults), or opens it. */
  static create(root: string, opts: { config?: Partial<WorkspaceConfig>; clock?: Clock } = {}): Workspace {
    const paths = workspacePaths(root);
    if (!existsSync(paths.config)) {
      // Validate before touching the disk: a bad setting leaves no half-made workspace behind.
      const config = parseConfig(opts.config ?? {});
      ownerOnlyDir(paths.root);
      for (const d of [paths.caDir, paths.crlDir, paths.certDir, paths.rejectsDir]) ownerOnlyDir(d);
      writeFileAtomic(paths.config, JSON.stringify(config, null, 2) + "\n");
    }
    return Workspace.#open(paths, true, opts.clock);
  }

  /** Opens an existing workspace; ERR_WORKSPACE_MISSING when there is none, ERR_WORKSPACE_CORRUPT when damaged. */
  static open(root: string, opts: { clock?: Clock } = {}): Workspace {
    const paths = workspacePaths(root);
    if (!existsSync(paths.db) && !existsSync(paths.config)) {
      throw new JpkiError("ERR_WORKSPACE_MISSING", `no jpki workspace at ${paths.root}: run 'jpki ca init' (or 'jpki demo'), or pass --workspace / set JPKI_HOME`);
    }
    return Workspace.#open(paths, false, opts.clock);
  }

  static #open(paths: WorkspacePaths, create: boolean, clock: Clock = systemClock): Workspace {
    let raw: unknown;
    try {
      raw = JSON.parse(readFileSync(paths.config, "utf8"));
    } catch (e) {
      throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${paths.config} is missing or not valid JSON: restore it or recreate the workspace`, { cause: e });
    }
    const config = parseConfig(raw);
    if (!create && !existsSync(paths.db)) {
      throw new JpkiError("ERR_WORKSPACE_CORRUPT", `${paths.db} is missing although ${paths.config} exists: restore the store from a backup`);
    }
    if (create && !existsSync(paths.db)) {
      // Made here, 0600, before SQLite creates it under the umask; SQLite gives -wal/-shm the same mode.
      closeSync(openSync(paths.db, "a", FILE_MODE));
      chmodSync(paths.db, FILE_MODE);
    }
    const store = SqliteStore.open(paths.db, { create });
    if (create) ownerOnlyStore(paths.db);
    // A run killed mid-write leaves its staged files behind; they go on the next start (files of a live
    // process, named with its pid, are left alone).
    for (const d of [paths.root, paths.caDir, paths.crlDir, paths.certDir, paths.rejectsDir]) sweepStaleTemps(d);
    return new Workspace(paths, config, store, clock);
  }

  /**
   * Makes an existing workspace owner-only: the root and its directories 0700, the store 0600 (workspaces
   * made before this was the rule). Files already published under ca/ and crl/ are left as they are.
   */
  restrictPermissions(): void {
    for (const d of [this.paths.root, this.paths.caDir, this.paths.crlDir, this.paths.certDir, this.paths.rejectsDir]) {
      if (existsSync(d)) chmodSync(d, DIR_MODE);
    }
    ownerOnlyStore(this.paths.db);
  }

  close(): Promise<void> {
    return this.store.close();
  }
}
