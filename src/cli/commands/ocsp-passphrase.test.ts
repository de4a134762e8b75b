/**
 * JPKI_OCSP_PASSPHRASE at the commands that wrap new OCSP signing keys under it (`jpki serve` with its schedule,
 * `jpki watch`): a value ending with a line break (a variable set from a file with its newline) is refused before
 * anything is issued, as a new workspace refuses such a JPKI_PASSPHRASE (context.ts).
 */
import { mkdirSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { runInProcess } from "../../../test/cli-in-process.js";
import { Workspace } from "../../workspace/workspace.js";

let dir: string;
let ws: string;
const env = (ocsp: string) => ({ JPKI_PASSPHRASE: "pw", JPKI_OCSP_PASSPHRASE: ocsp });

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "jpki-ocsp-pass-"));
  ws = join(dir, "ws");
  mkdirSync(join(dir, "spool"));
  const init = await runInProcess(["--workspace", ws, "ca", "init", "--prefecture", "13", "--purpose", "signature"], { env: { JPKI_PASSPHRASE: "pw" }, cwd: dir });
  expect(init.code, init.stderr).toBe(0);
}, 60_000);

const ocspSigners = async () => {
  const w = await Workspace.open(ws);
  try {
    return (await w.store.ocspResponders()).length;
  } finally {
    await w.close();
  }
};

describe("JPKI_OCSP_PASSPHRASE ending with a line break", () => {
  it("jpki watch and jpki serve refuse it (ERR_USAGE, exit 2) before issuing an OCSP signing key, never naming it", async () => {
    for (const args of [["watch", "--once", "spool"], ["serve", "--listen", "127.0.0.1:0", "--access-log", "off"]]) {
      const r = await runInProcess(["--workspace", ws, ...args], { env: env("s3cret-ocsp\n"), cwd: dir });
      expect(r.code, args[0]).toBe(2);
      expect(r.stderr).toContain("[ERR_USAGE] JPKI_OCSP_PASSPHRASE ends with a line break");
      expect(r.stdout + r.stderr).not.toContain("s3cret");
    }
    expect(await ocspSigners()).toBe(0);
    // the same passphrase without it: the watch issues the signing key under it
    const ok = await runInProcess(["--workspace", ws, "watch", "--once", "spool"], { env: env("s3cret-ocsp"), cwd: dir });
    expect(ok.code, ok.stderr).toBe(0);
    expect(await ocspSigners()).toBe(1);
  });
});
