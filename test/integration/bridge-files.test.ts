/**
 * `jpki ca bridge` against what an operator's bad day leaves in bridge/ and arl/ (ca/bridge.ts): a FIFO planted
 * where the Bridge's state, key or ARL should be is refused with ERR_FILE_UNUSABLE naming it, where a plain
 * read waited on it for ever; a file too large or a directory there is a typed error, never ERR_INTERNAL with a stack.
 * (The Bridge's own files are read by ca/bridge.ts; the published ARL, arl/bridge.crl, by validation/crl.ts's reader
 * of published CRLs, which refuses what is not a regular file.)
 * The CLI is spawned with a deadline so a hang fails the test instead of stopping the run.
 */
import { spawn, spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, readFileSync, readdirSync, renameSync, rmSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { MAIN, cli, storeEnv, tempDir } from "./helpers.js";

let dir: string;
let ws: string;

/** The spawned CLI's answer, or `hung` once `deadlineMs` passed (the child is then killed). */
async function spawnBridge(args: string[] = [], deadlineMs = 30_000): Promise<{ code: number | null; out: string; err: string; hung: boolean }> {
  const env = { ...process.env, ...(await storeEnv(ws)), JPKI_PASSPHRASE: "correct horse" };
  return new Promise((resolve) => {
    const p = spawn(process.execPath, [MAIN, "ca", "bridge", "-w", ws, "--json", ...args], { env: env as NodeJS.ProcessEnv });
    let out = "", err = "", hung = false;
    const timer = setTimeout(() => ((hung = true), p.kill("SIGKILL")), deadlineMs);
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (err += d));
    p.on("close", (code) => (clearTimeout(timer), resolve({ code, out, err, hung })));
  });
}

const mkfifo = (path: string) => expect(spawnSync("mkfifo", [path]).status).toBe(0);

beforeAll(async () => {
  dir = tempDir("jpki-bridge-files-");
  ws = join(dir, "ws");
  const init = await cli(["ca", "init", "-w", ws, "--prefecture", "13", "--purpose", "signature"], { cwd: dir });
  expect(init.code, init.stderr).toBe(0);
  // in-process: a first Bridge on an intact workspace has nothing to hang on, and a spawn cost a Node start-up
  const first = await cli(["ca", "bridge", "-w", ws, "--json"], { cwd: dir });
  expect(first.code, first.stderr).toBe(0);
}, 120_000);

describe("jpki ca bridge: a FIFO, a huge file or a directory where a Bridge file should be", () => {
  for (const [what, rel] of [
    ["bridge/state.json", ["bridge", "state.json"]],
    ["arl/bridge.crl", ["arl", "bridge.crl"]],
    ["bridge/bridge.key", ["bridge", "bridge.key"]],
  ] as const) {
    it(`a FIFO as ${what}: ERR_FILE_UNUSABLE naming it, not a hang; the run after it is removed goes on`, async () => {
      const path = join(ws, ...rel);
      renameSync(path, `${path}.kept`);
      mkfifo(path);
      try {
        const r = await spawnBridge();
        expect(r.hung, `${what}: still waiting on the FIFO`).toBe(false);
        expect(r.code, r.err).toBe(2);
        expect(JSON.parse(r.err).error).toMatchObject({ code: "ERR_FILE_UNUSABLE", message: expect.stringContaining(`${what}`) });
        expect(r.err).toMatch(/not a regular file/);
        expect(r.err).not.toMatch(/\n\s+at /);
      } finally {
        rmSync(path);
        renameSync(`${path}.kept`, path);
      }
      // in-process: what is proved is that the workspace works again, not the process boundary (which the refusal
      // above needed, for its deadline); a spawn cost a Node start-up and a PBKDF2 of the CA key each
      const again = await cli(["ca", "bridge", "-w", ws, "--json"], { cwd: dir });
      expect(again.code, again.stderr).toBe(0);
    }, 120_000);
  }

  it("a 3 GiB bridge/bridge.key or state.json: ERR_FILE_UNUSABLE naming it, where the key's read failed past 2 GiB as ERR_INTERNAL with a stack trace", async () => {
    for (const name of ["bridge.key", "state.json"]) {
      const path = join(ws, "bridge", name);
      renameSync(path, `${path}.kept`);
      writeFileSync(path, "", { mode: 0o600 });
      truncateSync(path, 3 * 2 ** 30);
      try {
        const r = await spawnBridge();
        expect(r.code, r.err).toBe(2);
        expect(JSON.parse(r.err).error).toMatchObject({ code: "ERR_FILE_UNUSABLE", message: expect.stringContaining(`bridge/${name} is 3221225472 bytes`) });
        expect(r.err).not.toMatch(/\n\s+at /);
      } finally {
        rmSync(path);
        renameSync(`${path}.kept`, path);
      }
    }
  }, 120_000);

  it("a directory as arl/bridge.crl: ERR_FILE_UNUSABLE, not a stack trace", async () => {
    const path = join(ws, "arl", "bridge.crl");
    renameSync(path, `${path}.kept`);
    mkdirSync(path);
    try {
      // in-process: a directory fails its open or read at once (EISDIR), nothing to wait on, so no deadline needed
      const r = await cli(["ca", "bridge", "-w", ws, "--json"], { cwd: dir });
      expect(r.code, r.stderr).toBe(2);
      expect(JSON.parse(r.stderr.slice(r.stderr.indexOf("{"))).error.code).toBe("ERR_FILE_UNUSABLE");
      expect(r.stderr).not.toMatch(/\n\s+at /);
    } finally {
      rmSync(path, { recursive: true });
      renameSync(`${path}.kept`, path);
    }
  }, 120_000);

  // A hand-edited ARL number went into BigInt whole (a million digits took seconds) and then into the next ARL,
  // past the 64-bit ceiling of every CA's CRL numbers and past RFC 5280's 20 octets.
  for (const [what, arlNumber] of [
    ["a million digits", "9".repeat(1_000_000)],
    ["the 64-bit ceiling itself (the next would pass it)", (2n ** 63n - 1n).toString()],
  ] as const) {
    it(`an ARL number of ${what} in bridge/state.json: ERR_WORKSPACE_CORRUPT naming the file, no ARL written`, async () => {
      const path = join(ws, "bridge", "state.json");
      const arl = join(ws, "arl", "bridge.crl");
      copyFileSync(path, `${path}.kept`);
      const arlBefore = readFileSync(arl);
      const state = JSON.parse(readFileSync(path, "utf8")) as { arlNumber: string };
      writeFileSync(path, JSON.stringify({ ...state, arlNumber }), { mode: 0o600 });
      try {
        const r = await spawnBridge();
        expect(r.hung).toBe(false);
        expect(JSON.parse(r.err).error).toMatchObject({ code: "ERR_WORKSPACE_CORRUPT", message: expect.stringContaining("state.json") });
        expect(r.err).not.toMatch(/\n\s+at /);
        expect(readFileSync(arl).equals(arlBefore), "the ARL was rewritten").toBe(true);
      } finally {
        renameSync(`${path}.kept`, path);
      }
    }, 120_000);
  }
});

// `jpki restore` moves the Bridge's ARL numbering past a safety gap (backup/restore.ts, from bridge/state.json): a
// number near the ceiling went past it into the restored state.json, which every later `ca bridge` then refused as
// altered ("restore it from a backup"), while the restore reported success.
describe("jpki restore of a Bridge whose ARL number is near the 64-bit ceiling", () => {
  for (const [what, arlNumber] of [
    ["the ceiling less ten (the gap would pass it)", (2n ** 63n - 11n).toString()],
    ["a million digits", "9".repeat(1_000_000)],
  ] as const) {
    it(`${what}: refused before anything moves, the target as it was`, async () => {
      const copy = join(dir, `near-ceiling-${arlNumber.length}`);
      const backup = join(dir, `near-ceiling-${arlNumber.length}-backup`);
      expect((await cli(["-w", ws, "backup", copy], { cwd: dir })).code).toBe(0);
      const restored = await cli(["-w", join(dir, `near-ceiling-${arlNumber.length}-ws`), "restore", copy], { cwd: dir });
      expect(restored.code, restored.stderr).toBe(0);
      const target = join(dir, `near-ceiling-${arlNumber.length}-ws`);
      const path = join(target, "bridge", "state.json");
      const state = JSON.parse(readFileSync(path, "utf8")) as { arlNumber: string };
      writeFileSync(path, JSON.stringify({ ...state, arlNumber }), { mode: 0o600 });
      expect((await cli(["-w", target, "backup", backup], { cwd: dir })).code).toBe(0);
      const stateBefore = readFileSync(path);
      const r = await cli(["-w", target, "--json", "restore", backup, "--force"], { cwd: dir });
      expect(r.code, r.stderr).toBe(21);
      const err = JSON.parse(r.stderr.slice(r.stderr.indexOf("{"))).error;
      expect(err).toMatchObject({ code: "ERR_BACKUP_CORRUPT", message: expect.stringContaining("bridge/state.json") });
      expect(r.stderr).not.toMatch(/\n\s+at /);
      expect(readFileSync(path).equals(stateBefore)).toBe(true);
      expect(readdirSync(target).filter((n) => n.startsWith("before-restore-") || n.startsWith(".restore-"))).toEqual([]);
    }, 120_000);
  }
});

describe("jpki restore over a workspace whose CRL file carries a number near the ceiling", () => {
  it("a CA's CRL numbered 2^63 - 16 in the target: ERR_WORKSPACE_CORRUPT naming the CA, before anything moves", async () => {
    const target = join(dir, "crl-near-ceiling-ws");
    const backup = join(dir, "crl-near-ceiling-backup");
    expect((await cli(["-w", ws, "backup", backup], { cwd: dir })).code).toBe(0);
    expect((await cli(["-w", target, "restore", backup], { cwd: dir })).code).toBe(0);
    // A CRL file with that number (any issuer: restore reads the numbers, it does not verify the files)
    const o = join(dir, "openssl-ca");
    mkdirSync(o, { recursive: true });
    writeFileSync(join(o, "index.txt"), "");
    writeFileSync(join(o, "crlnumber"), `${(2n ** 63n - 16n).toString(16).toUpperCase()}\n`);
    writeFileSync(join(o, "ca.cnf"), `[ca]\ndefault_ca=d\n[d]\ndatabase=${o}/index.txt\ncrlnumber=${o}/crlnumber\ndefault_md=sha256\ndefault_crl_days=1\n`);
    const sh = (args: string[]) => expect(spawnSync("openssl", args, { cwd: o }).status).toBe(0);
    sh(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "k.pem", "-out", "c.pem", "-subj", "/CN=x", "-days", "1"]);
    sh(["ca", "-config", "ca.cnf", "-gencrl", "-keyfile", "k.pem", "-cert", "c.pem", "-out", "x.crl"]);
    sh(["crl", "-in", "x.crl", "-outform", "DER", "-out", join(target, "crl", "13-sig.crl.999")]);
    const r = await cli(["-w", target, "--json", "restore", backup, "--force"], { cwd: dir });
    expect(r.code, r.stderr).toBe(3);
    const err = JSON.parse(r.stderr.slice(r.stderr.indexOf("{"))).error;
    expect(err).toMatchObject({ code: "ERR_WORKSPACE_CORRUPT", message: expect.stringContaining("CA 13-sig") });
    expect(readdirSync(target).filter((n) => n.startsWith("before-restore-") || n.startsWith(".restore-"))).toEqual([]);
  }, 120_000);
});
