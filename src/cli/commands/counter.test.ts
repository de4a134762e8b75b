/**
 * `jpki counter` with the four items kept off the command line: an option given as '-' reads its value from
 * standard input, and `counter batch -` reads its JSON Lines there. Driven in-process on a SQLite workspace whose
 * residents hold no certificate (no notice is due, nothing needs the CA side).
 */
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough } from "node:stream";
import { beforeAll, describe, expect, it } from "vitest";
import { makeResidentCode } from "../../registry/resident-code.js";
import { Workspace } from "../../workspace/workspace.js";
import type { Io } from "../output.js";
import { run } from "../program.js";
import { runInProcess } from "../../../test/cli-in-process.js";

let root: string;
const code = (i: number) => makeResidentCode(`75${String(i).padStart(8, "0")}`);
const BEFORE = { municipalityCode: "131016", name: "窓口　花子", address: "東京都千代田区千代田１番１号", birthDate: "1985-05-05", gender: "female" };
const NEW_ADDRESS = "東京都千代田区千代田２番２号";

const jpki = (args: string[], stdin?: string) => runInProcess(["--workspace", root, ...args], { env: {}, cwd: root, ...(stdin !== undefined ? { stdin } : {}) });

async function record(c: string) {
  const r = await jpki(["--json", "registry", "show", c]);
  expect(r.code, r.stderr).toBe(0);
  return JSON.parse(r.stdout) as { fourItems: Record<string, string>; [k: string]: unknown };
}

beforeAll(async () => {
  root = join(mkdtempSync(join(tmpdir(), "jpki-counter-cli-")), "ws");
  await Workspace.create(root).close();
  const lines = Array.from({ length: 15 }, (_, i) => JSON.stringify({ residentCode: code(i), ...BEFORE }) + "\n");
  writeFileSync(join(root, "residents.jsonl"), lines.join(""));
  const r = await jpki(["registry", "import", join(root, "residents.jsonl")]);
  expect(r.code, r.stderr).toBe(0);
});

describe("jpki counter: the four items from standard input", () => {
  it("relocate --address - with the address piped in changes the record exactly as --address VALUE does", async () => {
    const byArgv = await jpki(["--json", "counter", "relocate", "--resident", code(0), "--address", NEW_ADDRESS]);
    expect(byArgv.code, byArgv.stderr).toBe(0);
    const byStdin = await jpki(["--json", "counter", "relocate", "--resident", code(1), "--address", "-"], `${NEW_ADDRESS}\n`);
    expect(byStdin.code, byStdin.stderr).toBe(0);
    expect(JSON.parse(byStdin.stdout).done).toEqual([{ kind: "relocate", residentCode: code(1), notice: null, expectedRevocations: [] }]);
    const [a, b] = [await record(code(0)), await record(code(1))];
    expect(b.fourItems).toEqual({ ...a.fourItems, address: NEW_ADDRESS });
    expect({ ...b, residentCode: code(0) }).toEqual(a);
    // the command line's value is taken, with a warning that names the option and never the value (not with --json,
    // whose stderr is the error document); '-' gets none
    const again = await jpki(["counter", "relocate", "--resident", code(0), "--address", NEW_ADDRESS]);
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).toMatch(/warning: --address was given on the command line, which other users can read .*give --address -/);
    expect(again.stderr).not.toContain(NEW_ADDRESS);
    expect(byArgv.stderr).not.toMatch(/warning/);
    expect(byStdin.stderr).not.toMatch(/warning/);
  });

  it("a CRLF line end and a byte order mark (a file saved on Windows) are not part of the value", async () => {
    const r = await jpki(["counter", "rename", "--resident", code(2), "--name", "-"], "\uFEFF窓口　次郎\r\n");
    expect(r.code, r.stderr).toBe(0);
    expect((await record(code(2))).fourItems.name).toBe("窓口　次郎");
  });

  it("counter batch - reads its JSON Lines from standard input", async () => {
    const lines = [
      { kind: "relocate", residentCode: code(3), address: NEW_ADDRESS },
      { kind: "correct", residentCode: code(4), birthDate: "1985-05-06", gender: "male" },
    ].map((l) => JSON.stringify(l) + "\n");
    const r = await jpki(["--json", "counter", "batch", "-"], lines.join(""));
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout).done.map((d: { kind: string; residentCode: string }) => [d.kind, d.residentCode])).toEqual([
      ["relocate", code(3)],
      ["correct", code(4)],
    ]);
    expect((await record(code(3))).fourItems.address).toBe(NEW_ADDRESS);
    expect((await record(code(4))).fourItems).toMatchObject({ birthDate: "1985-05-06", gender: "male" });
  });

  it("counter batch - at a terminal says what it waits for, and is refused when nobody would see that", async () => {
    const tty = () => Object.assign(new PassThrough(), { isTTY: true });
    let out = "";
    let err = "";
    const stdin = tty();
    const io: Io = { stdout: { write: (s: string) => (out += s) }, stderr: { isTTY: true, write: (s: string) => (err += s) }, env: {}, cwd: root, stdin };
    const running = run(["--workspace", root, "--json", "counter", "batch", "-"], io);
    stdin.end(JSON.stringify({ kind: "relocate", residentCode: code(9), address: NEW_ADDRESS }) + "\n");
    expect(await running, err).toBe(0);
    expect(err).toContain("reading procedures from the terminal, one JSON object a line; end with Ctrl-D");
    expect(JSON.parse(out).done).toHaveLength(1);

    let err2 = "";
    const silent = tty();
    const io2: Io = { stdout: { write: () => true }, stderr: { write: (s: string) => (err2 += s) }, env: {}, cwd: root, stdin: silent };
    expect(await run(["--workspace", root, "counter", "batch", "-"], io2)).toBe(2);
    expect(err2).toMatch(/ERR_USAGE\] counter batch -: standard input is a terminal/);
    silent.destroy();
  });

  it("two options given as '-' are a usage error, and nothing changes", async () => {
    const before = await record(code(5));
    const r = await jpki(["counter", "correct", "--resident", code(5), "--name", "-", "--address", "-"], `窓口　三郎\n${NEW_ADDRESS}\n`);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/^jpki: error \[ERR_USAGE\] --name and --address are both '-'/);
    expect(r.stderr).toContain("counter batch -");
    expect(r.stderr).not.toContain("窓口");
    expect(await record(code(5))).toEqual(before);
  });

  it("a malformed value from standard input is refused with the same typed error as from the command line, the value not echoed", async () => {
    const before = await record(code(6));
    const future = "2999-01-01";
    const byArgv = await jpki(["--json", "counter", "correct", "--resident", code(6), "--birth-date", future]);
    const byStdin = await jpki(["--json", "counter", "correct", "--resident", code(6), "--birth-date", "-"], `${future}\n`);
    expect(byArgv.code).toBe(7);
    // details name the field and the problem, as the registry's check gave them (never the value)
    expect(JSON.parse(byArgv.stderr).error).toEqual({ code: "ERR_RESIDENT_INVALID", message: 'field "birthDate" is in the future', details: { field: "birthDate", problem: "future" } });
    expect(byStdin.code).toBe(byArgv.code);
    expect(byStdin.stderr).toBe(byArgv.stderr);
    expect(byStdin.stdout).toBe(byArgv.stdout);
    for (const out of [byStdin.stderr, byStdin.stdout]) expect(out).not.toContain(future);
    // Without --json the one failed procedure is the command's error, said once (on stderr), not also on stdout.
    const text = await jpki(["counter", "correct", "--resident", code(6), "--birth-date", future]);
    expect(text.code).toBe(7);
    expect(text.stderr).toContain("ERR_RESIDENT_INVALID");
    expect(text.stdout).toBe("");
    // Framing is checked before the value: two lines are refused without either being shown.
    const twoLines = await jpki(["counter", "relocate", "--resident", code(6), "--address", "-"], `${NEW_ADDRESS}\n東京都千代田区\n`);
    expect(twoLines.code).toBe(2);
    expect(twoLines.stderr).toContain("ERR_USAGE");
    expect(twoLines.stderr).not.toContain("東京都");
    expect(await record(code(6))).toEqual(before);
  });

  it("piped in, a value followed by a second line is refused without either line shown; a line end alone is fine", async () => {
    const [line1, line2] = ["東京都港区芝公園４丁目", "２番８号"];
    const before = await record(code(10));
    const r = await jpki(["counter", "relocate", "--resident", code(10), "--address", "-"], `${line1}\n${line2}\n`);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/ERR_USAGE\] --address -: standard input holds more than one line/);
    for (const out of [r.stderr, r.stdout]) for (const l of [line1, line2]) expect(out).not.toContain(l);
    expect(await record(code(10))).toEqual(before);

    const ok = await jpki(["counter", "relocate", "--resident", code(10), "--address", "-"], `${line1}\n`);
    expect(ok.code, ok.stderr).toBe(0);
    expect((await record(code(10))).fourItems.address).toBe(line1);
  });

  it("at a terminal, a value pasted with further lines is refused, not cut to its first line, and neither line is shown", async () => {
    const [line1, line2] = ["東京都港区芝公園４丁目", "２番８号"];
    const attempt = async (resident: string, feed: (stdin: PassThrough) => void) => {
      let out = "";
      let err = "";
      const stdin = Object.assign(new PassThrough(), { isTTY: true });
      const io: Io = { stdout: { write: (s: string) => (out += s) }, stderr: { isTTY: true, write: (s: string) => (err += s) }, env: {}, cwd: root, stdin };
      const running = run(["--workspace", root, "counter", "relocate", "--resident", resident, "--address", "-"], io);
      feed(stdin);
      const exit = await running;
      stdin.destroy();
      return { exit, out, err };
    };
    const before = await record(code(11));
    // in one read, as a pipe-fast paste or a terminal's buffer gives it
    const together = await attempt(code(11), (s) => s.write(`${line1}\n${line2}\n`));
    // one line per read, as a real terminal delivers a paste
    const apart = await attempt(code(11), (s) => {
      s.write(`${line1}\n`);
      setTimeout(() => s.write(line2), 20);
    });
    for (const r of [together, apart]) {
      expect(r.exit, r.err).toBe(2);
      expect(r.err).toMatch(/ERR_USAGE\] --address -: more than one line was entered at the prompt/);
      for (const out of [r.err, r.out]) for (const l of [line1, line2]) expect(out).not.toContain(l);
    }
    expect(await record(code(11))).toEqual(before);

    // A pasted CRLF reaches jpki as two line ends: the empty line after the value is not a second value.
    const crlf = await attempt(code(12), (s) => s.write(`${line1}\n\n`));
    expect(crlf.exit, crlf.err).toBe(0);
    expect((await record(code(12))).fourItems.address).toBe(line1);
  });

  it("a terminal on standard input: prompted on stderr when that is a terminal too, else refused with how to pipe", async () => {
    const tty = () => Object.assign(new PassThrough(), { isTTY: true });
    let out = "";
    let err = "";
    const stdin = tty();
    const io: Io = { stdout: { write: (s: string) => (out += s) }, stderr: { isTTY: true, write: (s: string) => (err += s) }, env: {}, cwd: root, stdin };
    const running = run(["--workspace", root, "counter", "relocate", "--resident", code(7), "--address", "-"], io);
    stdin.write(`${NEW_ADDRESS}\n`);
    expect(await running, err).toBe(0);
    expect(err).toContain("address (住所): ");
    expect(err).not.toContain(NEW_ADDRESS);
    expect((await record(code(7))).fourItems.address).toBe(NEW_ADDRESS);

    let err2 = "";
    const io2: Io = { stdout: { write: () => true }, stderr: { write: (s: string) => (err2 += s) }, env: {}, cwd: root, stdin: tty() };
    expect(await run(["--workspace", root, "counter", "relocate", "--resident", code(8), "--address", "-"], io2)).toBe(2);
    expect(err2).toMatch(/ERR_USAGE\] --address -: standard input is a terminal/);
    expect(err2).toContain("--address - <");
    expect((await record(code(8))).fourItems.address).toBe(BEFORE.address);
  });
});

describe("jpki counter batch: a line naming a field twice", () => {
  it("is refused before anything changes (was: JSON.parse kept the last, and relocate-then-death recorded a death)", async () => {
    const line = `{"kind":"relocate","kind":"death","residentCode":"${code(14)}"}\n`;
    const before = await record(code(14));
    for (const [args, stdin] of [[["batch", join(root, "twice.jsonl")], undefined], [["batch", "-"], line]] as const) {
      writeFileSync(join(root, "twice.jsonl"), line);
      const r = await jpki(["--json", "counter", ...args], stdin);
      expect(r.code, r.stderr).toBe(8);
      expect(r.stdout).toBe("");
      expect(JSON.parse(r.stderr).error).toMatchObject({ code: "ERR_IMPORT_FORMAT", message: expect.stringMatching(/^line 1: field "kind" is given more than once/) });
      expect(r.stderr).not.toContain(code(14));
    }
    expect(await record(code(14))).toEqual(before);
  });
});

describe("a JSON record pasted where the file name goes", () => {
  it("is refused without being repeated (the 'not found' error echoed the resident's items)", async () => {
    const secret = "窓口　秘密";
    for (const args of [
      ["counter", "batch", JSON.stringify({ kind: "rename", residentCode: code(13), name: secret })],
      ["registry", "import", JSON.stringify({ residentCode: code(13), ...BEFORE, name: secret })],
      // notices carry the items after (and before) the change; an application names the resident
      ["registry", "apply", JSON.stringify({ noticeId: "P-1", residentCode: code(13), kind: "rename", after: { ...BEFORE, name: secret } })],
      ["notices", "ingest", JSON.stringify({ noticeId: "P-1", residentCode: code(13), kind: "rename", after: { ...BEFORE, name: secret } })],
      ["issue", "--batch", JSON.stringify({ residentCode: code(13), type: "signature", publicKey: secret })],
    ]) {
      const r = await jpki(args);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain("ERR_USAGE");
      expect(r.stderr).toContain("is a JSON record, not a file name");
      expect(r.stderr).not.toContain(secret);
    }
    expect((await record(code(13))).fourItems.name).toBe(BEFORE.name);
  });
});

describe("jpki counter batch --json: a line that does not fit its procedure", () => {
  it("keeps the error's details (field, problem) and names the line, as the single commands' errors do", async () => {
    const bad = JSON.stringify({ kind: "relocate", residentCode: code(12).slice(0, 10) + String((Number(code(12)[10]) + 1) % 10), address: NEW_ADDRESS });
    const r = await jpki(["--json", "counter", "batch", "-"], `${JSON.stringify({ kind: "death", residentCode: code(12) })}\n${bad}\n`);
    expect(r.code).toBe(7);
    expect(JSON.parse(r.stderr).error).toMatchObject({ code: "ERR_RESIDENT_CODE_INVALID", details: { field: "residentCode", problem: "check-digit", line: 2 } });
    // read whole before anything changes: the first line's death was not recorded
    expect((await record(code(12))).status).toBe("active");
  });
});
