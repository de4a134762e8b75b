/**
 * `jpki verify` on the demo's certificates: the verdicts (valid, revoked with our CRL, expired / not yet valid by
 * --at, wrong purpose, untrusted under another prefecture's CA, revocation unknown with and without --soft-fail),
 * their exit codes (0, 1, 15; 2 stays the usage error), typed errors for bad inputs, the --json shape, and the
 * four items kept out of the output unless --show-items. Where cheap, `openssl verify -crl_check` agrees.
 */
import { chmodSync, cpSync, mkdirSync, readFileSync, rmSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { ERROR_CODES } from "../../src/errors.js";
import { EXIT_INVALID, EXIT_UNDECIDED } from "../../src/cli/exit-codes.js";
import { cli, runDemo, sh, tempDir, unrevoked, type DemoRun } from "./helpers.js";

type DemoCert = DemoRun["certificates"][number];
let demo: DemoRun;
let dir: string;

const ca = (name: string) => join(demo.workspace, "ca", `${name}.pem`);
const crl = (name: string) => join(demo.workspace, "crl", `${name}.crl`);
const pick = (type: DemoCert["type"], caName: string) => unrevoked(demo).find((c) => c.type === type && c.ca === caName)!;
const verify = (args: string[], env: Record<string, string | undefined> = {}) => cli(["verify", ...args], { cwd: dir, env });
const openssl = (caName: string, cert: string) => sh("openssl", ["verify", "-crl_check", "-CAfile", ca(caName), "-CRLfile", `${crl(caName)}.pem`, cert]);

beforeAll(async () => {
  dir = tempDir("jpki-verify-");
  demo = await runDemo(dir);
}, 120_000);

describe("jpki verify: verdicts and exit codes", () => {
  it("valid inside the workspace (its CAs and CRLs by default): exit 0, no four items; openssl agrees", async () => {
    const c = pick("signature", "13-sig");
    const r = await verify([c.path, "-w", demo.workspace]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^VALID \(有効\): signature certificate \(署名用電子証明書\) issued by Tokyo-to \(東京都\)/);
    expect(r.stdout).not.toContain("基本4情報");
    expect(openssl("13-sig", c.path).out).toContain(": OK");
  });

  it("--show-items prints the four items; without it neither text nor --json carries them", async () => {
    const c = pick("signature", "13-sig");
    const shown = await verify([c.path, "-w", demo.workspace, "--show-items", "--json"]);
    const items = shown.json().fourItems;
    expect(items).toMatchObject({ name: expect.any(String), address: expect.any(String) });
    const text = await verify([c.path, "-w", demo.workspace, "--show-items"]);
    expect(text.stdout).toContain(items.name);
    for (const args of [[c.path, "-w", demo.workspace], [c.path, "-w", demo.workspace, "--json"], [c.path, "-w", demo.workspace, "--purpose", "authentication"]]) {
      const r = await verify(args);
      for (const v of [items.name, items.address]) {
        expect(r.stdout).not.toContain(v);
        expect(r.stderr).not.toContain(v);
      }
    }
  });

  it("revoked with our CRL: exit 1, which certificate and why; openssl agrees", async () => {
    const c = demo.certificates.find((x) => x.serial === demo.revoked.serial)!;
    const r = await verify([c.path, "--trust", ca(c.ca), "--crl", crl(c.ca)]);
    expect(r.code).toBe(EXIT_INVALID);
    expect(r.stdout).toContain("NOT VALID: revoked (失効)");
    expect(r.stdout).toContain(`which: the certificate itself (${c.path}; serial ${c.serial})`);
    expect(r.stdout).toMatch(/why: +the certificate was revoked on .*\(keyCompromise\)/);
    expect(openssl(c.ca, c.path).out).toContain("certificate revoked");
  });

  it("expired and not yet valid by --at: exit 1", async () => {
    const c = pick("signature", "13-sig");
    const exp = await verify([c.path, "-w", demo.workspace, "--at", "2099-01-01", "--soft-fail"]);
    expect(exp.code).toBe(EXIT_INVALID);
    expect(exp.stdout).toContain("NOT VALID: expired (有効期間満了)");
    const early = await verify([c.path, "-w", demo.workspace, "--at", "2001-01-01T00:00:00+09:00", "--json"]);
    expect(early.code).toBe(EXIT_INVALID);
    expect(early.json()).toMatchObject({ status: "not-yet-valid", at: "2000-12-31T15:00:00.000Z" });
  });

  it("wrong purpose: profile-violation, exit 1, both ways", async () => {
    const sig = await verify([pick("signature", "13-sig").path, "-w", demo.workspace, "--purpose", "authentication", "--json"]);
    expect(sig.code).toBe(EXIT_INVALID);
    expect(sig.json()).toMatchObject({ status: "profile-violation", reason: "wrong-purpose", purpose: "authentication", certificatePurpose: "signature" });
    const auth = await verify([pick("authentication", "13-auth").path, "-w", demo.workspace]);
    expect(auth.code).toBe(EXIT_INVALID);
    expect(auth.stdout).toContain("wrong kind of certificate");
    const ok = await verify([pick("authentication", "13-auth").path, "-w", demo.workspace, "--purpose", "authentication"]);
    expect(ok.code, ok.stdout).toBe(0);
  });

  it("another prefecture's CA as the only trust: untrusted, exit 1; openssl agrees", async () => {
    const c = pick("signature", "13-sig");
    const r = await verify([c.path, "--trust", ca("27-sig"), "--crl", crl("27-sig"), "--json"]);
    expect(r.code).toBe(EXIT_INVALID);
    expect(r.json()).toMatchObject({ status: "untrusted", reason: "no-trust-anchor", index: 0, prefecture: { code: "13" } });
    expect(sh("openssl", ["verify", "-CAfile", ca("27-sig"), c.path]).status).not.toBe(0);
  });

  it("J-LIS's real roots as the only trust: our prefecture's certificate is untrusted under them", async () => {
    const jlis = join(import.meta.dirname, "../../fixtures/jlis");
    const r = await verify([pick("signature", "13-sig").path, "--trust", join(jlis, "sign-ca-2023.pem"), "--trust", join(jlis, "sign-ca-2015.pem"), "--json"]);
    expect(r.code, r.stderr).toBe(EXIT_INVALID);
    expect(r.json()).toMatchObject({ status: "untrusted", reason: "no-trust-anchor", trust: { certificates: 2 } });
  });

  it("no CRL: revocation unknown is exit 1, with --soft-fail exit 15 (could not decide)", async () => {
    const c = pick("signature", "13-sig");
    const hard = await verify([c.path, "--trust", ca("13-sig")]);
    expect(hard.code).toBe(EXIT_INVALID);
    expect(hard.stdout).toContain("revocation status unknown");
    const soft = await verify([c.path, "--trust", ca("13-sig"), "--soft-fail", "--json"]);
    expect(soft.code).toBe(EXIT_UNDECIDED);
    expect(soft.json()).toMatchObject({ status: "valid", revocationWarnings: [{ index: 0 }] });
  });

  it("a PEM bundle of several trust certificates, DER inputs", async () => {
    const c = pick("signature", "27-sig");
    const bundle = join(dir, "bundle.pem");
    writeFileSync(bundle, readFileSync(ca("13-sig"), "utf8") + readFileSync(ca("27-sig"), "utf8"));
    const der = join(dir, "cert.der");
    expect(sh("openssl", ["x509", "-in", c.path, "-outform", "der", "-out", der]).status).toBe(0);
    const r = await verify([der, "--trust", bundle, "--crl", crl("27-sig")]);
    expect(r.code, r.stdout + r.stderr).toBe(0);
  });

  it("the verdict codes collide with no error's exit code; help documents them", async () => {
    const used = new Set<number>(Object.values(ERROR_CODES).map((v) => v.exit));
    expect(used.has(EXIT_INVALID)).toBe(false);
    expect(used.has(EXIT_UNDECIDED)).toBe(false);
    const help = await verify(["--help"]);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/ 0 {2}valid/);
    expect(help.stdout).toMatch(/ 1 {2}invalid/);
    expect(help.stdout).toMatch(/15 {2}could not decide/);
  });
});

describe("jpki verify: bad inputs are typed errors", () => {
  it("a DER certificate whose name holds '-----BEGIN ' is read as DER, as inspect reads it (was 'holds no PEM CERTIFICATE block')", async () => {
    const odd = join(dir, "begin-in-name.der");
    expect(sh("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", join(dir, "begin-in-name.key"), "-subj", "/C=JP/O=-----BEGIN X/CN=odd", "-days", "10", "-outform", "DER", "-out", odd]).status).toBe(0);
    const c = pick("signature", "13-sig");
    const r = await verify([c.path, "--trust", ca("13-sig"), "--crl", crl("13-sig"), "--chain", odd, "--json"]);
    expect(r.code, r.stderr).toBe(0);
    const self = await verify([odd, "--trust", odd, "--soft-fail", "--json"]);
    expect(self.stderr).toBe("");
    expect(self.code).toBe(1);
    expect(self.json().status).toBe("untrusted");
  });

  it("a copy of the workspace's published files without its store (jpki.db): a typed error naming --trust, as the store's anchors know the compromised generations; with --trust it verifies", async () => {
    const w = join(dir, "files-only");
    mkdirSync(w);
    for (const f of ["config.json", "ca", "crl", "arl"]) cpSync(join(demo.workspace, f), join(w, f), { recursive: true });
    const c = pick("signature", "13-sig");
    const r = await verify([c.path, "-w", w, "--json"]);
    expect(r.code).toBe(ERROR_CODES.ERR_WORKSPACE_CORRUPT.exit);
    expect(JSON.parse(r.stderr).error.code).toBe("ERR_WORKSPACE_CORRUPT");
    expect(JSON.parse(r.stderr).error.message).toContain("--trust FILE");
    const t = await verify([c.path, "-w", w, "--trust", join(w, "ca", "13-sig.pem"), "--crl", join(w, "crl", "13-sig.crl")]);
    expect(t.code, t.stdout + t.stderr).toBe(0);
  });

  it("the workspace's crl/ or arl/ holding a directory, a FIFO or a link to /dev/zero: ERR_FILE_UNUSABLE naming it (was ERR_INTERNAL with a stack trace, or a hang)", async () => {
    // verify reads the workspace's CRL files, and its CA certificates from the store (ca/*.pem is not read since
    // compromised generations are left out: compromise-retired.test.ts): a copy of it is a workspace to it
    const w = join(dir, "odd-workspace");
    cpSync(demo.workspace, w, { recursive: true });
    const c = pick("signature", "13-sig");
    const odd: Array<[string, () => void]> = [
      ["crl/stray.crl", () => mkdirSync(join(w, "crl", "stray.crl"))],
      ["crl/pipe.crl", () => execFileSync("mkfifo", [join(w, "crl", "pipe.crl")])],
      ["crl/zero.crl", () => symlinkSync("/dev/zero", join(w, "crl", "zero.crl"))],
      ["arl/pipe.crl", () => execFileSync("mkfifo", [join(w, "arl", "pipe.crl")])],
    ];
    for (const [name, make] of odd) {
      make();
      const r = await verify([c.path, "-w", w, "--json"]);
      expect(r.code, `${name}: ${r.stderr}`).toBe(2);
      expect(JSON.parse(r.stderr).error.code).toBe("ERR_FILE_UNUSABLE");
      expect(JSON.parse(r.stderr).error.message).toContain(name);
      rmSync(join(w, name), { recursive: true });
    }
    expect((await verify([c.path, "-w", w])).code).toBe(0);
  });

  it("a missing file, a file that is no certificate, a CRL that is no CRL, a bad --at, no trust at all", async () => {
    const c = pick("signature", "13-sig");
    const junk = join(dir, "junk.pem");
    writeFileSync(junk, "hello\n");
    const cases: Array<[string[], string, number]> = [
      [[join(dir, "nope.pem"), "--trust", ca("13-sig")], "ERR_FILE_NOT_FOUND", 2],
      [[junk, "--trust", ca("13-sig")], "ERR_DER_MALFORMED", 10],
      [[c.path, "--trust", crl("13-sig")], "ERR_DER_MALFORMED", 10],
      [[c.path, "--trust", ca("13-sig"), "--crl", ca("13-sig")], "ERR_DER_MALFORMED", 10],
      [[c.path, "--trust", ca("13-sig"), "--at", "yesterday"], "ERR_USAGE", 2],
      // Date's lenient parser read these as 2026-06-04, 2026-03-02 and the machine's local time: a verdict at a time nobody asked for
      [[c.path, "--trust", ca("13-sig"), "--at", "2026-04-01 junk"], "ERR_USAGE", 2],
      [[c.path, "--trust", ca("13-sig"), "--at", "2026-02-30"], "ERR_USAGE", 2],
      [[c.path, "--trust", ca("13-sig"), "--at", "2026-04-01T09:00"], "ERR_USAGE", 2],
      [[c.path], "ERR_USAGE", 2],
      [[c.path, "-w", join(dir, "no-workspace")], "ERR_WORKSPACE_MISSING", 3],
    ];
    for (const [args, code, exit] of cases) {
      const r = await verify([...args, "--json"]);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(exit);
      expect(JSON.parse(r.stderr).error.code).toBe(code);
      expect(r.stdout).toBe("");
    }
    // A 3 GiB file (sparse: no disk used) in every place a file is read: refused by its size, typed, before
    // readFileSync's RangeError past 2 GiB, or its 512 MiB string limit, reached the user as a stack trace.
    const huge = join(dir, "huge.bin");
    writeFileSync(huge, "");
    truncateSync(huge, 3 * 2 ** 30);
    chmodSync(huge, 0o600); // owner-only, as a --token-file must be: refused for its size, not its mode
    const url = ["--url", "http://127.0.0.1:9"];
    for (const args of [[huge, "--trust", ca("13-sig")], [c.path, "--trust", huge], [c.path, "--trust", ca("13-sig"), "--chain", huge], [c.path, "--trust", ca("13-sig"), "--crl", huge], [c.path, "--trust", ca("13-sig"), "--token-file", huge], ["--status-of", huge, ...url]]) {
      const r = await verify([...args, "--json"]);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2);
      const e = JSON.parse(r.stderr).error;
      expect(e.code).toBe("ERR_FILE_UNUSABLE");
      expect(e.message).toMatch(/huge\.bin: is 3221225472 bytes, more than the \d+ accepted/);
    }
    const bare = await verify([c.path]);
    expect(bare.stderr).toContain("--trust FILE");
    const purpose = await verify([c.path, "--trust", ca("13-sig"), "--purpose", "login"]);
    expect(purpose.code).toBe(2);
  });
});
