/**
 * Issue 7, point 6: nothing is committed that cannot be delivered. Every path a command is given is checked
 * before the CA key signs, a record is imported or a directory is made; each failure has a stable code
 * (ERR_FILE_NOT_FOUND, ERR_FILE_UNUSABLE, exit 2), names the path, and leaves the store as it was.
 * Also: unknown commands are usage errors even with --help.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { generateResidents } from "../../src/registry/fixtures.js";
import { MAIN, cardKey, cli, listFiles, tempDir, writeJsonl, type CliResult } from "./helpers.js";

let dir: string;
let ws: string;
let pub: string;
let fifo: string;
let file: string;
let residents: Array<Record<string, string>>;
const w = () => ["--workspace", ws];
const STACK = /\n\s+at /;

/** The failure every path check should give: the code, exit 2, the path named, no stack trace. */
function expectRefused(r: CliResult, code: "ERR_FILE_NOT_FOUND" | "ERR_FILE_UNUSABLE", path: string, what?: string) {
  expect(r.stderr, r.stdout).toContain(`[${code}]`);
  expect(r.code).toBe(2);
  expect(r.stderr).toContain(`${what ? `${what} ` : ""}${path}: `);
  expect(r.stderr).not.toMatch(STACK);
  expect(r.stderr).not.toContain("ERR_INTERNAL");
}

async function certificatesOf(code: string): Promise<Array<{ serial: string; revoked: string | null }>> {
  const r = await cli([...w(), "registry", "show", code, "--json"], { cwd: dir });
  expect(r.code, r.stderr).toBe(0);
  return r.json().certificates;
}

beforeAll(async () => {
  dir = tempDir("jpki-paths-");
  ws = join(dir, "ws");
  const init = await cli([...w(), "ca", "init", "--prefecture", "13", "--json"], { cwd: dir });
  expect(init.code, init.stderr).toBe(0);
  residents = [...generateResidents({ count: 5, seed: "cli-paths", prefectures: ["13"] })] as unknown as Array<Record<string, string>>;
  writeJsonl(join(dir, "residents.jsonl"), residents);
  const imp = await cli([...w(), "registry", "import", join(dir, "residents.jsonl"), "--json"], { cwd: dir });
  expect(imp.code, imp.stderr).toBe(0);
  pub = cardKey(dir, "card").pub;
  fifo = join(dir, "fifo");
  execFileSync("mkfifo", [fifo]);
  file = join(dir, "plain.txt");
  writeFileSync(file, "not a directory\n");
});

describe("jpki issue checks its paths before the CA key signs", () => {
  it("-o naming a directory: ERR_FILE_UNUSABLE, no certificate issued (was: signed, committed, then EISDIR as ERR_INTERNAL)", async () => {
    const code = residents[0]!.residentCode!;
    const outDir = join(dir, "a-directory");
    mkdirSync(outDir);
    const r = await cli([...w(), "issue", "--resident", code, "--public-key", pub, "-o", outDir], { cwd: dir });
    expectRefused(r, "ERR_FILE_UNUSABLE", outDir, "output file -o");
    expect(r.stderr).toContain("is a directory");
    expect(await certificatesOf(code)).toEqual([]);
    expect(listFiles(outDir)).toEqual([]);
  });

  it("-o failing for a resident who holds a certificate supersedes nothing", async () => {
    const code = residents[1]!.residentCode!;
    const first = await cli([...w(), "issue", "--resident", code, "--public-key", pub, "--json"], { cwd: dir });
    expect(first.code, first.stderr).toBe(0);
    const before = await certificatesOf(code);
    expect(before).toHaveLength(1);
    for (const [out, err] of [
      [dir, "ERR_FILE_UNUSABLE"],
      [fifo, "ERR_FILE_UNUSABLE"],
      ["/proc/jpki-test-cert.pem", "ERR_FILE_UNUSABLE"],
      [join(dir, "no", "such", "dir", "cert.pem"), "ERR_FILE_NOT_FOUND"],
      [join(file, "cert.pem"), "ERR_FILE_UNUSABLE"],
    ] as const) {
      const r = await cli([...w(), "issue", "--resident", code, "--public-key", pub, "-o", out], { cwd: dir });
      expectRefused(r, err, out, "output file -o");
    }
    expect(await certificatesOf(code)).toEqual(before);
    expect(before[0]!.revoked).toBeNull();
    expect(existsSync(join(dir, "no"))).toBe(false);
  });

  it("-o naming a file that exists is refused before the CA key signs, unless --force (was: silently replaced)", async () => {
    const code = residents[4]!.residentCode!;
    const { pub: own } = cardKey(dir, "card-o-exists");
    const out = join(dir, "kept.pem");
    writeFileSync(out, "an earlier certificate\n");
    const link = join(dir, "dangling.pem");
    symlinkSync(join(dir, "nowhere.pem"), link);
    for (const [target, json] of [[out, false], [out, true], [link, false]] as const) {
      const r = await cli([...w(), ...(json ? ["--json"] : []), "issue", "--resident", code, "--public-key", own, "-o", target], { cwd: dir });
      expect(r.code, r.stderr).toBe(2);
      expect(r.stdout).toBe("");
      if (json) expect(JSON.parse(r.stderr).error).toMatchObject({ code: "ERR_OUTPUT_EXISTS", details: { path: target } });
      else expect(r.stderr).toMatch(/^jpki: error \[ERR_OUTPUT_EXISTS\] output file -o [^\n]+ already exists[^\n]*--force[^\n]*\n$/);
    }
    expect(readFileSync(out, "utf8")).toBe("an earlier certificate\n");
    expect(existsSync(join(dir, "nowhere.pem"))).toBe(false);
    expect(await certificatesOf(code)).toEqual([]);
    const forced = await cli([...w(), "--json", "issue", "--resident", code, "--public-key", own, "-o", out, "--force"], { cwd: dir });
    expect(forced.code, forced.stderr).toBe(0);
    expect(readFileSync(out, "utf8")).toBe(forced.json().pem);
  });

  it("--public-key and --csr: not found, a directory or a FIFO are refused up front", async () => {
    const code = residents[0]!.residentCode!;
    const missing = await cli([...w(), "issue", "--resident", code, "--public-key", "absent.pub.pem"], { cwd: dir });
    expectRefused(missing, "ERR_FILE_NOT_FOUND", "absent.pub.pem", "public key file --public-key");
    expect(missing.stderr).toContain("absent.pub.pem: not found");
    expect(missing.stderr).not.toContain("ENOENT");
    expectRefused(await cli([...w(), "issue", "--resident", code, "--public-key", dir], { cwd: dir }), "ERR_FILE_UNUSABLE", dir, "public key file --public-key");
    expectRefused(await cli([...w(), "issue", "--resident", code, "--csr", fifo], { cwd: dir }), "ERR_FILE_UNUSABLE", fifo, "request file --csr");
    expect(await certificatesOf(code)).toEqual([]);
  });

  it("--public-key and --csr: a file far larger than a key or a request is refused by its size, unread", async () => {
    const code = residents[0]!.residentCode!;
    // sparse: 3 GiB that take no disk (read whole, it failed past 2 GiB with node's RangeError; below that it
    // was held in memory and parsed)
    const huge = join(dir, "huge.pub");
    execFileSync("truncate", ["-s", "3G", huge]);
    const big = join(dir, "big.csr");
    execFileSync("truncate", ["-s", "1M", big]);
    for (const [opt, f, what] of [["--public-key", huge, "public key file --public-key"], ["--csr", big, "request file --csr"]] as const) {
      const r = await cli([...w(), "issue", "--resident", code, opt, f], { cwd: dir });
      expectRefused(r, "ERR_FILE_UNUSABLE", f, what);
      expect(r.stderr).toMatch(/bytes, more than the \d+ accepted/);
    }
    expect(await certificatesOf(code)).toEqual([]);
  });

  it("--batch input and --out-dir output are checked before any application is signed", async () => {
    const code = residents[2]!.residentCode!;
    const batch = writeJsonl(join(dir, "batch.jsonl"), [{ residentCode: code, type: "signature", publicKey: execFileSync("openssl", ["pkey", "-pubin", "-in", pub]).toString() }]);
    expectRefused(await cli([...w(), "issue", "--batch", join(dir, "absent.jsonl")], { cwd: dir }), "ERR_FILE_NOT_FOUND", join(dir, "absent.jsonl"), "batch file --batch");
    expectRefused(await cli([...w(), "issue", "--batch", dir], { cwd: dir }), "ERR_FILE_UNUSABLE", dir, "batch file --batch");
    expectRefused(await cli([...w(), "issue", "--batch", batch, "--out-dir", file], { cwd: dir }), "ERR_FILE_UNUSABLE", file, "output directory --out-dir");
    expectRefused(await cli([...w(), "issue", "--batch", batch, "--out-dir", "/proc/jpki-certs"], { cwd: dir }), "ERR_FILE_UNUSABLE", "/proc/jpki-certs");
    expect(await certificatesOf(code)).toEqual([]);
  });

  it("--workspace naming a file or a path under /proc is refused clearly", async () => {
    const code = residents[3]!.residentCode!;
    const r = await cli(["--workspace", file, "issue", "--resident", code, "--public-key", pub], { cwd: dir });
    expectRefused(r, "ERR_FILE_UNUSABLE", file, "workspace --workspace");
    expect(r.stderr).toContain("not a workspace directory");
    expectRefused(await cli(["--workspace", file, "ca", "init", "--prefecture", "27"], { cwd: dir }), "ERR_FILE_UNUSABLE", file);
    expectRefused(await cli(["--workspace", "/proc/jpki-ws", "ca", "init", "--prefecture", "27"], { cwd: dir }), "ERR_FILE_UNUSABLE", "/proc/jpki-ws");
    expectRefused(await cli(["ca", "list"], { cwd: dir, env: { JPKI_HOME: file } }), "ERR_FILE_UNUSABLE", file, "workspace $JPKI_HOME");
    expect(await certificatesOf(code)).toEqual([]);
  });

  it("--passphrase-file: missing says not found; a directory or a FIFO is refused (never read or waited on)", async () => {
    const code = residents[3]!.residentCode!;
    const env = { JPKI_PASSPHRASE: undefined };
    const missing = await cli([...w(), "--passphrase-file", "absent.txt", "issue", "--resident", code, "--public-key", pub], { cwd: dir, env });
    expectRefused(missing, "ERR_FILE_NOT_FOUND", "absent.txt", "passphrase file --passphrase-file");
    expectRefused(await cli([...w(), "--passphrase-file", dir, "issue", "--resident", code, "--public-key", pub], { cwd: dir, env }), "ERR_FILE_UNUSABLE", dir);
    expectRefused(await cli([...w(), "--passphrase-file", fifo, "issue", "--resident", code, "--public-key", pub], { cwd: dir, env }), "ERR_FILE_UNUSABLE", fifo);
    expect(await certificatesOf(code)).toEqual([]);
  });
});

describe("other commands check their paths first", () => {
  it("registry import: a missing file, a directory, a FIFO", async () => {
    const missing = await cli([...w(), "registry", "import", "absent.jsonl"], { cwd: dir });
    expectRefused(missing, "ERR_FILE_NOT_FOUND", "absent.jsonl", "input file");
    expectRefused(await cli([...w(), "registry", "import", dir], { cwd: dir }), "ERR_FILE_UNUSABLE", dir, "input file");
    expectRefused(await cli([...w(), "registry", "import", fifo], { cwd: dir }), "ERR_FILE_UNUSABLE", fifo, "input file");
  });

  it("inspect: a missing file, a directory, a FIFO, /proc", async () => {
    expectRefused(await cli(["inspect", "absent.pem"], { cwd: dir }), "ERR_FILE_NOT_FOUND", "absent.pem", "input file");
    expectRefused(await cli(["inspect", dir], { cwd: dir }), "ERR_FILE_UNUSABLE", dir, "input file");
    expectRefused(await cli(["inspect", fifo], { cwd: dir }), "ERR_FILE_UNUSABLE", fifo, "input file");
    expectRefused(await cli(["inspect", "/proc/self/status"], { cwd: dir }), "ERR_FILE_UNUSABLE", "/proc/self/status", "input file");
  });

  it("demo --dir naming a file or a path under /proc: refused, nothing made", async () => {
    expectRefused(await cli(["demo", "--dir", file, "--residents", "2"], { cwd: dir }), "ERR_FILE_UNUSABLE", file, "demo directory --dir");
    expectRefused(await cli(["demo", "--dir", join(file, "sub"), "--residents", "2"], { cwd: dir }), "ERR_FILE_UNUSABLE", join(file, "sub"));
    expectRefused(await cli(["demo", "--dir", "/proc/jpki-demo", "--residents", "2"], { cwd: dir }), "ERR_FILE_UNUSABLE", "/proc/jpki-demo");
  });

  it("fixtures generate -o naming a file, or where residents.jsonl is a directory: refused, nothing written", async () => {
    expectRefused(await cli(["fixtures", "generate", "--residents", "3", "-o", file], { cwd: dir }), "ERR_FILE_UNUSABLE", file, "output directory -o");
    const out = join(dir, "fx");
    mkdirSync(join(out, "residents.jsonl"), { recursive: true });
    expectRefused(await cli(["fixtures", "generate", "--residents", "3", "--notices", "2", "-o", out], { cwd: dir }), "ERR_FILE_UNUSABLE", join(out, "residents.jsonl"));
    expect(listFiles(out)).toEqual(["residents.jsonl"]);
  });
});

describe("backup, restore and counter deliver check their directories first", () => {
  it("backup DEST under /proc: refused at once (was: a recursive mkdir spinning for ever at 100 % CPU)", () => {
    // Its own process with a time limit: the old loop was synchronous and would have hung the suite.
    const r = spawnSync(process.execPath, [MAIN, ...w(), "backup", "/proc/jpki-test-backup"], { cwd: dir, encoding: "utf8", timeout: 20_000, env: { ...process.env, JPKI_PASSPHRASE: "correct horse" } });
    expect(r.signal, "still running after 20 s").toBeNull();
    expectRefused({ code: r.status ?? -1, stdout: r.stdout, stderr: r.stderr, json: () => JSON.parse(r.stdout) }, "ERR_FILE_UNUSABLE", "/proc/jpki-test-backup", "backup directory");
  });

  it("backup DEST under /sys or /dev, or whose parent is a file or a FIFO: refused, nothing written (was: EPERM as ERR_INTERNAL; a backup in /dev)", async () => {
    const inDev = `/dev/jpki-test-backup-${process.pid}`;
    try {
      for (const dest of ["/sys/jpki-test-backup", inDev]) expectRefused(await cli([...w(), "backup", dest], { cwd: dir }), "ERR_FILE_UNUSABLE", dest, "backup directory");
      expect(existsSync(inDev)).toBe(false);
    } finally {
      rmSync(inDev, { recursive: true, force: true }); // what the old code left there
    }
    expectRefused(await cli([...w(), "backup", join(file, "b")], { cwd: dir }), "ERR_FILE_UNUSABLE", file, "the backup's parent directory");
    expectRefused(await cli([...w(), "backup", join(fifo, "b")], { cwd: dir }), "ERR_FILE_UNUSABLE", fifo, "the backup's parent directory");
    expectRefused(await cli([...w(), "backup", join(dir, "no", "such", "b")], { cwd: dir }), "ERR_FILE_NOT_FOUND", join(dir, "no", "such"), "the backup's parent directory");
  });

  it("restore SRC, and --verify-only: a path under /proc or /dev, a file or a FIFO is refused as unusable, a missing one as not found (was: not found, or a corrupt backup, exit 21)", async () => {
    for (const verify of [[], ["--verify-only"]]) {
      const restore = (src: string) => cli(["--workspace", join(dir, "restored"), "restore", ...verify, src], { cwd: dir });
      for (const src of ["/proc/self", "/dev/null", file, fifo]) expectRefused(await restore(src), "ERR_FILE_UNUSABLE", src, "backup");
      expectRefused(await restore(join(dir, "no-such-backup")), "ERR_FILE_NOT_FOUND", join(dir, "no-such-backup"), "backup");
    }
    expect(existsSync(join(dir, "restored"))).toBe(false);
  });

  it("counter deliver --spool is checked with nothing pending: under /proc or /dev, a file, below a file (was: exit 0 unchecked)", async () => {
    for (const spool of ["/proc/jpki-test-spool", "/dev/jpki-test-spool", file, join(file, "sub")]) {
      expectRefused(await cli([...w(), "counter", "deliver", "--spool", spool], { cwd: dir }), "ERR_FILE_UNUSABLE", spool, "spool directory --spool");
    }
    const ok = await cli([...w(), "counter", "deliver", "--spool", "spool", "--json"], { cwd: dir });
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.json()).toMatchObject({ delivered: 0 });
    expect(existsSync(join(dir, "spool"))).toBe(true); // relative to the command's directory, made up front
  });
});

describe("unknown commands are usage errors, even with --help", () => {
  it("jpki no-such-command --help exits 2 with ERR_USAGE on stderr and nothing on stdout", async () => {
    for (const args of [["no-such-command", "--help"], ["no-such-command"], ["help", "no-such-command"]]) {
      const r = await cli(args, { cwd: dir });
      expect(r.code, args.join(" ")).toBe(2);
      expect(r.stderr).toContain("jpki: error [ERR_USAGE] unknown command 'no-such-command' (see 'jpki --help')");
      expect(r.stdout).toBe("");
    }
  });

  it("jpki ca no-such-sub --help fails the same way, naming the group", async () => {
    const r = await cli([...w(), "ca", "no-such-sub", "--help"], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("[ERR_USAGE] unknown command 'no-such-sub' for 'jpki ca' (see 'jpki ca --help')");
    expect(r.stdout).toBe("");
    const json = await cli(["--json", "ca", "no-such-sub"], { cwd: dir });
    expect(json.code).toBe(2);
    expect(JSON.parse(json.stderr).error.code).toBe("ERR_USAGE");
  });

  it("a near miss suggests the command", async () => {
    const r = await cli(["isue", "--help"], { cwd: dir });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("did you mean 'issue'?");
  });

  it("help still works: jpki --help, jpki ca --help, jpki help ca, and options with values before the command", async () => {
    for (const args of [["--help"], ["ca", "--help"], ["help", "ca"], ["--workspace", "ca", "ca", "--help"], ["-w", "x", "help", "issue"]]) {
      const r = await cli(args, { cwd: dir });
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(0);
      expect(r.stdout).toContain("Usage: jpki");
    }
  });
});
