/**
 * One `jpki demo` per run and store backend, made by the global setups and copied by runDemo
 * (test/integration/helpers.ts) into each suite that only needs a demo workspace as its fixture. The demo makes
 * six CA keys and a dozen card keys (~6 s of CPU); ten suites, three of them on both backends, used to run it
 * each. test/integration/demo.test.ts still runs the demo itself, as it tests the command.
 *
 * The template's files hold no absolute path (its records name certificates by serial, the report names its
 * files under the workspace), so a copy with the paths of its report rewritten is the demo run there.
 */
import { execFile } from "node:child_process";
import { createHash } from "node:crypto";
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { promisify } from "node:util";

/** A made demo: its workspace directory and the text `jpki demo --json` printed. */
export interface DemoTemplate {
  readonly workspace: string;
  readonly report: string;
}

declare module "vitest" {
  export interface ProvidedContext {
    /** the run's demo on SQLite (test/global-setup.ts) */
    jpkiDemoSqlite: DemoTemplate;
    /** the run's demo on the "postgres" project's server (test/postgres-global-setup.ts) */
    jpkiDemoPostgres: DemoTemplate;
    /** the run's `ca init -p 13` workspace on SQLite (test/global-setup.ts) */
    jpkiTokyoSqlite: string;
    /** the run's `ca init -p 13` workspace on the "postgres" project's server (test/postgres-global-setup.ts) */
    jpkiTokyoPostgres: string;
  }
}

/** The database of a workspace on the "postgres" project's server: a name derived from its absolute path. */
export function workspaceDatabase(ws: string): string {
  return `ws_${createHash("sha256").update(resolve(ws)).digest("hex").slice(0, 32)}`;
}

/**
 * Runs the built CLI's demo in a new temporary directory (dist/ must be built) as the README's run command does —
 * `jpki demo --json` there, into its default ./jpki-demo, with no JPKI_* variable of the caller's; `store` is its
 * JPKI_STORE. demo.test.ts checks this run's report and files. Asynchronous: the global setups run the SQLite
 * demo while the PostgreSQL one is made (global-setup.ts).
 */
export async function makeDemoTemplate(root: string, dir: string = mkdtempSync(join(tmpdir(), "jpki-demo-template-")), store?: string): Promise<DemoTemplate> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("JPKI_")));
  env.JPKI_STORE = store ?? ""; // empty: the embedded store (context.ts)
  const { stdout: report } = await promisify(execFile)(process.execPath, [join(root, "bin", "jpki.cjs"), "demo", "--json"], { cwd: dir, env, encoding: "utf8" });
  return { workspace: join(dir, "jpki-demo"), report };
}

/**
 * `jpki ca init -p 13` (Tokyo's signature and authentication CAs) into DIR/ws with the passphrase the suites' `cli`
 * gives (helpers.ts), by the built CLI; `store` is its JPKI_STORE. Returns the workspace. The suites whose workspace
 * starts as that command leaves it copy this one (helpers.ts tokyoWorkspace): four RSA-2048 keys and a PBKDF2,
 * ≈ 1.5–2 s of CPU, once per run and backend instead of once per suite and backend.
 */
export async function makeTokyoTemplate(root: string, dir: string = mkdtempSync(join(tmpdir(), "jpki-tokyo-template-")), store?: string): Promise<string> {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith("JPKI_")));
  Object.assign(env, { JPKI_STORE: store ?? "", JPKI_PASSPHRASE: TEMPLATE_PASSPHRASE });
  const workspace = join(dir, "ws");
  await promisify(execFile)(process.execPath, [join(root, "bin", "jpki.cjs"), "--workspace", workspace, "ca", "init", "-p", "13"], { cwd: dir, env });
  return workspace;
}

/** The CA passphrase `cli` (integration/helpers.ts) gives every command unless a test says otherwise. */
export const TEMPLATE_PASSPHRASE = "correct horse";
