/**
 * The messages one `jpki crl generate` of a CA sends its PostgreSQL store (Client#query calls: a Query of several
 * statements is one, a COPY is one): each is a round trip, and on a loaded host a scheduling delay of the backend.
 * The command is run in this process as the CLI runs it; the count is exact, so a read or statement added to the
 * path is seen here and has to be argued for.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import pg from "pg";
import { afterAll, describe, expect, it, vi } from "vitest";
import { runInProcess } from "../../test/cli-in-process.js";
import { usePostgres } from "../../test/use-postgres.js";
import { initCas } from "../ca/manage.js";
import { prefecture } from "../ca/prefectures.js";
import { Workspace } from "../workspace/workspace.js";

const server = usePostgres();
const dirs: string[] = [];
afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

/** What a message was, for the failure's report: its statement's first words, or the class of a submittable that keeps them (a COPY). */
function label(arg: unknown): string {
  const text = typeof arg === "string" ? arg : (arg as { text?: unknown }).text;
  return text === undefined ? String((arg as object).constructor.name) : String(text).replace(/\s+/g, " ").slice(0, 120);
}

describe("jpki crl generate on PostgreSQL", () => {
  it("a CA's full CRL in 16 messages: the links read once before the CA and once after its reservation, the revocation log's total from its block heads, the audit checkpoint one statement after the head's read", async () => {
    const root = mkdtempSync(join(tmpdir(), "jpki-crl-messages-"));
    dirs.push(root);
    const dir = join(root, "ws");
    const url = await server.createDatabase();
    const ws = await Workspace.createAsync(dir, { storeUrl: url, config: { store: "postgres" } });
    try {
      await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
    } finally {
      await ws.close();
    }
    const generate = () => runInProcess(["--workspace", dir, "crl", "generate", "--ca", "13-sig"], { env: { JPKI_PASSPHRASE: "pw", JPKI_STORE: url }, cwd: root });
    // the first run writes what a CA's first CRL leaves (its directory, the CA index); the count is of the next
    expect((await generate()).code).toBe(0);
    const spy = vi.spyOn(pg.Client.prototype, "query");
    let sent: string[];
    let run: Awaited<ReturnType<typeof generate>>;
    try {
      run = await generate();
      sent = spy.mock.calls.map((c) => label(c[0]));
    } finally {
      spy.mockRestore();
    }
    expect(run.stderr).toBe("");
    expect(run.code).toBe(0);
    expect(sent.filter((s) => s.startsWith("SELECT * FROM ca_links")), sent.join("\n")).toHaveLength(2);
    expect(sent.filter((s) => s.includes("audit_checkpoints")), sent.join("\n")).toHaveLength(1);
    expect(sent.filter((s) => /^(BEGIN|COMMIT)/.test(s)), sent.join("\n")).toEqual(["BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY", "COMMIT", "BEGIN ISOLATION LEVEL READ COMMITTED", "COMMIT"]);
    expect(sent.filter((s) => s === "CopyOut"), sent.join("\n")).toHaveLength(1); // the log's block heads; no block to read (none revoked)
    expect(sent, sent.join("\n")).toHaveLength(16);
  });
});
