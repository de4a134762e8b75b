/**
 * `jpki registry import` stopped by SIGTERM, driven in-process on a SQLite workspace. The signal handler is called
 * as the process would call it (context.test.ts does the same); no signal is sent to the test process. It comes
 * once the first batch is committed (its progress line), before the rest of the input is even written.
 */
import { mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { PassThrough, Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { makeResidentCode } from "../../registry/resident-code.js";
import { RESIDENT_FILE_BATCH } from "../../registry/resident-import.js";
import { Workspace } from "../../workspace/workspace.js";
import type { Io } from "../output.js";
import { run } from "../program.js";

const lines = Array.from({ length: RESIDENT_FILE_BATCH + 3 }, (_, i) =>
  JSON.stringify({ residentCode: makeResidentCode(`74${String(i).padStart(8, "0")}`), municipalityCode: "131016", name: "停止　花子", address: "東京都千代田区千代田１番１号", birthDate: "1985-05-05", gender: "female" }) + "\n",
);

describe("jpki registry import", () => {
  it("stops on SIGTERM once the lines read are committed, says on stderr after which line, and exits 143 (it exited 0); the same input again takes the rest", async () => {
    const root = join(mkdtempSync(join(tmpdir(), "jpki-import-cli-")), "ws");
    await Workspace.create(root).close();
    const before = { SIGTERM: process.rawListeners("SIGTERM"), SIGINT: process.rawListeners("SIGINT") };
    const added = (name: "SIGTERM" | "SIGINT") => process.rawListeners(name).filter((l) => !before[name].includes(l));
    try {
      const stdin = new PassThrough();
      stdin.end(lines.slice(0, RESIDENT_FILE_BATCH).join(""), "utf8");
      let stdout = "";
      let stderr = "";
      let signalled = false;
      const io: Io = {
        stdout: { write: (s: string) => (stdout += s) },
        stderr: {
          isTTY: true, // where progress lines go
          write: (s: string) => {
            stderr += s;
            if (!signalled && s.includes(`imported ${RESIDENT_FILE_BATCH},`)) {
              signalled = true;
              for (const l of added("SIGTERM")) (l as (s: string) => void)("SIGTERM");
            }
            return true;
          },
        },
        env: {},
        cwd: root,
        stdin: Readable.from((async function* () {
          for await (const chunk of stdin) yield chunk as Buffer;
          // the rest only after the signal: it is never decided
          yield Buffer.from(lines.slice(RESIDENT_FILE_BATCH).join(""));
        })()),
      };
      expect(await run(["--workspace", root, "registry", "import", "-"], io)).toBe(143);
      expect(signalled).toBe(true);
      expect(stdout).toBe(`read ${RESIDENT_FILE_BATCH}, imported ${RESIDENT_FILE_BATCH} (${RESIDENT_FILE_BATCH} new, 0 replaced), unchanged 0, rejected 0\n`);
      expect(stderr).toContain(
        `jpki: registry import stopped by SIGTERM after line ${RESIDENT_FILE_BATCH}: ${RESIDENT_FILE_BATCH} imported, 0 unchanged, 0 rejected; the lines after ${RESIDENT_FILE_BATCH} were not read.\n` +
          "To go on, import the same input again: what was imported now then counts as unchanged.\n",
      );

      let again = "";
      const io2: Io = { stdout: { write: (s: string) => (again += s) }, stderr: { write: () => true }, env: {}, cwd: root, stdin: Readable.from([Buffer.from(lines.join(""))]) };
      expect(await run(["--workspace", root, "--json", "registry", "import", "-"], io2)).toBe(0);
      // a run to the end has no "stopped" in its document, as before the signal was heard
      expect(JSON.parse(again)).toEqual({ read: lines.length, imported: 3, inserted: 3, updated: 0, unchanged: RESIDENT_FILE_BATCH, rejected: 0, errors: [] });
    } finally {
      // once signalled, withStopSignal keeps its handlers for the rest of the process: not this test's
      for (const name of ["SIGTERM", "SIGINT"] as const) for (const l of added(name)) process.off(name, l as () => void);
    }
  });
});
