/**
 * A file argument that is a record pasted in place of its file's name: `jpki counter batch '{"kind":"rename",
 * "name":"…"}'`. Checked as a path, the "not found" error repeated the argument — a resident's four items — on
 * stderr, and so into whatever log keeps it. Such an argument is refused without a word of it.
 */
import { existsSync } from "node:fs";
import { resolve } from "node:path";
import { JpkiError, checkInputFile } from "./lib.js";

/** Like checkInputFile, but an argument that is no file and reads as a JSON record is refused without being repeated. */
export function checkRecordFile(file: string, what: string, opts: { cwd?: string; pipe: string }): string {
  if (/^\s*[{[]/.test(file) && !existsSync(resolve(opts.cwd ?? process.cwd(), file))) {
    throw new JpkiError("ERR_USAGE", `the ${what} argument is a JSON record, not a file name (not repeated here: it may hold a resident's items); ${opts.pipe}`);
  }
  return checkInputFile(file, what, opts.cwd !== undefined ? { cwd: opts.cwd } : {});
}
