import type { Command } from "commander";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { describe, expect, it } from "vitest";
import { ERROR_CODES, type ErrorCode } from "../errors.js";
import { makeProgram, run, unexpectedFailure } from "./program.js";
import type { Io } from "./output.js";

describe("unexpectedFailure: what the CLI says of a failure that is no error of ours", () => {
  it("is ERR_INTERNAL with the error's name and message on one line; the stack only with JPKI_DEBUG=1", () => {
    const bug = new TypeError("x is not a function");
    const plain = unexpectedFailure(bug, false);
    expect(plain.code).toBe("ERR_INTERNAL");
    expect(plain.message).toBe("unexpected failure (a bug in jpki: please report it; JPKI_DEBUG=1 shows where it happened): TypeError: x is not a function");
    expect(plain.message).not.toContain("\n");
    const debug = unexpectedFailure(bug, true);
    expect(debug.message).toContain(bug.stack!);
    expect(unexpectedFailure("a string thrown", false).message).toMatch(/: a string thrown$/);
  });
});

/** Runs the CLI in-process; none of these commands gets far enough to open a workspace. */
async function jpki(...args: string[]): Promise<{ code: number; stdout: string; stderr: string }> {
  let stdout = "";
  let stderr = "";
  const io: Io = { stdout: { write: (s: string) => (stdout += s) }, stderr: { write: (s: string) => (stderr += s) }, env: {}, cwd: "/nonexistent" };
  const code = await run(args, io);
  return { code, stdout, stderr };
}

describe("usage errors commander finds are ERR_USAGE, as an unknown command is", () => {
  const cases: Array<[args: string[], text: string, help: string]> = [
    [["inspect", "cert.pem", "--bogus"], "unknown option '--bogus'", "jpki inspect"],
    [["revoke", "--serial", "01"], "required option '-R, --reason <reason>' not specified", "jpki revoke"],
    [["crl", "generate", "--prefecture", "13", "x"], "too many arguments for 'generate'", "jpki crl generate"],
    [["inspect"], "missing required argument 'file'", "jpki inspect"],
    [["issue", "--type", "encryption"], "argument 'encryption' is invalid. Allowed choices are signature, authentication", "jpki issue"],
    [["--bogus"], "unknown option '--bogus'", "jpki"],
    [["help", "--bogus"], "unknown option '--bogus' for 'help'", "jpki"], // printed the help and exited 0
    [["help", "crl", "--bogus"], "unknown option '--bogus' for 'help'", "jpki"],
    // an option of one value given twice: commander kept the last, so the second resident got the certificate (or
    // was recorded dead)
    [["issue", "--resident", "12345678903", "--public-key", "k.pem", "--resident", "22345678909"], "option '-r, --resident <code>' is given more than once", "jpki issue"],
    [["counter", "death", "--resident=12345678903", "--resident=22345678909"], "option '--resident <code>' is given more than once", "jpki counter death"],
    [["--workspace", "a", "--workspace", "b", "ca", "list"], "option '-w, --workspace <dir>' is given more than once", "jpki"],
    // a command group without its command: commander showed the group's help and run exited 0, having done nothing
    // (`jpki crl $WHAT` with WHAT unset passed in a script; under --json stdout stayed empty, stderr was help text)
    [["crl"], "missing command for 'jpki crl'", "jpki crl"],
    [["--workspace", "w", "store"], "missing command for 'jpki store'", "jpki store"],
    [["ca", "--passphrase-file", "p"], "missing command for 'jpki ca'", "jpki ca"],
  ];

  it("under --json: the error document on stderr, nothing on stdout, exit 2", async () => {
    for (const [args, text, help] of cases) {
      const r = await jpki("--json", ...args);
      expect(r.code, args.join(" ")).toBe(ERROR_CODES.ERR_USAGE.exit);
      expect(r.stdout).toBe("");
      const doc = JSON.parse(r.stderr) as { error: { code: string; message: string } };
      expect(doc.error.code).toBe("ERR_USAGE");
      expect(doc.error.message).toContain(text);
      expect(doc.error.message).toMatch(new RegExp(`\\(see '${help} --help'\\)$`));
    }
  });

  it("jpki issue: an option of the other mode (single or --batch) is refused, not ignored", async () => {
    // --der wrote PEM, --out-dir left the certificate in certs/, a batch's --counter or --application-id reached
    // none of its applications
    for (const [args, text] of [
      [["issue", "--resident", "12345678903", "--public-key", "k.pem", "--der"], "--der goes with -o FILE"],
      [["issue", "--resident", "12345678903", "--public-key", "k.pem", "--out-dir", "d"], "--out-dir, --concurrency and --format go with --batch"],
      [["issue", "--resident", "12345678903", "--public-key", "k.pem", "--format", "csv"], "--out-dir, --concurrency and --format go with --batch"],
      [["issue", "--batch", "b.jsonl", "--counter", "131016001"], "--batch takes its applications from the file"],
      [["issue", "--batch", "b.jsonl", "--application-id", "x"], "--batch takes its applications from the file"],
      // checked in batch lines only: a single application took any text as its id
      [["issue", "--resident", "12345678903", "--public-key", "k.pem", "--application-id", "a b/../c"], "--application-id must be 1–64 letters, digits or . _ : -"],
    ] as const) {
      const r = await jpki(...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`^jpki: error \\[ERR_USAGE\\] ${text.replace(/[-/\\^$*+?.()|[\]{}]/g, "\\$&")}`));
    }
  });

  it("jpki issue --batch - at a terminal says what it waits for, and is refused when nobody would see that (was: waited in silence)", async () => {
    const tty = () => Object.assign(new PassThrough(), { isTTY: true });
    let err = "";
    const seen = tty();
    const io: Io = { stdout: { write: () => true }, stderr: { isTTY: true, write: (s: string) => (err += s) }, env: {}, cwd: tmpdir(), stdin: seen };
    seen.end();
    await run(["--workspace", join(tmpdir(), "jpki-no-such-ws"), "issue", "--batch", "-"], io);
    expect(err).toContain("reading applications from the terminal, one JSON object a line; end with Ctrl-D");
    let err2 = "";
    const silent = tty();
    const io2: Io = { stdout: { write: () => true }, stderr: { write: (s: string) => (err2 += s) }, env: {}, cwd: tmpdir(), stdin: silent };
    expect(await run(["issue", "--batch", "-"], io2)).toBe(2);
    expect(err2).toMatch(/ERR_USAGE\] issue --batch -: standard input is a terminal/);
    silent.destroy();
  });

  it("a value given twice is not repeated in the message (it may be personal data); repeatable options and flags stay repeatable", async () => {
    const r = await jpki("counter", "relocate", "--resident", "12345678903", "--address", "東京都千代田区千代田１番１号", "--address", "東京都千代田区千代田２番２号");
    expect(r.code).toBe(2);
    expect(r.stderr).not.toMatch(/千代田|12345678903/);
    for (const args of [["--json", "--json", "verify", "--trust", "a.pem", "--trust", "b.pem", "/nonexistent/c.pem"], ["notices", "pending", "--release", "a", "b"]]) {
      expect((await jpki(...args)).stderr).not.toContain("more than once");
    }
  });

  it("without: one line with the code, as every error, commander's text kept", async () => {
    for (const [args, text, help] of cases) {
      const r = await jpki(...args);
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toMatch(/^jpki: error \[ERR_USAGE\] [^\n]+\n$/);
      expect(r.stderr).toContain(text);
      expect(r.stderr).toContain(`(see '${help} --help')`);
    }
  });

  it("--help and --version still exit 0 with their output on stdout", async () => {
    for (const args of [["--help"], ["revoke", "--help"], ["ca", "show", "--help"], ["help", "crl", "generate"], ["--json", "inspect", "--help"]]) {
      const r = await jpki(...args);
      expect({ code: r.code, stderr: r.stderr }, args.join(" ")).toEqual({ code: 0, stderr: "" });
      expect(r.stdout).toContain("Usage: jpki");
    }
    const v = await jpki("--version");
    expect(v.code).toBe(0);
    expect(v.stdout).toMatch(/^\d+\.\d+\.\d+/);
  });
});

/** Every command of the program with its help as printed, the group commands too. */
async function everyHelp(): Promise<Array<{ path: string; leaf: boolean; help: string }>> {
  let text = "";
  const sink = { write: (s: string) => (text += s) };
  const program = await makeProgram({ stdout: sink, stderr: sink, env: {}, cwd: "/nonexistent" });
  const out: Array<{ path: string; leaf: boolean; help: string }> = [];
  const walk = (c: Command, path: string) => {
    text = "";
    c.outputHelp();
    out.push({ path, leaf: c.commands.length === 0, help: text });
    for (const s of c.commands) walk(s, `${path} ${s.name()}`);
  };
  walk(program, "jpki");
  return out;
}

/** The lines of a help's "Exit codes:" block: from that line to the next blank one. */
function exitBlock(help: string): string[] {
  const lines = help.split("\n");
  const start = lines.findIndex((l) => l.startsWith("Exit codes:"));
  if (start < 0) return [];
  const end = lines.findIndex((l, i) => i > start && l.trim() === "");
  return lines.slice(start + 1, end < 0 ? undefined : end);
}

describe("the help of every command", () => {
  it("has one Exit codes block, whose values are the table's (errors.ts)", async () => {
    const all = await everyHelp();
    expect(all.length).toBeGreaterThan(60);
    let checked = 0;
    for (const { path, leaf, help } of all) {
      const blocks = help.match(/^Exit codes/gm) ?? [];
      expect(blocks.length, path).toBe(leaf || path === "jpki" ? 1 : 0);
      // A line's value is the value of the codes it ends with; a line wrapped onto the next ends there.
      const block = exitBlock(help).join("\n").replace(/\n {6}(?! *every other)/g, " ");
      for (const line of block.split("\n")) {
        const m = /^\s*(\d+)\s+.*\(((?:ERR_[A-Z0-9_]+(?:, )?)+)\)$/.exec(line);
        if (!m) continue;
        for (const code of m[2]!.split(", ")) {
          expect(code in ERROR_CODES, `${path}: ${code}`).toBe(true);
          expect(ERROR_CODES[code as ErrorCode].exit, `${path}: ${line}`).toBe(Number(m[1]));
          checked++;
        }
      }
    }
    expect(checked).toBeGreaterThan(50);
  });

  it("says 13 (partially applied) only where a command can end so", async () => {
    const partial = (await everyHelp()).filter(({ path, help }) => path !== "jpki" && exitBlock(help).some((l) => /^\s*13\s/.test(l))).map(({ path }) => path);
    expect(partial).toContain("jpki notices ingest");
    expect(partial).toContain("jpki registry import");
    expect(partial).not.toContain("jpki ca list");
    expect(partial).not.toContain("jpki revoke");
  });

  it("of revoke states the exit value of ERR_CERT_UNKNOWN and ERR_CERT_ALREADY_REVOKED", async () => {
    const revoke = (await everyHelp()).find((h) => h.path === "jpki revoke")!;
    const block = exitBlock(revoke.help);
    for (const code of ["ERR_CERT_UNKNOWN", "ERR_CERT_ALREADY_REVOKED"] as const) {
      expect(block.find((l) => l.includes(code)), code).toMatch(new RegExp(`^\\s*${ERROR_CODES[code].exit}\\s`));
    }
  });

  it("says an option's default once, and never \"(default: [])\" for a repeatable one", async () => {
    const all = await everyHelp();
    // an option's description, its continuation lines joined: from its term to the next term or blank line
    const bad = all.flatMap(({ path, help }) =>
      help
        .replace(/\n {10,}/g, " ")
        .split("\n")
        .filter((l) => /^\s+-/.test(l) && (l.includes("(default: [])") || (l.match(/\(default\b/g) ?? []).length + (l.match(/, default: /g) ?? []).length > 1))
        .map((l) => `${path}: ${l.trim()}`),
    );
    expect(bad).toEqual([]);
  });

  it("of notices pending states the exit value of a release refused as a sequence jump (the README's exit 8)", async () => {
    const pending = (await everyHelp()).find((h) => h.path === "jpki notices pending")!;
    const block = exitBlock(pending.help).join("\n").replace(/\n {6}(?! *every other)/g, " ");
    expect(block.split("\n").find((l) => l.includes("ERR_NOTICE_SEQUENCE_JUMP"))).toMatch(new RegExp(`^\\s*${ERROR_CODES.ERR_NOTICE_SEQUENCE_JUMP.exit}\\s`));
  });

  it("of every command that runs something has an example", async () => {
    const missing = (await everyHelp()).filter(({ leaf, help }) => leaf && !/^Examples?\b/m.test(help)).map(({ path }) => path);
    expect(missing).toEqual([]);
  });

  it("jpki --help lists every exit value: 1 and 15 (the verdicts), each error's, and 128+n (a signal)", async () => {
    const top = exitBlock((await everyHelp())[0]!.help);
    const values = top.map((l) => /^\s*(\S+)\s/.exec(l)?.[1]);
    for (const n of ["0", "1", "15", "128+n", ...new Set(Object.values(ERROR_CODES).map((v) => String(v.exit)))]) expect(values, n).toContain(n);
    expect(top.find((l) => l.trim().startsWith("128+n"))).toContain("signal");
  });
});

describe("a command that needs the CA keys says a missing workspace is missing before it asks for the passphrase", () => {
  // Before, each asked first: a prompt whose answer was thrown away, or, with no terminal and no JPKI_PASSPHRASE,
  // ERR_PASSPHRASE_MISSING — which sent a script's author after the wrong thing.
  it("is ERR_WORKSPACE_MISSING naming the directory, with no passphrase given", async () => {
    const missing = "/nonexistent/jpki-no-workspace";
    const cases = [
      ["crl", "generate", "--prefecture", "13"],
      ["ca", "rollover", "--prefecture", "13"],
      ["ca", "rewrap"],
      ["ca", "bridge"],
      ["audit", "checkpoint"],
      ["watch", "--once", tmpdir()],
      ["notices", "pending", "--release-all"],
    ];
    for (const args of cases) {
      const r = await jpki("--workspace", missing, ...args);
      expect(r.stderr, args.join(" ")).toContain(`[ERR_WORKSPACE_MISSING] no jpki workspace at ${missing}`);
      expect(r.code, args.join(" ")).toBe(ERROR_CODES.ERR_WORKSPACE_MISSING.exit);
    }
  });
});
