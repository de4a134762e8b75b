/**
 * The resident codes in the examples people copy — every command's --help and the README — pass their check
 * digit: `jpki issue --resident 12345678906` as once printed was refused as ERR_RESIDENT_CODE_INVALID.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { runInProcess } from "../../test/cli-in-process.js";
import { isValidResidentCode } from "../registry/resident-code.js";
import type { Io } from "./output.js";
import { makeProgram } from "./program.js";

/** `--resident 12345678903`, `--new-code …`, `"residentCode":"…"`: an 11-digit code where a resident code goes. */
const CODE = /(?:--resident|--new-code|"residentCode"\s*:\s*"|"newCode"\s*:\s*")\s*(\d{11})\b/g;

const codesIn = (text: string) => [...text.matchAll(CODE)].map((m) => m[1]!);

function paths(c: Command, prefix: string[] = []): string[][] {
  const here = c.name() === "jpki" ? prefix : [...prefix, c.name()];
  return [here, ...c.commands.flatMap((s) => paths(s, here))];
}

describe("resident codes in examples", () => {
  it("pass their check digit in every command's --help", async () => {
    const io: Io = { stdout: { write: () => true }, stderr: { write: () => true }, env: {}, cwd: process.cwd() };
    const program = await makeProgram(io);
    const found: string[] = [];
    for (const p of paths(program)) {
      const r = await runInProcess([...p, "--help"], { env: {}, cwd: process.cwd() });
      for (const code of codesIn(r.stdout)) found.push(`${p.join(" ")}: ${code}`);
    }
    expect(found.length).toBeGreaterThan(10);
    expect(found.filter((f) => !isValidResidentCode(f.slice(-11)))).toEqual([]);
  });

  it("pass their check digit in the README", () => {
    const codes = codesIn(readFileSync(join(import.meta.dirname, "../../README.md"), "utf8"));
    expect(codes.length).toBeGreaterThan(5);
    expect(codes.filter((c) => !isValidResidentCode(c))).toEqual([]);
  });
});
