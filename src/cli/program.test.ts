import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../errors.js";
import { run, unexpectedFailure } from "./program.js";
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
