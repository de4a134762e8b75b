import { execFileSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { readPinFile } from "./pkcs11.js";
import { NOT_REGULAR, readRegularFile } from "./regular-file.js";

describe("readRegularFile", () => {
  const dir = mkdtempSync(join(tmpdir(), "jpki-regular-"));
  const fifo = join(dir, "fifo");
  execFileSync("mkfifo", [fifo]);

  it("reads a regular file, and refuses a FIFO (never waiting for a writer), a directory or a device by what it opened", () => {
    writeFileSync(join(dir, "f"), "text");
    expect(readRegularFile(join(dir, "f")).bytes.toString()).toBe("text");
    for (const p of [fifo, dir, "/dev/zero"]) expect(() => readRegularFile(p)).toThrow(expect.objectContaining({ code: NOT_REGULAR }));
    expect(() => readRegularFile(join(dir, "missing"))).toThrow(expect.objectContaining({ code: "ENOENT" }));
  });

  it("ownerOnly: a file group or others may read or write is refused with the caller's error, naming its mode", () => {
    const secret = join(dir, "secret");
    writeFileSync(secret, "s", { mode: 0o600 });
    chmodSync(secret, 0o600);
    expect(readRegularFile(secret, { ownerOnly: () => new Error("unsafe") }).bytes.toString()).toBe("s");
    for (const mode of [0o640, 0o604, 0o620, 0o602]) {
      chmodSync(secret, mode);
      expect(() => readRegularFile(secret, { ownerOnly: (m) => new Error(`unsafe ${m.toString(8)}`) })).toThrow(`unsafe ${mode.toString(8)}`);
    }
    expect(() => readRegularFile(fifo, { ownerOnly: () => new Error("unsafe") })).toThrow(expect.objectContaining({ code: NOT_REGULAR }));
  });

  it("follows a symbolic link unless told not to; shows the stat to accept before reading", () => {
    writeFileSync(join(dir, "target"), "x".repeat(100));
    symlinkSync(join(dir, "target"), join(dir, "link"));
    expect(readRegularFile(join(dir, "link")).bytes.length).toBe(100);
    expect(() => readRegularFile(join(dir, "link"), { noFollow: true })).toThrow(expect.objectContaining({ code: "ELOOP" }));
    const seen: number[] = [];
    expect(() =>
      readRegularFile(join(dir, "target"), {
        accept: (st) => {
          seen.push(st.size);
          throw new Error("too large");
        },
      }),
    ).toThrow("too large");
    expect(seen).toEqual([100]);
  });

  it("the token PIN file: a FIFO is refused (it hung the read), a file others can read is refused", () => {
    expect(() => readPinFile(fifo)).toThrow(expect.objectContaining({ code: "ERR_PKCS11_PIN_MISSING" }));
    const pin = join(dir, "pin");
    writeFileSync(pin, "1234\n", { mode: 0o644 });
    chmodSync(pin, 0o644);
    expect(() => readPinFile(pin)).toThrow(expect.objectContaining({ code: "ERR_PKCS11_PIN_FILE_UNSAFE" }));
    chmodSync(pin, 0o600);
    expect(readPinFile(pin)).toBe("1234");
    mkdirSync(join(dir, "d"));
    expect(() => readPinFile(join(dir, "d"))).toThrow(expect.objectContaining({ code: "ERR_PKCS11_PIN_MISSING" }));
  });
});
