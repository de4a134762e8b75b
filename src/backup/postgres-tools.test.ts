/**
 * What a failed pg_dump / pg_restore / psql puts into ERR_BACKUP_TOOL: the tool, how it ended and its error lines,
 * never the row values PostgreSQL quotes in DETAIL and CONTEXT (a resident's code and four items).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { usePostgres } from "../../test/use-postgres.js";
import { isJpkiError } from "../errors.js";
import { PostgresStore } from "../store/postgres.js";
import { dumpPostgres, findPgTools, libpqEnv, restorePostgres, toolErrorLines } from "./postgres-tools.js";

const server = usePostgres();

const CODE = "12345678906";
const NAME = "山田　太郎";
const ADDRESS = "東京都千代田区千代田１番１号";

async function sql(url: string, text: string): Promise<void> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    await c.query(text);
  } finally {
    await c.end();
  }
}

/**
 * Dumps a database made by `schema` (given its name) and restores the dump into a new one: the restore's error, and
 * whether the new database was left without the table.
 */
async function failedRestore(schema: (db: string) => string): Promise<{ e: unknown; untouched: boolean }> {
  const source = await server.createDatabase();
  await sql(source, schema(new URL(source).pathname.slice(1)));
  const dump = join(mkdtempSync(join(tmpdir(), "jpki-pgtools-")), "residents.pgdump");
  execFileSync(findPgTools(0).pgDump, ["--format=custom", "--no-password", `--file=${dump}`], { env: { ...process.env, ...libpqEnv(source).env } });
  const target = await server.createDatabase();
  const e = await restorePostgres(target, dump, { clean: false, finalSql: "SELECT 1" }).then(
    () => undefined,
    (x: unknown) => x,
  );
  const c = new pg.Client({ connectionString: target });
  await c.connect();
  try {
    return { e, untouched: (await c.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_class WHERE relname = 'residents'")).rows[0]!.n === 0 };
  } finally {
    await c.end();
  }
}

/** The error's message, details and everything inspect shows of it (its cause too) hold no value of the row. */
function expectNoRowValues(e: unknown): void {
  const err = e as Error & { details?: unknown };
  const everything = `${err.message} ${JSON.stringify(err.details ?? {})} ${inspect(err, { depth: 5 })}`;
  for (const value of [CODE, NAME, ADDRESS, "山田", "東京都", "131016", "1980-12-31"]) expect(everything).not.toContain(value);
}

describe("a failed restore's ERR_BACKUP_TOOL", () => {
  // Real failures whose psql output quotes a resident's row. The dump's table holds a rule that holds in the database
  // it was dumped from and not in any other (current_database()), so the restore into a new one fails on the row.

  // The row is long (as a certificate's DER is), so that its DETAIL and CONTEXT are longer than a tail of the output.
  it("names psql and that it failed, and quotes none of the row a CHECK refused (DETAIL: Failing row contains, CONTEXT: COPY … line)", async () => {
    const { e, untouched } = await failedRestore(
      (db) => `CREATE TABLE residents (resident_code text PRIMARY KEY, municipality_code text NOT NULL, name text NOT NULL, address text NOT NULL,
                 birth_date text NOT NULL, note text NOT NULL, CHECK (current_database() = '${db}'));
               INSERT INTO residents VALUES ('${CODE}', '131016', '${NAME}', '${ADDRESS}', '1980-12-31', repeat('x', 6000))`,
    );
    expect(isJpkiError(e, "ERR_BACKUP_TOOL")).toBe(true);
    expectNoRowValues(e);
    expect((e as Error).message).toMatch(/^psql failed \(exit \d+\): ERROR: new row for relation "…" violates check constraint "…" \(/);
    expect(untouched).toBe(true);
  });

  it("quotes none of a key a unique index found twice (DETAIL: Key (…)=(…) is duplicated)", async () => {
    // the key is the code's first 11 characters everywhere but in the source database, where two rows differ in it
    const { e, untouched } = await failedRestore(
      (db) => `CREATE FUNCTION public.jpki_test_key(c text) RETURNS text IMMUTABLE LANGUAGE sql AS
                 $$ SELECT CASE WHEN current_database() = '${db}' THEN c ELSE left(c, 11) END $$;
               CREATE TABLE residents (resident_code text NOT NULL, address text NOT NULL);
               INSERT INTO residents VALUES ('${CODE}', '${ADDRESS}'), ('${CODE}-2', '${ADDRESS}');
               CREATE UNIQUE INDEX residents_key ON residents (public.jpki_test_key(resident_code))`,
    );
    expect(isJpkiError(e, "ERR_BACKUP_TOOL")).toBe(true);
    expectNoRowValues(e);
    expect((e as Error).message).toMatch(/^psql failed \(exit \d+\): ERROR: could not create unique index "…" \(/);
    expect(untouched).toBe(true);
  });
});

describe("a backup whose server goes away while pg_dump runs", () => {
  it("is a typed error, ERR_STORE_UNREACHABLE, not an uncaught 'error' event that ends the process with a stack trace", async () => {
    // The backup's own session idles in its snapshot transaction while pg_dump runs. pg_dump is held at a table
    // lock meanwhile, the backup's session is ended as a server restart ends it (pg_terminate_backend: FATAL 57P01
    // on the idle connection), then pg_dump is let go: it finishes, and the backup goes on to its COMMIT on the
    // lost connection.
    const url = await server.createDatabase();
    await (await PostgresStore.open(url, { create: true })).close();
    const locker = new pg.Client({ connectionString: url });
    const watch = new pg.Client({ connectionString: url });
    await locker.connect();
    await watch.connect();
    try {
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE residents IN ACCESS EXCLUSIVE MODE");
      const dumped = dumpPostgres(url, join(mkdtempSync(join(tmpdir(), "jpki-pgtools-")), "store.pgdump")).then(
        () => undefined,
        (x: unknown) => x,
      );
      const dumpWaits = async () =>
        (await watch.query<{ n: number }>("SELECT count(*)::int AS n FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'pg_dump' AND wait_event_type = 'Lock'")).rows[0]!.n > 0;
      while (!(await dumpWaits())) await new Promise((r) => setTimeout(r, 20));
      await watch.query("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = current_database() AND application_name = 'jpki backup'");
      await locker.query("COMMIT");
      const e = await dumped;
      expect(e).toMatchObject({ code: "ERR_STORE_UNREACHABLE", details: { reason: "network" } });
      expect((e as Error).message).toContain("while backing up the store");
    } finally {
      await locker.end();
      await watch.end();
    }
  });

  it("a server that cannot be reached at all is ERR_STORE_UNREACHABLE, the password in no message", async () => {
    const url = `postgresql://jpki:s3cret-pw@localhost/postgres?host=${encodeURIComponent(join(tmpdir(), "no-such-socket-dir"))}`;
    const e = await dumpPostgres(url, join(tmpdir(), "never.pgdump")).then(
      () => undefined,
      (x: unknown) => x,
    );
    expect(e).toMatchObject({ code: "ERR_STORE_UNREACHABLE", details: { reason: "network" } });
    expect(`${(e as Error).message} ${JSON.stringify((e as { details?: unknown }).details)}`).not.toContain("s3cret-pw");
  });
});

describe("the error lines of a tool's output", () => {
  // psql's stderr verbatim (PostgreSQL 15, Debian 15.18): the first three from the CHECK test above (before it had
  // its long column), the last three from psql running `COPY residents FROM stdin` into a table already holding the key.
  const captured = [
    `psql:<stdin>:46: ERROR:  new row for relation "residents" violates check constraint "residents_check"`,
    `DETAIL:  Failing row contains (${CODE}, 131016, ${NAME}, ${ADDRESS}, 1980-12-31).`,
    `CONTEXT:  COPY residents, line 1: "${CODE}\t131016\t${NAME}\t${ADDRESS}\t1980-12-31"`,
    `psql:<stdin>:5: ERROR:  duplicate key value violates unique constraint "residents_pkey"`,
    `DETAIL:  Key (resident_code)=(${CODE}) already exists.`,
    `CONTEXT:  COPY residents, line 1`,
  ].join("\n");

  it("keeps the error lines in PostgreSQL's words and drops DETAIL, CONTEXT and every value", () => {
    expect(toolErrorLines(captured)).toEqual([
      `ERROR: new row for relation "…" violates check constraint "…"`,
      `ERROR: duplicate key value violates unique constraint "…"`,
    ]);
  });

  // Written after PostgreSQL's and the tools' message forms (not captured): values quoted, bytes and numbers bare.
  it("leaves nothing of a value in a quote, in parentheses or in the bytes of an encoding error, and keeps the tools' own error lines", () => {
    const lines = [
      `psql:<stdin>:7: ERROR:  invalid input syntax for type date: "1980-12-31x"`,
      `psql:<stdin>:8: ERROR:  value "(${CODE}" is out of range for type integer`,
      `psql:<stdin>:9: ERROR:  invalid byte sequence for encoding "UTF8": 0xe5 0xb1`,
      `pg_dump: error: query failed: ERROR:  permission denied for table residents`,
      `pg_dump: detail: Query was: LOCK TABLE public.residents IN ACCESS SHARE MODE`,
      `pg_restore: error: could not read input file: end of file`,
    ].join("\n");
    expect(toolErrorLines(lines, 10)).toEqual([
      `ERROR: invalid input syntax for type date: "…"`,
      `ERROR: value "…" is out of range for type integer`,
      `ERROR: invalid byte sequence for encoding "…": … …`,
      `error: query failed: ERROR:  permission denied for table residents`,
      `error: could not read input file: end of file`,
    ]);
  });

  // A value holding a double quote of its own splits its span, and what stands between its quotes is taken for
  // PostgreSQL's wording: numbers and non-ASCII text are masked there too, so of the four items none survives.
  it("leaves no digit and no Japanese text of a value whose own quotes split its span", () => {
    const kept = toolErrorLines(`psql:<stdin>:7: ERROR:  invalid input syntax for type date: "${NAME}" ${ADDRESS} "${CODE}" 1980-12-31"`).join("\n");
    for (const value of [CODE, "山田", "太郎", "東京都", "千代田", "１", "1980", "12", "31"]) expect(kept).not.toContain(value);
    expect(kept).toMatch(/^ERROR: invalid input syntax for type date: "…"/);
  });

  it("keeps no line of a report in another language (its severity is translated)", () => {
    expect(toolErrorLines(`psql:<stdin>:45: エラー:  重複したキー値は一意性制約"residents_pkey"違反となります\n詳細:  キー (resident_code)=(${CODE}) はすでに存在します。`)).toEqual([]);
  });
});

describe("the PostgreSQL tools' environment", () => {
  it("holds none of jpki's secrets (CA passphrase, token PIN, verifier token, JPKI_STORE): pg_dump gets the libpq variables only", async () => {
    // pg_dump is held at a table lock while its environment is read from /proc (found by its unique --file).
    const url = await server.createDatabase();
    await (await PostgresStore.open(url, { create: true })).close();
    const secrets = { JPKI_PASSPHRASE: "ca-passphrase-x1", JPKI_OCSP_PASSPHRASE: "ocsp-passphrase-x2", JPKI_PKCS11_PIN: "token-pin-x3", JPKI_VERIFIER_TOKEN: "jpkiv_token-x4", JPKI_STORE: "postgres://u:store-pw-x5@h/db" };
    const saved = { ...process.env };
    const locker = new pg.Client({ connectionString: url });
    await locker.connect();
    let env = "";
    try {
      await locker.query("BEGIN");
      await locker.query("LOCK TABLE residents IN ACCESS EXCLUSIVE MODE");
      Object.assign(process.env, secrets);
      const file = join(mkdtempSync(join(tmpdir(), "jpki-pgtools-")), "env-probe.pgdump");
      const dumped = dumpPostgres(url, file);
      const pid = async (): Promise<string | undefined> => {
        for (;;) {
          for (const p of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
            try {
              if (readFileSync(`/proc/${p}/cmdline`, "latin1").includes(file)) return p;
            } catch {
              // gone meanwhile
            }
          }
          await new Promise((r) => setTimeout(r, 20));
        }
      };
      env = readFileSync(`/proc/${await pid()}/environ`, "utf8");
      for (const k of Object.keys(secrets)) delete process.env[k];
      await locker.query("COMMIT");
      await dumped;
    } finally {
      for (const k of Object.keys(secrets)) if (!(k in saved)) delete process.env[k];
      Object.assign(process.env, saved);
      await locker.end();
    }
    expect(env).toMatch(/(^|\0)PGDATABASE=/); // the connection reaches it
    for (const value of Object.values(secrets)) expect(env).not.toContain(value);
  });
});
