/** Shared helpers for the integration tests: run the CLI in-process, temp dirs, card keys via openssl. */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { run } from "../../src/cli/program.js";
import type { Io } from "../../src/cli/output.js";

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
  json<T = any>(): T;
}

export async function cli(args: string[], opts: { cwd: string; env?: Record<string, string | undefined> }): Promise<CliResult> {
  let stdout = "";
  let stderr = "";
  const io: Io = {
    stdout: { write: (s: string) => (stdout += s) },
    stderr: { write: (s: string) => (stderr += s) },
    env: { JPKI_PASSPHRASE: "correct horse", ...opts.env },
    cwd: opts.cwd,
  };
  const code = await run(args, io);
  return { code, stdout, stderr, json: () => JSON.parse(stdout) };
}

export function tempDir(prefix = "jpki-test-"): string {
  return mkdtempSync(join(tmpdir(), prefix));
}

/** Runs a command, returning status and output without throwing. */
export function sh(cmd: string, args: string[], opts: { cwd?: string; input?: string } = {}): { status: number; out: string } {
  const r = spawnSync(cmd, args, { cwd: opts.cwd, input: opts.input, encoding: "utf8" });
  return { status: r.status ?? -1, out: `${r.stdout ?? ""}${r.stderr ?? ""}` };
}

/** A card key pair made by openssl (an independent implementation); returns the paths. */
export function cardKey(dir: string, name: string, spec: string[] = ["-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"]): { key: string; pub: string } {
  const key = join(dir, `${name}.key.pem`);
  const pub = join(dir, `${name}.pub.pem`);
  execFileSync("openssl", ["genpkey", ...spec, "-out", key], { stdio: "ignore" });
  execFileSync("openssl", ["pkey", "-in", key, "-pubout", "-out", pub], { stdio: "ignore" });
  return { key, pub };
}

export function csrFor(dir: string, key: string, name: string): string {
  const csr = join(dir, `${name}.csr.pem`);
  execFileSync("openssl", ["req", "-new", "-key", key, "-subj", "/CN=card", "-sha256", "-out", csr], { stdio: "ignore" });
  return csr;
}

export function writeJsonl(path: string, rows: unknown[]): string {
  writeFileSync(path, rows.map((r) => (typeof r === "string" ? r : JSON.stringify(r))).join("\n") + "\n");
  return path;
}

export function listFiles(dir: string): string[] {
  try {
    return readdirSync(dir).sort();
  } catch {
    return [];
  }
}
