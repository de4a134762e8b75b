/**
 * withStopSignal (context.ts): SIGTERM and SIGINT stop a long job cleanly, and a signal repeated while the
 * process stops — the job's own stop or the command's clean-up after it — must not meet node's default action
 * (the process killed mid-stop, exit 143). The handlers are called here as the process would call them; no
 * signal is sent to the test process.
 */
import { chmodSync, existsSync, mkdirSync, mkdtempSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { PassThrough } from "node:stream";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readPassphraseFile, withStopSignal } from "./context.js";
import { run } from "./program.js";

/** The handlers withStopSignal added for `name` (raw: a once-handler shows as the wrapper that removes itself). */
const added = (name: NodeJS.Signals, before: readonly unknown[]) => process.rawListeners(name).filter((l) => !before.includes(l));

describe("withStopSignal", () => {
  it("aborts on the first SIGTERM or SIGINT; a repeated one finds a handler while the job stops and after it returns", async () => {
    for (const name of ["SIGTERM", "SIGINT"] as const) {
      const before = process.rawListeners(name);
      try {
        await withStopSignal("watch", async (signal) => {
          const ours = added(name, before);
          expect(ours).toHaveLength(1);
          ours[0]!(name); // the first: the job is told to stop
          expect(signal.aborted).toBe(true);
          // a second arriving while the job stops still finds a handler (none: node's default, which kills)
          expect(added(name, before)).toHaveLength(1);
          ours[0]!(name);
        });
        // … and after the job returned, while the command cleans up and the process exits
        expect(added(name, before)).toHaveLength(1);
      } finally {
        for (const l of added(name, before)) process.off(name, l as () => void);
      }
    }
  });

  it("lets go of both signals when the job ends unsignalled", async () => {
    const before = { SIGTERM: process.rawListeners("SIGTERM"), SIGINT: process.rawListeners("SIGINT") };
    expect(await withStopSignal("watch", async (signal) => (signal.aborted ? "stopped" : "done"))).toBe("done");
    expect(process.rawListeners("SIGTERM")).toEqual(before.SIGTERM);
    expect(process.rawListeners("SIGINT")).toEqual(before.SIGINT);
  });
});

describe("readPassphraseFile", () => {
  const dir = mkdtempSync(join(tmpdir(), "jpki-passfile-"));
  const read = (bytes: Buffer) => {
    const f = join(dir, `p-${bytes.toString("hex")}`);
    writeFileSync(f, bytes, { mode: 0o600 });
    return readPassphraseFile(f, "passphrase file --passphrase-file", dir);
  };
  const BOM = Buffer.from([0xef, 0xbb, 0xbf]);

  // Windows editors (Notepad before 2019, PowerShell's Out-File) start a UTF-8 file with a byte order mark: kept,
  // it made a CA whose passphrase nobody could type or put in JPKI_PASSPHRASE.
  it("reads the passphrase a Windows editor saved as the one typed: one leading BOM and a final CRLF are not part of it", () => {
    expect(read(Buffer.concat([BOM, Buffer.from("秘密 pass")]))).toBe("秘密 pass");
    expect(read(Buffer.concat([BOM, Buffer.from("秘密 pass\r\n")]))).toBe("秘密 pass");
    expect(read(Buffer.from("秘密 pass\r\n"))).toBe("秘密 pass");
    expect(read(Buffer.from("秘密 pass\n"))).toBe("秘密 pass");
    // only one of each: what is left is the passphrase as written
    expect(read(Buffer.concat([BOM, BOM, Buffer.from("x")]))).toBe("\ufeffx");
    expect(read(Buffer.from("x\r\n\r\n"))).toBe("x\r\n");
  });

  it("a file far larger than any passphrase (a wrong path, a disk image) is refused by its size, unread", () => {
    const f = join(dir, "huge");
    writeFileSync(f, "", { mode: 0o600 });
    truncateSync(f, 3 * 2 ** 30); // sparse: read whole, node failed past 2 GiB; below, it was all held in memory
    expect(() => readPassphraseFile(f, "passphrase file --passphrase-file", dir)).toThrow(expect.objectContaining({ code: "ERR_FILE_UNUSABLE", message: expect.stringMatching(/bytes, more than the \d+ accepted/) }));
  });

  // "パス" in Shift_JIS decoded as UTF-8 is four U+FFFD: a passphrase nobody types, and the same for every file of
  // four such bytes. Refused where new keys would be wrapped under it; read as before where keys already are.
  it("a file that is not UTF-8 (Shift_JIS) is refused for new keys, and read as before for keys already wrapped", () => {
    const sjis = Buffer.from([0x83, 0x70, 0x83, 0x58, 0x0a]); // パス\n
    const f = join(dir, "sjis");
    writeFileSync(f, sjis, { mode: 0o600 });
    expect(() => readPassphraseFile(f, "passphrase file --passphrase-file", dir, { forNewKeys: true })).toThrow(expect.objectContaining({ code: "ERR_FILE_UNUSABLE", message: expect.stringContaining("not UTF-8") }));
    expect(readPassphraseFile(f, "passphrase file --passphrase-file", dir)).toBe(sjis.subarray(0, 4).toString("utf8"));
    const utf8 = join(dir, "utf8");
    writeFileSync(utf8, "パス\n", { mode: 0o600 });
    expect(readPassphraseFile(utf8, "passphrase file --passphrase-file", dir, { forNewKeys: true })).toBe("パス");
  });

  it("ca init on a new workspace and ca rewrap --new-passphrase-file refuse a Shift_JIS file; nothing is made", async () => {
    const f = join(dir, "sjis-cli");
    writeFileSync(f, Buffer.from([0x83, 0x70, 0x83, 0x58]), { mode: 0o600 });
    let stderr = "";
    const io = { stdout: { write: () => true }, stderr: { write: (t: string) => (stderr += t) }, env: {}, cwd: dir };
    const fresh = join(dir, "fresh-ws");
    expect(await run(["--workspace", fresh, "--passphrase-file", f, "ca", "init", "--prefecture", "13", "--purpose", "signature"], io)).toBe(2);
    expect(stderr).toContain("[ERR_FILE_UNUSABLE]");
    expect(existsSync(fresh)).toBe(false);
    stderr = "";
    expect(await run(["--workspace", fresh, "ca", "rewrap", "--new-passphrase-file", f], { ...io, env: { JPKI_PASSPHRASE: "pw" } })).toBe(2);
    expect(stderr).toContain("not UTF-8");
  });

  // JPKI_PASSPHRASE set from a file with its final newline made CA keys that the same passphrase typed, or in the
  // file itself (--passphrase-file drops one final line break), never opened: ERR_PASSPHRASE_WRONG for ever after.
  it("ca init on a new workspace refuses a JPKI_PASSPHRASE ending with a line break or holding no UTF-8 (ERR_USAGE); nothing is made", async () => {
    let stderr = "";
    const io = { stdout: { write: () => true }, stderr: { write: (t: string) => (stderr += t) }, env: {}, cwd: dir };
    const fresh = join(dir, "env-newline-ws");
    for (const bad of ["secret\n", "secret\r\n", "\uFFFDp"]) {
      stderr = "";
      expect(await run(["--workspace", fresh, "ca", "init", "--prefecture", "13", "--purpose", "signature"], { ...io, env: { JPKI_PASSPHRASE: bad } }), bad).toBe(2);
      expect(stderr).toContain("[ERR_USAGE] JPKI_PASSPHRASE");
      expect(stderr).not.toContain("secret");
      expect(existsSync(fresh)).toBe(false);
    }
  });

  it("a file holding only a BOM (and a line break) is empty", () => {
    for (const b of [BOM, Buffer.concat([BOM, Buffer.from("\r\n")])]) expect(() => read(b)).toThrow(expect.objectContaining({ code: "ERR_PASSPHRASE_MISSING" }));
  });
});

describe("verifier token files (--token-file)", () => {
  const dir = mkdtempSync(join(tmpdir(), "jpki-tokenfile-"));
  const TOKEN = "jpki-token-that-must-not-show";
  writeFileSync(join(dir, "request.p7s"), "not read: the token is refused first");
  /** Every command that takes --token-file, with what it needs to reach the token (none reaches a network or a store). */
  const commands = (f: string): string[][] => [
    ["verify", "cert.pem", "--trust", "ca.pem", "--ocsp", "--token-file", f],
    ["verify", "cert.pem", "--trust", "ca.pem", "--crl-url", "http://127.0.0.1:9/13-sig.crl", "--token-file", f],
    ["verify", "--status-of", "list.pem", "--url", "http://127.0.0.1:9", "--token-file", f],
    ["provider", "enrol", "--dir", join(dir, "bank"), "--request", "request.p7s", "--token-file", f],
    ["provider", "follow", "--dir", join(dir, "bank"), "--token-file", f],
  ];
  const runIt = async (args: string[]) => {
    let stderr = "";
    let stdout = "";
    const io = { stdout: { write: (t: string) => (stdout += t) }, stderr: { write: (t: string) => (stderr += t) }, env: { JPKI_PASSPHRASE: "pw" }, cwd: dir };
    return { code: await run(["--json", ...args], io), stdout, stderr };
  };

  // A bearer token is a credential to jpki serve: read from a file group or others could read, it was sent as if
  // it were still the verifier's own, where a passphrase file of the same mode was refused.
  it("is refused when group or others can read or write it, by every command that takes one (ERR_TOKEN_FILE_UNSAFE, exit 14), as a passphrase file is", async () => {
    for (const mode of [0o644, 0o640, 0o604, 0o620]) {
      const f = join(dir, `token-${mode.toString(8)}.txt`);
      writeFileSync(f, `${TOKEN}\n`);
      chmodSync(f, mode);
      for (const args of commands(f)) {
        const r = await runIt(args);
        const what = `${mode.toString(8)} ${args.slice(0, 2).join(" ")}`;
        expect(r.code, `${what}: ${r.stderr}`).toBe(14);
        const e = JSON.parse(r.stderr).error as { code: string; message: string };
        expect(e.code, what).toBe("ERR_TOKEN_FILE_UNSAFE");
        expect(e.message, what).toContain(f);
        expect(e.message, what).toContain(`mode ${mode.toString(8)}`);
        expect(e.message, what).toContain("chmod 600");
        expect(r.stdout + r.stderr, what).not.toContain(TOKEN);
      }
    }
  });

  it("is refused when it is not a regular file (a directory, a FIFO: never waited on); an owner-only file is read, also through a symlink", async () => {
    const sub = join(dir, "a-directory");
    mkdirSync(sub, { mode: 0o700 });
    const fifo = join(dir, "token.fifo");
    execFileSync("mkfifo", ["-m", "600", fifo]);
    for (const f of [sub, fifo]) {
      for (const args of commands(f)) {
        const r = await runIt(args);
        expect(JSON.parse(r.stderr).error.code, `${f} ${args.slice(0, 2).join(" ")}`).toBe("ERR_FILE_UNUSABLE");
      }
    }
    const ok = join(dir, "token-600.txt");
    writeFileSync(ok, `${TOKEN}\n`, { mode: 0o600 });
    const link = join(dir, "token-link.txt");
    symlinkSync(ok, link);
    for (const f of [ok, link]) {
      for (const args of commands(f)) {
        const r = await runIt(args);
        // past the token: each fails later, on what this test does not give it (a file, a server, a workspace)
        const e = JSON.parse(r.stderr).error as { code: string; message: string };
        expect(e.code, `${f} ${args.slice(0, 2).join(" ")}`).not.toBe("ERR_TOKEN_FILE_UNSAFE");
        expect(e.message, `${f} ${args.slice(0, 2).join(" ")}`).not.toContain("--token-file");
      }
    }
  });
});

describe("the passphrase prompt", () => {
  /** Runs `ca init` with `typed` answered at a terminal's prompt; its exit code and stderr. */
  async function initAnswering(dir: string, typed: string): Promise<{ code: number; stderr: string }> {
    const stdin = Object.assign(new PassThrough(), { isTTY: true });
    let stderr = "";
    const answered = run(["--workspace", join(dir, "ws"), "ca", "init", "--prefecture", "13", "--purpose", "signature"], {
      stdout: { write: () => true },
      stderr: { write: (s: string) => (stderr += s), isTTY: true },
      env: {},
      cwd: dir,
      stdin,
    });
    await new Promise<void>((r) => {
      const t = setInterval(() => stderr.includes("passphrase: ") && (clearInterval(t), r()), 5);
    });
    stdin.write(typed);
    return { code: await answered, stderr };
  }

  // readline in terminal mode was given a bare { write } as its output: "output.on is not a function", ERR_INTERNAL
  // with a stack trace at every prompt, so no passphrase could be typed.
  it("takes the passphrase typed, not echoed", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-prompt-"));
    const r = await initAnswering(dir, "typed secret\r");
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).not.toContain("typed secret");
    const { Workspace } = await import("../workspace/workspace.js");
    const { decryptPrivateKey } = await import("../pki/keys.js");
    const ws = Workspace.open(join(dir, "ws"));
    try {
      const rec = (await ws.store.getCa("13-sig"))!;
      expect(() => decryptPrivateKey(rec.encryptedKeyPem, "typed secret")).not.toThrow();
    } finally {
      await ws.close();
    }
  });

  // An empty line at the prompt (Enter pressed by mistake) made CA keys under the empty passphrase, where an empty
  // passphrase file or JPKI_PASSPHRASE="" is refused as no passphrase at all.
  it("an empty answer is no passphrase (ERR_PASSPHRASE_MISSING): no CA is made", async () => {
    const dir = mkdtempSync(join(tmpdir(), "jpki-prompt-"));
    const { code, stderr } = await initAnswering(dir, "\r");
    expect(stderr).toContain("[ERR_PASSPHRASE_MISSING]");
    expect(code).toBe(5);
    expect(existsSync(join(dir, "ws", "ca", "13-sig.pem"))).toBe(false);
  });
});
