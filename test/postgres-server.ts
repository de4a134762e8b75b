/**
 * A throwaway PostgreSQL server for the store tests and the benchmarks (bench/backends.ts): initdb into a
 * temporary directory, listening only on a Unix socket in that directory (no TCP port), fsync off, trust
 * authentication; stopped and removed by `stop()`. Uses Debian's server binaries
 * (/usr/lib/postgresql/<version>/bin, or JPKI_PG_BIN); `.ci/run` installs them.
 *
 * initdb and postgres refuse to run as root, and the tests do run as root in CI: then the data directory
 * belongs to the `postgres` system user and the server runs as that user (root can still reach the socket).
 * As anyone else the server simply runs as the current user.
 */
import { execFile, execFileSync } from "node:child_process";
import { appendFileSync, chmodSync, chownSync, existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import pg from "pg";

const run = promisify(execFile);
const SUPERUSER = "jpki";

export interface PostgresTestServer {
  /** the socket directory: `host` for node-postgres */
  readonly socketDir: string;
  /** a connection string for a new, empty database */
  createDatabase(): Promise<string>;
  stop(): Promise<void>;
}

/** The newest installed server's bin directory. */
function binDir(): string {
  const fromEnv = process.env.JPKI_PG_BIN;
  if (fromEnv) return fromEnv;
  const base = "/usr/lib/postgresql";
  const versions = existsSync(base) ? readdirSync(base).filter((v) => existsSync(join(base, v, "bin", "initdb"))) : [];
  versions.sort((a, b) => Number(b) - Number(a));
  if (!versions.length) {
    throw new Error("no PostgreSQL server binaries under /usr/lib/postgresql: install Debian's postgresql (.ci/run does) or set JPKI_PG_BIN");
  }
  return join(base, versions[0]!, "bin");
}

/** Who runs the server: the `postgres` user when we are root, else ourselves. */
function serverUser(): { uid: number; gid: number } | undefined {
  if (process.getuid?.() !== 0) return undefined;
  const id = (flag: string) => Number(execFileSync("id", [flag, "postgres"], { encoding: "utf8" }).trim());
  return { uid: id("-u"), gid: id("-g") };
}

export function connectionString(socketDir: string, database: string): string {
  return `postgresql://${SUPERUSER}@localhost/${encodeURIComponent(database)}?host=${encodeURIComponent(socketDir)}`;
}

export interface StartPostgresOptions {
  /** extra postgresql.conf settings (the benchmarks give the server more memory than the tests need) */
  readonly settings?: Readonly<Record<string, string | number>>;
}

export async function startPostgres(opts: StartPostgresOptions = {}): Promise<PostgresTestServer> {
  const bin = binDir();
  const as = serverUser();
  const root = mkdtempSync(join(tmpdir(), "jpki-pg-"));
  const data = join(root, "data");
  const log = join(root, "server.log");
  if (as) chownSync(root, as.uid, as.gid);
  chmodSync(root, 0o700);
  // execFile with uid/gid: the child runs as the server user, with a working directory and HOME it can read.
  const child = { cwd: root, env: { ...process.env, HOME: root, LC_ALL: "C" }, ...(as ?? {}) };
  let started = false;
  try {
    await run(join(bin, "initdb"), ["-D", data, "-U", SUPERUSER, "--auth=trust", "--encoding=UTF8", "--no-locale", "--no-sync"], child);
    appendFileSync(
      join(data, "postgresql.conf"),
      [
        "",
        "# jpki tests: a Unix socket in this directory only, and no durability",
        "listen_addresses = ''",
        `unix_socket_directories = '${root}'`,
        "fsync = off",
        "synchronous_commit = off",
        "full_page_writes = off",
        "max_connections = 200",
        ...Object.entries(opts.settings ?? {}).map(([k, v]) => `${k} = ${typeof v === "number" ? v : `'${v}'`}`),
        "",
      ].join("\n"),
    );
    await run(join(bin, "pg_ctl"), ["-D", data, "-l", log, "-w", "-t", "60", "start"], child);
    started = true;
  } catch (e) {
    if (started) await run(join(bin, "pg_ctl"), ["-D", data, "-m", "immediate", "-w", "stop"], child).catch(() => undefined);
    rmSync(root, { recursive: true, force: true });
    throw e;
  }
  let n = 0;
  return {
    socketDir: root,
    async createDatabase() {
      const name = `jpki_test_${process.pid}_${++n}`;
      const admin = new pg.Client({ connectionString: connectionString(root, "postgres") });
      await admin.connect();
      try {
        await admin.query(`CREATE DATABASE ${name}`);
      } finally {
        await admin.end();
      }
      return connectionString(root, name);
    },
    async stop() {
      try {
        await run(join(bin, "pg_ctl"), ["-D", data, "-m", "fast", "-w", "stop"], child);
      } finally {
        rmSync(root, { recursive: true, force: true });
      }
    },
  };
}
