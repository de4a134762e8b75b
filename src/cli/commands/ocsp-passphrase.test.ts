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
import { checkResponderKeysOpen } from "../../ca/ocsp-signer.js";
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

// An earlier serve (or watch) without JPKI_OCSP_PASSPHRASE wrapped the OCSP signing keys under the CA passphrase; a
// serve started then with JPKI_OCSP_PASSPHRASE was not refused, and its responder answered nothing until renewal.
describe("JPKI_OCSP_PASSPHRASE that does not open the OCSP signing keys stored", () => {
  it("jpki serve refuses it (ERR_USAGE, exit 2) naming 'jpki ca rewrap', which moves the keys under it", async () => {
    const other = join(dir, "ws-under-ca-passphrase");
    mkdirSync(join(dir, "spool-2"));
    const init = await runInProcess(["--workspace", other, "ca", "init", "--prefecture", "13", "--purpose", "signature"], { env: { JPKI_PASSPHRASE: "pw" }, cwd: dir });
    expect(init.code, init.stderr).toBe(0);
    const watched = await runInProcess(["--workspace", other, "watch", "--once", "spool-2"], { env: { JPKI_PASSPHRASE: "pw" }, cwd: dir });
    expect(watched.code, watched.stderr).toBe(0);
    // refused at start: a serve still running after a minute was not (the test then fails rather than waits on it;
    // 20 s was the bound, and a serve opening its store and CA keys on a loaded host takes seconds)
    const r = await Promise.race([
      runInProcess(["--workspace", other, "serve", "--listen", "127.0.0.1:0", "--access-log", "off"], { env: env("own-ocsp-x1"), cwd: dir }),
      new Promise<{ code: string; stdout: string; stderr: string }>((resolve) => setTimeout(() => resolve({ code: "still serving", stdout: "", stderr: "" }), 60_000).unref()),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("[ERR_USAGE] JPKI_OCSP_PASSPHRASE does not open the OCSP signing key stored for CA 13-sig");
    expect(r.stderr).toContain("jpki ca rewrap");
    expect(r.stdout + r.stderr).not.toContain("own-ocsp-x1");
    expect(r.stdout).not.toContain("listening");
    // the way out it names: the rewrap moves them from the CA passphrase to JPKI_OCSP_PASSPHRASE
    const rewrap = await runInProcess(["--workspace", other, "ca", "rewrap"], { env: env("own-ocsp-x1"), cwd: dir });
    expect(rewrap.code, rewrap.stderr).toBe(0);
    const w = await Workspace.open(other);
    try {
      await expect(checkResponderKeysOpen(w.store, "own-ocsp-x1", { now: w.clock.now() })).resolves.toBeUndefined();
      await expect(checkResponderKeysOpen(w.store, "pw", { now: w.clock.now() })).rejects.toMatchObject({ code: "ERR_USAGE" });
    } finally {
      await w.close();
    }
  });
});

// The mirror case: keys an earlier run wrapped under JPKI_OCSP_PASSPHRASE, and a serve started without it goes by the
// CA passphrase, which opens none of them.
describe("no JPKI_OCSP_PASSPHRASE while the OCSP signing keys stored are under one", () => {
  it("jpki serve refuses to start (ERR_USAGE, exit 2), saying to set JPKI_OCSP_PASSPHRASE", async () => {
    const own = join(dir, "ws-under-own-passphrase");
    mkdirSync(join(dir, "spool-3"));
    const init = await runInProcess(["--workspace", own, "ca", "init", "--prefecture", "13", "--purpose", "signature"], { env: { JPKI_PASSPHRASE: "pw" }, cwd: dir });
    expect(init.code, init.stderr).toBe(0);
    const watched = await runInProcess(["--workspace", own, "watch", "--once", "spool-3"], { env: env("own-ocsp-x2"), cwd: dir });
    expect(watched.code, watched.stderr).toBe(0);
    const r = await Promise.race([
      runInProcess(["--workspace", own, "serve", "--listen", "127.0.0.1:0", "--access-log", "off"], { env: { JPKI_PASSPHRASE: "pw" }, cwd: dir }),
      new Promise<{ code: string; stdout: string; stderr: string }>((resolve) => setTimeout(() => resolve({ code: "still serving", stdout: "", stderr: "" }), 60_000).unref()),
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("[ERR_USAGE] the CA passphrase does not open the OCSP signing key stored for CA 13-sig");
    expect(r.stderr).toContain("Start with JPKI_OCSP_PASSPHRASE set");
    expect(r.stdout + r.stderr).not.toContain("own-ocsp-x2");
    // jpki watch renews them: under the CA passphrase, or another JPKI_OCSP_PASSPHRASE, it would wrap each renewal
    // under that, and a serve beside it going by own-ocsp-x2 answers nothing for the CA. Refused alike, before any file.
    for (const [e, says] of [
      [{ JPKI_PASSPHRASE: "pw" }, "[ERR_USAGE] the CA passphrase does not open the OCSP signing key stored for CA 13-sig"],
      [env("own-ocsp-other"), "[ERR_USAGE] JPKI_OCSP_PASSPHRASE does not open the OCSP signing key stored for CA 13-sig"],
    ] as const) {
      const w = await runInProcess(["--workspace", own, "watch", "--once", "spool-3"], { env: e, cwd: dir });
      expect(w.code, w.stderr).toBe(2);
      expect(w.stderr).toContain(says);
      expect(w.stdout + w.stderr).not.toMatch(/own-ocsp-(x2|other)/);
    }
    // with the passphrase they are under, it runs
    const again = await runInProcess(["--workspace", own, "watch", "--once", "spool-3"], { env: env("own-ocsp-x2"), cwd: dir });
    expect(again.code, again.stderr).toBe(0);
  });
});
