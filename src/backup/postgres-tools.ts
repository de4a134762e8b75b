/**
 * The PostgreSQL side of backup and restore: `pg_dump -Fc` (custom format) of the store's database from one
 * snapshot the backup also reads its metadata in, and `pg_restore` into the target database.
 *
 * Why pg_dump and not the store-independent dump of store/copy.ts: pg_dump is PostgreSQL's own consistent
 * online backup (one REPEATABLE READ snapshot, writers never wait), it keeps everything as PostgreSQL holds
 * it — the delta CRL snapshots (`delta_snapshot`), sequence positions, indexes — which a logical copy
 * recomputes or drops (a copy's full CRLs are no delta bases, types.ts DumpCrl), and operators know how to
 * inspect and restore its files with standard tools. store/copy.ts keeps writers out while it runs, which an
 * online backup must not.
 *
 * The connection string may hold a password: it is never put on a command line (every user of the host sees
 * those in `ps`). The child gets it as libpq environment variables (PGHOST, PGUSER, PGPASSWORD, …), and
 * pg_restore's `-d` names the database only.
 */
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createReadStream, existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { StringDecoder } from "node:string_decoder";
import { childEnv } from "../child-env.js";
import { JpkiError } from "../errors.js";
import { RESTORE_PENDING, UNVERIFIED_COPY, connectLoneClient, parsePostgresUrl, postgresError, restoreIncomplete, unverifiedCopy } from "../store/postgres.js";
import { storeRetired } from "../store/retirement.js";
import type { ManifestCrlNumber } from "./manifest.js";

/** libpq environment variables for the parts of a postgres:// URL that have one. */
const QUERY_ENV: Readonly<Record<string, string>> = {
  host: "PGHOST",
  hostaddr: "PGHOSTADDR",
  port: "PGPORT",
  user: "PGUSER",
  password: "PGPASSWORD",
  dbname: "PGDATABASE",
  sslmode: "PGSSLMODE",
  sslrootcert: "PGSSLROOTCERT",
  sslcert: "PGSSLCERT",
  sslkey: "PGSSLKEY",
  sslcrl: "PGSSLCRL",
  connect_timeout: "PGCONNECT_TIMEOUT",
  application_name: "PGAPPNAME",
  target_session_attrs: "PGTARGETSESSIONATTRS",
  passfile: "PGPASSFILE",
};

/**
 * The libpq environment a postgres:// URL stands for, and its database name. A parameter libpq has no
 * variable for is refused (ERR_BACKUP_TOOL) rather than silently dropped.
 */
export function libpqEnv(url: string): { env: Record<string, string>; database: string } {
  const parsed = parsePostgresUrl(url);
  if (!parsed) throw new JpkiError("ERR_USAGE", "JPKI_STORE is not a valid postgres:// URL");
  const u = parsed.url;
  const env: Record<string, string> = {};
  if (u.hostname && !parsed.hostless) env.PGHOST = decodeURIComponent(u.hostname);
  if (u.port) env.PGPORT = u.port;
  if (u.username) env.PGUSER = decodeURIComponent(u.username);
  if (u.password) env.PGPASSWORD = decodeURIComponent(u.password);
  const path = decodeURIComponent(u.pathname.replace(/^\//, ""));
  if (path) env.PGDATABASE = path;
  for (const [k, v] of u.searchParams) {
    const name = QUERY_ENV[k];
    if (!name) throw new JpkiError("ERR_BACKUP_TOOL", `the connection parameter ${k} in JPKI_STORE cannot be passed to pg_dump/pg_restore: set it in the environment (libpq's PG* variables) instead`);
    env[name] = v;
  }
  const database = env.PGDATABASE ?? env.PGUSER ?? process.env.PGDATABASE ?? process.env.USER ?? "";
  if (!database) throw new JpkiError("ERR_USAGE", "JPKI_STORE names no database");
  return { env, database };
}

/**
 * pg_dump and pg_restore able to talk to a server of major version `serverMajor`: pg_dump refuses a server
 * newer than itself, so the newest of the installed ones that is at least that version (Debian keeps each
 * version's binaries under /usr/lib/postgresql/<major>/bin; JPKI_PG_BIN names another directory).
 */
export function findPgTools(serverMajor: number, env: NodeJS.ProcessEnv = process.env): { pgDump: string; pgRestore: string; psql: string; major: number } {
  const dirs: Array<{ dir: string; major: number }> = [];
  if (env.JPKI_PG_BIN) dirs.push({ dir: env.JPKI_PG_BIN, major: Number.POSITIVE_INFINITY });
  const base = "/usr/lib/postgresql";
  if (existsSync(base)) {
    for (const v of readdirSync(base)) if (/^\d+$/.test(v)) dirs.push({ dir: join(base, v, "bin"), major: Number(v) });
  }
  const fit = dirs
    .filter((d) => d.major >= serverMajor && ["pg_dump", "pg_restore", "psql"].every((t) => existsSync(join(d.dir, t))))
    .sort((a, b) => a.major - b.major)[0];
  if (!fit) {
    throw new JpkiError(
      "ERR_BACKUP_TOOL",
      `no pg_dump/pg_restore/psql for a PostgreSQL ${serverMajor} server under /usr/lib/postgresql/<version>/bin: install the postgresql-client-${serverMajor} package (or newer), or set JPKI_PG_BIN to the directory holding them`,
    );
  }
  return { pgDump: join(fit.dir, "pg_dump"), pgRestore: join(fit.dir, "pg_restore"), psql: join(fit.dir, "psql"), major: Number.isFinite(fit.major) ? fit.major : serverMajor };
}

/**
 * A line of a failed tool's stderr as it may go into an error message, or undefined: a restore's psql quotes the
 * rows the server refused (`DETAIL:  Key (resident_code)=(…) already exists`, `Failing row contains (…)`,
 * `CONTEXT:  COPY residents, line 17: "<the whole row>"`), a resident's code and four items among them.
 *
 * The rule is a whitelist, the simplest to make airtight: only lines whose severity is ERROR, FATAL or PANIC
 * (the server's) or `error:` (the tools' own) are kept, and every other line is dropped unread — DETAIL, CONTEXT,
 * HINT, LINE, STATEMENT, a tool's `detail:`, a continuation, a message in another language, whatever a new version
 * adds. A blacklist of the lines known to quote rows would pass the one nobody foresaw. In a kept line,
 * PostgreSQL's message style quotes every inserted value that may hold words and leaves only numbers bare, so
 * each double-quoted span (to the next quote, or to the end of the line), each parenthesised span, each number
 * (hex bytes of an encoding error among them) and each run of non-ASCII characters (the four items are
 * Japanese text) becomes "…": what remains is PostgreSQL's own wording, and names like a table's are lost with
 * the values. A value holding a double quote of its own would split its span, leaving what stands between its
 * quotes outside: even then no digit and no Japanese text survives, and no text column (name, address) ever gets
 * into an ERROR line, as only a value its type's input refuses does and text refuses none.
 * The server's log keeps the whole report, readable by those who may read the data itself; nothing of it is
 * written to a file here, since a failed backup or restore keeps nothing it wrote (the partial directory, the
 * staging directory and the open transaction all go), and this module knows no workspace to put it in.
 */
function toolErrorLine(line: string): string | undefined {
  // `psql:<stdin>:45: ERROR:  …`, `pg_restore: error: …`, `pg_dump: error: query failed: ERROR:  …`
  const m = /^(?:psql:[^\s:]*:\d+: |(?:pg_dump|pg_restore|psql): )?((?:ERROR|FATAL|PANIC):\s|error:\s)(.*)$/.exec(line);
  if (!m) return undefined;
  const text = m[2]!
    .replace(/"[^"]*(?:"|$)/g, '"…"')
    .replace(/\([^)]*(?:\)|$)/g, "(…)")
    .replace(/0x[0-9a-f]+|\d+/gi, "…")
    .replace(/[^\x00-\x7f]+/g, "…");
  return `${m[1]!.trimEnd()} ${text.trim()}`;
}

/**
 * The last error lines (toolErrorLine) of a tool's stderr, taken line by line as it comes: a tail of the raw output
 * lost the ERROR line behind a DETAIL quoting a long row (a certificate's DER), and held the row in memory.
 */
class ToolErrors {
  #decoder = new StringDecoder("utf8");
  #partial = "";
  #lines: string[] = [];

  write(chunk: Buffer): void {
    const parts = (this.#partial + this.#decoder.write(chunk)).split(/\r?\n/);
    // the severity is at a line's start: the rest of a very long line is not needed to judge it
    this.#partial = parts.pop()!.slice(0, 2000);
    for (const p of parts) this.#take(p);
  }

  /** The last `max` error lines, the unterminated last line included. */
  lines(max = 3): string[] {
    if (this.#partial) this.#take(this.#partial + this.#decoder.end());
    this.#partial = "";
    return this.#lines.slice(-max);
  }

  #take(line: string): void {
    const kept = toolErrorLine(line);
    if (kept !== undefined) this.#lines = [...this.#lines.slice(-9), kept];
  }
}

/** The error lines of a tool's whole stderr (ToolErrors). */
export function toolErrorLines(stderr: string, max = 3): string[] {
  const t = new ToolErrors();
  t.write(Buffer.from(stderr, "utf8"));
  return t.lines(max);
}

/** A failed tool's ERR_BACKUP_TOOL: the tool, how it ended, and its error lines as toolErrorLine keeps them. */
function toolFailed(tool: string, how: string, errors: ToolErrors, cause?: Error): JpkiError {
  const lines = errors.lines();
  return new JpkiError(
    "ERR_BACKUP_TOOL",
    `${tool} failed (${how})${lines.length ? `: ${lines.join(" | ")}` : ""} (names, values and details left out, as they may quote stored data; a server error's full report is in the PostgreSQL server's log)`,
    cause ? { cause } : {},
  );
}

/**
 * The environment of a PostgreSQL client tool: ours without jpki's own variables (child-env.ts), and the libpq
 * ones of the connection.
 */
export function toolEnv(libpq: Record<string, string>): Record<string, string> {
  return childEnv(libpq);
}

/** Runs a PostgreSQL client tool; ERR_BACKUP_TOOL with its error lines when it fails. */
function runTool(cmd: string, args: readonly string[], env: Record<string, string>): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, args, { env: toolEnv(env), stdio: ["ignore", "ignore", "pipe"] });
    const errors = new ToolErrors();
    child.stderr.on("data", (d: Buffer) => errors.write(d));
    child.on("error", (e) => reject(new JpkiError("ERR_BACKUP_TOOL", `cannot run ${cmd}: ${(e as NodeJS.ErrnoException).code ?? e.message}`, { cause: e })));
    // 'close', not 'exit': its stderr is all read by then
    child.on("close", (code, signal) => {
      if (code === 0) resolve();
      else reject(toolFailed(cmd.split("/").pop()!, signal ?? `exit ${code}`, errors));
    });
  });
}

/**
 * Dumps the store's database to `file` (custom format) from one snapshot, and reads in that same snapshot
 * what the manifest records: the schema version and the highest CRL numbers. Writers go on meanwhile.
 */
export async function dumpPostgres(url: string, file: string): Promise<{ schemaVersion: number; crlNumbers: ManifestCrlNumber[] }> {
  // The connection idles in its transaction while pg_dump runs: a server that goes away meanwhile (a restart)
  // fails the COMMIT after it, as a typed error (connectLoneClient), where it used to end the process.
  const client = await connectLoneClient(url, "jpki backup", "connecting to back the store up");
  try {
    const major = Math.floor(Number((await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]!.v) / 10000);
    const tools = findPgTools(major);
    // The snapshot pg_dump will use (--snapshot), exported by this transaction, which stays open until it is done.
    await client.query("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY");
    const snapshot = (await client.query<{ s: string }>("SELECT pg_export_snapshot() AS s")).rows[0]!.s;
    const meta = await client.query<{ key: string; value: string }>("SELECT key, value FROM meta WHERE key IN ('schema_version', $1, $2, 'retired')", [UNVERIFIED_COPY, RESTORE_PENDING]).catch((e: unknown) => {
      throw new JpkiError("ERR_WORKSPACE_CORRUPT", "the PostgreSQL database holds no jpki store (no meta table)", { cause: e });
    });
    const value = (key: string) => meta.rows.find((r) => r.key === key)?.value;
    // A 'jpki store copy' into this database that loaded it and never verified it (killed, or its read-back found
    // a mismatch; committed, even after backup.ts opened the workspace and found no mark): the dump would carry
    // the mark, so a restore of it would replace the target's tables with a store nobody checked against its
    // source, which the restore then cannot open. Refused here, in the snapshot pg_dump copies, as open refuses it.
    const unverified = value(UNVERIFIED_COPY);
    if (unverified !== undefined) throw unverifiedCopy(unverified);
    // A restore that has not finished with the store (its mark committed, even after backup.ts opened the workspace
    // and found none): the snapshot holds the backup's CRL numbering, below numbers published since, and a restore
    // of this dump would number from it. Read in the snapshot pg_dump copies, so no dump ever holds the mark.
    const pending = value(RESTORE_PENDING);
    if (pending !== undefined) throw restoreIncomplete(pending);
    // A store a 'jpki store copy' moved the workspace away from (its retirement committed, even after backup.ts
    // opened the workspace and found none): no longer the workspace's truth, so a dump of it would be a stale backup.
    const retired = value("retired");
    if (retired !== undefined) throw storeRetired(retired);
    const schemaVersion = Number(value("schema_version") ?? 0);
    const crlNumbers = (await client.query<{ ca_id: string; scope: string; highest: string }>(`SELECT ca_id, scope, max(number)::text AS highest FROM crls GROUP BY ca_id, scope ORDER BY ca_id, scope`)).rows.map(
      (r) => ({ caId: r.ca_id, scope: r.scope, highest: r.highest }),
    );
    const { env } = libpqEnv(url);
    await runTool(tools.pgDump, ["--format=custom", `--snapshot=${snapshot}`, "--no-password", `--file=${file}`], env);
    await client.query("COMMIT");
    return { schemaVersion, crlNumbers };
  } catch (e) {
    throw postgresError(e, "backing up the store");
  } finally {
    await client.end().catch(() => undefined);
  }
}

/** Whether the database holds any relation in its current schema (where the store keeps its tables). */
export async function postgresRestoreTarget(url: string): Promise<{ hasRecords: boolean; otherSessions: string[] }> {
  const client = await connectLoneClient(url, "jpki restore", "connecting to the PostgreSQL database to restore into");
  try {
    const n = (await client.query<{ n: string }>("SELECT count(*)::text AS n FROM pg_class WHERE relnamespace = current_schema()::regnamespace")).rows[0]!.n;
    // Every other client connected to this database, jpki or not: a jpki serve or watch among them would go on
    // with its own idea of the CRL numbering and publish numbers the restore moved past (see restore.ts). A session
    // of another role shows its backend_type (and address) only to superusers and pg_read_all_stats: without
    // that, a jpki serve on another host under its own role, or an operator's psql as postgres, showed as NULL and
    // was not counted. Its user id is visible to all, and a client's is never NULL (background processes' are).
    const others = await client.query<{ app: string; pid: number; role: string | null }>(
      `SELECT application_name AS app, pid, usename AS role FROM pg_stat_activity
       WHERE datname = current_database() AND pid <> pg_backend_pid()
         AND (backend_type = 'client backend' OR (backend_type IS NULL AND usesysid IS NOT NULL))
       ORDER BY pid`,
    );
    return {
      hasRecords: n !== "0",
      otherSessions: others.rows.map((r) => `${r.app || "(no application name)"} (pid ${r.pid}${r.role ? `, role ${r.role}` : ""})`),
    };
  } catch (e) {
    throw postgresError(e, "looking at the PostgreSQL database to restore into");
  } finally {
    await client.end().catch(() => undefined);
  }
}

/**
 * Restores a custom-format dump into the database `url` names, in one transaction that ends with `finalSql`
 * (restore.ts: the mark that the restore has not finished with the store, PostgresStore.restorePendingStatement):
 * a failure, or a kill at any moment, leaves the database as it was; once the tables are there, so is the mark.
 * With `clean`, what the dump holds is dropped first (the --force of a restore over a live store).
 *
 * pg_restore cannot run a statement of ours in its own transaction (`--single-transaction` commits as soon as it is
 * done), so it writes the SQL script of the restore (`--file=-`) and psql runs it on a session of ours: this
 * process writes BEGIN, relays the script, and writes `finalSql` and COMMIT only once pg_restore has exited
 * successfully. psql reaching the end of its input any other way (pg_restore failed, this process was killed)
 * ends the session with the transaction open, and the server rolls it back. A dump made by `jpki backup` holds no
 * large objects, the one thing whose script brings transaction statements of its own.
 *
 * With `expect`, COMMIT also waits for the archive's bytes to hash to what the manifest says. The archive is read
 * once, by this process, and fed to pg_restore's input: a dump swapped or rewritten after the backup was verified
 * (pg_restore read the file again by its name, unchecked) is rolled back as ERR_BACKUP_CORRUPT.
 */
export async function restorePostgres(url: string, file: string, opts: { clean: boolean; finalSql: string; expect?: { readonly sha256: string; readonly size: number; readonly name: string } }): Promise<void> {
  const client = await connectLoneClient(url, "jpki restore", "connecting to the PostgreSQL database to restore into");
  let major: number;
  try {
    major = Math.floor(Number((await client.query<{ v: string }>("SELECT current_setting('server_version_num') AS v")).rows[0]!.v) / 10000);
  } catch (e) {
    throw postgresError(e, "reading the PostgreSQL server's version");
  } finally {
    await client.end().catch(() => undefined);
  }
  const tools = findPgTools(major);
  const { env, database } = libpqEnv(url);
  // The archive on pg_restore's standard input (no file name): read sequentially, as a full restore without -j does.
  const restoreArgs = ["--no-owner", "--no-privileges", ...(opts.clean ? ["--clean", "--if-exists"] : []), "--file=-"];
  // The script's own settings (search_path '' among them) are reset before the final statement, which names its
  // table as the store does: in the connection's schema.
  const tail = `\n;\nRESET ALL;\n${opts.finalSql};\nCOMMIT;\n`;
  await new Promise<void>((resolve, reject) => {
    const childEnv = toolEnv(env);
    const restore = spawn(tools.pgRestore, restoreArgs, { env: childEnv, stdio: ["pipe", "pipe", "pipe"] });
    const digest = createHash("sha256");
    let size = 0;
    const archive = createReadStream(file);
    archive.on("data", (d) => {
      digest.update(d as Buffer);
      size += d.length;
    });
    // pg_restore gone before the end of the archive (it failed): its own exit says why
    restore.stdin.on("error", () => undefined);
    archive.on("error", (e) => {
      failed ??= new JpkiError("ERR_BACKUP_CORRUPT", `${opts.expect?.name ?? file} could not be read while it was restored: ${(e as Error).message}: nothing was restored`, { cause: e });
      restore.kill();
    });
    archive.pipe(restore.stdin);
    const psql = spawn(tools.psql, ["--no-psqlrc", "--quiet", "--set=ON_ERROR_STOP=1", `--dbname=${database}`, "--file=-"], { env: childEnv, stdio: ["pipe", "ignore", "pipe"] });
    const stderr = { pg_restore: new ToolErrors(), psql: new ToolErrors() };
    restore.stderr.on("data", (d: Buffer) => stderr.pg_restore.write(d));
    psql.stderr.on("data", (d: Buffer) => stderr.psql.write(d));
    // psql gone (it stopped at an error): what was still being written to it goes nowhere
    psql.stdin.on("error", () => undefined);
    restore.stdout.on("error", () => undefined);
    let failed: JpkiError | undefined;
    const ended = { pg_restore: false, psql: false };
    const end = (tool: "pg_restore" | "psql", how: string | undefined, cause?: Error) => {
      if (ended[tool]) return;
      ended[tool] = true;
      if (how !== undefined) {
        failed ??= toolFailed(tool, how, stderr[tool], cause);
        // the other one stops too; psql ends its input without COMMIT, and the server rolls the transaction back
        if (tool === "pg_restore") psql.stdin.end();
        else restore.kill();
      } else if (tool === "pg_restore") {
        // pg_restore has exited and its whole script has gone into psql's input: the mark, then COMMIT — once the
        // bytes it restored are known to be the archive the backup was verified with. pg_restore may stop before
        // the end of the file: the rest is read here for the digest (what it restored is a prefix of what was
        // hashed, in order).
        ended.pg_restore = false; // not ended for the promise until the digest is settled
        archive.unpipe();
        const settle = () => {
          if (ended.pg_restore) return;
          const x = opts.expect;
          if (!failed && x && (size !== x.size || digest.digest("hex") !== x.sha256)) {
            failed = new JpkiError("ERR_BACKUP_CORRUPT", `${x.name} changed while it was restored: nothing was restored`, { details: { file: x.name } });
          }
          if (failed) psql.stdin.end();
          else psql.stdin.end(tail);
          ended.pg_restore = true;
          if (ended.psql) failed ? reject(failed) : resolve();
        };
        if (archive.readableEnded || archive.destroyed) settle();
        else {
          archive.once("end", settle);
          archive.once("close", () => archive.readableEnded || settle());
          archive.resume();
        }
        return;
      }
      if (ended.pg_restore && ended.psql) {
        if (failed) reject(failed);
        else resolve();
      }
    };
    restore.on("error", (e) => end("pg_restore", (e as NodeJS.ErrnoException).code ?? e.message, e));
    psql.on("error", (e) => end("psql", (e as NodeJS.ErrnoException).code ?? e.message, e));
    // 'close': the process has exited and its output is all read
    restore.on("close", (code, signal) => end("pg_restore", code === 0 ? undefined : (signal ?? `exit ${code}`)));
    psql.on("close", (code, signal) => end("psql", code === 0 ? undefined : (signal ?? `exit ${code}`)));
    psql.stdin.write("BEGIN;\n");
    restore.stdout.pipe(psql.stdin, { end: false });
  });
}
