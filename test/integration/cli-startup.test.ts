/**
 * `jpki --version` and `jpki --help` load no heavy package (issue 8 point 9): building the command tree needs
 * only commander and the CLI's own light modules; the library (pkijs, @peculiar/*, better-sqlite3 …) is loaded
 * by a command's action (src/cli/lib.ts). Proved without timing: the built CLI (bin/jpki.cjs on dist/, built by
 * the global setup) runs under a module resolve hook that writes down every URL it resolves. How long start-up
 * takes is measured by `npm run bench -- startup`, never asserted here.
 */
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "./helpers.js";

const ROOT = resolve(import.meta.dirname, "../..");
const HEAVY = ["pkijs", "asn1js", "@peculiar/x509", "@peculiar/webcrypto", "@peculiar/asn1-schema", "@peculiar/asn1-x509", "better-sqlite3", "reflect-metadata"];
/** What a command that works on the store loads: the signing, WebCrypto and storage stack. */
const STACK = ["pkijs", "@peculiar/x509", "@peculiar/webcrypto", "better-sqlite3"];

let dir: string;
let register: string;

beforeAll(() => {
  dir = tempDir("jpki-startup-");
  const hooks = join(dir, "hooks.mjs");
  writeFileSync(
    hooks,
    `import { appendFileSync } from "node:fs";
let out;
export function initialize(data) { out = data.out; }
export async function resolve(specifier, context, next) {
  const r = await next(specifier, context);
  appendFileSync(out, r.url + "\\n");
  return r;
}
`,
  );
  register = join(dir, "register.mjs");
  writeFileSync(register, `import { register } from "node:module";\nregister(${JSON.stringify(pathToFileURL(hooks).href)}, { data: { out: process.env.JPKI_TEST_LOADED } });\n`);
});

/** The package a resolved URL belongs to (the innermost node_modules/ entry), or undefined for our own files and node: built-ins. */
function packageOf(url: string): string | undefined {
  const parts = url.split("/node_modules/");
  if (parts.length < 2) return undefined;
  const [scope, name] = parts.at(-1)!.split("/");
  return scope!.startsWith("@") ? `${scope}/${name}` : scope;
}

/** Runs the built CLI; returns its exit code, stdout and the packages (node_modules names) it loaded. */
function loadedBy(args: string[], name: string): { status: number | null; stdout: string; stderr: string; packages: Set<string> } {
  const out = join(dir, `${name}.loaded`);
  writeFileSync(out, "");
  const r = spawnSync(process.execPath, ["--import", pathToFileURL(register).href, join(ROOT, "bin", "jpki.cjs"), ...args], {
    cwd: dir,
    env: { ...process.env, JPKI_TEST_LOADED: out, JPKI_PASSPHRASE: "x" },
    encoding: "utf8",
  });
  const packages = new Set(
    readFileSync(out, "utf8")
      .split("\n")
      .map(packageOf)
      .filter((p): p is string => p !== undefined),
  );
  return { status: r.status, stdout: r.stdout, stderr: r.stderr, packages };
}

describe("start-up loads the library only when a command needs it", () => {
  it("the recorder sees packages: a command on a workspace loads the whole stack", () => {
    const r = loadedBy(["--workspace", join(dir, "no-workspace"), "ca", "list"], "ca-list");
    expect(r.stderr).toContain("ERR_"); // no workspace there: the library was loaded to say so
    for (const p of STACK) expect(r.packages, p).toContain(p);
  });

  it("jpki --version loads commander and nothing heavy", () => {
    const r = loadedBy(["--version"], "version");
    expect(r.status).toBe(0);
    expect(r.stdout.trim()).toMatch(/^\d+\.\d+\.\d+$/);
    expect([...r.packages]).toEqual(["commander"]);
    for (const p of HEAVY) expect(r.packages, p).not.toContain(p);
  });

  it("jpki --help (with its exit-code list) loads nothing heavy", () => {
    const r = loadedBy(["--help"], "help");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("Exit codes:");
    expect(r.stdout).toContain("ERR_USAGE");
    expect([...r.packages]).toEqual(["commander"]);
  });

  it("a subcommand's help loads nothing heavy either", () => {
    const r = loadedBy(["revoke", "--help"], "revoke-help");
    expect(r.status).toBe(0);
    expect(r.stdout).toContain("keyCompromise");
    expect([...r.packages]).toEqual(["commander"]);
  });

  it("jpki inspect CERT decodes without the signing, WebCrypto and storage stack", () => {
    const r = loadedBy(["inspect", join(ROOT, "fixtures", "jlis", "sign-ca-2023.pem")], "inspect");
    expect(r.status).toBe(0);
    for (const p of STACK) expect(r.packages, p).not.toContain(p);
  });

  it("jpki crl generate signs a CRL with the store alone: no certificate-profile or WebCrypto stack", () => {
    const ws = join(dir, "crl-ws");
    expect(loadedBy(["--workspace", ws, "ca", "init", "--prefecture", "13"], "crl-init").status).toBe(0);
    const r = loadedBy(["--workspace", ws, "crl", "generate", "--ca", "13-sig"], "crl-generate");
    expect(r.status, r.stderr).toBe(0);
    expect(r.stdout).toContain("CRL 13-sig #1");
    // better-sqlite3 and the two small packages that find its native module, commander: nothing else
    expect(r.packages).toContain("better-sqlite3");
    for (const p of r.packages) expect(["better-sqlite3", "bindings", "file-uri-to-path", "commander"], p).toContain(p);
    for (const p of HEAVY.filter((h) => h !== "better-sqlite3")) expect(r.packages, p).not.toContain(p);
  });
});
