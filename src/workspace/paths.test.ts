import { execFileSync } from "node:child_process";
import { chmodSync, copyFileSync, existsSync, mkdirSync, mkdtempSync, statSync, symlinkSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeEach, describe, expect, it } from "vitest";
import { checkInputDir, checkInputFile, checkOutputDir, checkOutputFile, checkWorkspaceDir, readInputFile } from "./paths.js";

let dir: string;
let file: string;
let fifo: string;
const isRoot = process.getuid?.() === 0;
const DIST_PATHS = join(import.meta.dirname, "..", "..", "dist", "src", "workspace", "paths.js");

/**
 * Runs a permission check as an unprivileged user: root reads and writes everything, so as root (CI) the
 * check runs in a child process as nobody (uid 65534) against the built module; otherwise in-process.
 */
function codeAsUnprivileged(fn: "checkInputFile" | "checkOutputFile", path: string): string | undefined {
  if (!isRoot) {
    try {
      (fn === "checkInputFile" ? checkInputFile : checkOutputFile)(path, "input");
      return undefined;
    } catch (e) {
      return (e as { code?: string }).code;
    }
  }
  // A copy the unprivileged user can read wherever the checkout lives (CI's clone may be owner-only).
  const lib = mkdtempSync(join(tmpdir(), "jpki-paths-lib-"));
  mkdirSync(join(lib, "workspace"));
  copyFileSync(DIST_PATHS, join(lib, "workspace", "paths.js"));
  copyFileSync(join(DIST_PATHS, "..", "..", "errors.js"), join(lib, "errors.js"));
  mkdirSync(join(lib, "pki"));
  copyFileSync(join(DIST_PATHS, "..", "..", "pki", "regular-file.js"), join(lib, "pki", "regular-file.js"));
  writeFileSync(join(lib, "package.json"), '{"type":"module"}');
  for (const p of [lib, join(lib, "workspace"), join(lib, "pki")]) chmodSync(p, 0o755);
  const script = `import(${JSON.stringify(join(lib, "workspace", "paths.js"))}).then((m) => { try { m[${JSON.stringify(fn)}](${JSON.stringify(path)}, "input"); console.log("ok"); } catch (e) { console.log(e.code); } })`;
  return execFileSync(process.execPath, ["-e", script], { uid: 65534, gid: 65534, encoding: "utf8" }).trim().replace(/^ok$/, "") || undefined;
}

/** A directory nobody can enter, for the unprivileged checks. */
function openDir(): string {
  const d = mkdtempSync(join(tmpdir(), "jpki-paths-open-"));
  chmodSync(d, 0o755);
  return d;
}

beforeEach(() => {
  dir = mkdtempSync(join(tmpdir(), "jpki-paths-"));
  file = join(dir, "file.txt");
  writeFileSync(file, "x");
  fifo = join(dir, "fifo");
  execFileSync("mkfifo", [fifo]);
});

/** The JpkiError a call throws, for asserting on code and message together. */
function failure(f: () => unknown): { code: string; message: string } {
  try {
    f();
  } catch (e) {
    return e as { code: string; message: string };
  }
  throw new Error("expected a failure");
}

describe("checkInputFile", () => {
  it("returns the absolute path of a readable regular file, relative paths against cwd", () => {
    expect(checkInputFile("file.txt", "input file", { cwd: dir })).toBe(file);
  });

  it("says not found, naming the path and what it was for", () => {
    const e = failure(() => checkInputFile("absent.pem", "public key file --public-key", { cwd: dir }));
    expect(e.code).toBe("ERR_FILE_NOT_FOUND");
    expect(e.message).toBe("public key file --public-key absent.pem: not found");
    expect(failure(() => checkInputFile(join(file, "below"), "input")).code).toBe("ERR_FILE_NOT_FOUND");
  });

  it("refuses a directory, a FIFO, a device and anything under /proc or /sys", () => {
    for (const [p, says] of [
      [dir, "is a directory"],
      [fifo, "is a FIFO"],
      ["/dev/null", "is under /dev"],
      ["/proc/self/status", "is under /proc"],
      ["/sys/kernel", "is under /sys"],
    ] as const) {
      const e = failure(() => checkInputFile(p, "input file"));
      expect(e.code, p).toBe("ERR_FILE_UNUSABLE");
      expect(e.message).toContain(`input file ${p}: ${says}`);
    }
  });

  it("follows symbolic links into /proc and /dev (like /dev/stdin)", () => {
    symlinkSync("/proc/self/status", join(dir, "link"));
    expect(failure(() => checkInputFile(join(dir, "link"), "input")).message).toContain("is under /proc");
  });

  it("refuses an unreadable file (as an unprivileged user)", () => {
    const d = openDir();
    const f = join(d, "secret.txt");
    writeFileSync(f, "x");
    chmodSync(f, 0o644);
    expect(codeAsUnprivileged("checkInputFile", f)).toBeUndefined();
    chmodSync(f, 0o200);
    expect(codeAsUnprivileged("checkInputFile", f)).toBe("ERR_FILE_UNUSABLE");
  });
});

describe("readInputFile", () => {
  it("reads a file up to maxBytes, refusing a larger one by its size before reading it, and what checkInputFile refuses", () => {
    const d = openDir();
    writeFileSync(join(d, "small"), "twelve bytes");
    expect(readInputFile("small", "token", { cwd: d, maxBytes: 12 }).toString()).toBe("twelve bytes");
    expect(failure(() => readInputFile("small", "token", { cwd: d, maxBytes: 11 }))).toMatchObject({ code: "ERR_FILE_UNUSABLE", message: "token small: is 12 bytes, more than the 11 accepted for it" });
    const big = join(d, "big");
    writeFileSync(big, "");
    truncateSync(big, 3 * 2 ** 30); // sparse: past what readFileSync can read at all
    expect(failure(() => readInputFile(big, "CRL", { maxBytes: 2 ** 30 })).code).toBe("ERR_FILE_UNUSABLE");
    expect(failure(() => readInputFile(fifo, "CRL", { maxBytes: 2 ** 30 })).message).toContain("is a FIFO");
  });
});

describe("checkInputDir", () => {
  it("accepts a directory; a file, a missing path or /proc are refused", () => {
    expect(checkInputDir(dir, "watched directory")).toBe(dir);
    expect(failure(() => checkInputDir(file, "watched directory")).code).toBe("ERR_FILE_UNUSABLE");
    expect(failure(() => checkInputDir(join(dir, "none"), "watched directory")).code).toBe("ERR_FILE_NOT_FOUND");
    expect(failure(() => checkInputDir("/proc", "watched directory")).code).toBe("ERR_FILE_UNUSABLE");
  });
});

describe("checkOutputFile", () => {
  it("accepts a new file in an existing directory, and an existing regular file", () => {
    expect(checkOutputFile("new.pem", "output file -o", { cwd: dir })).toBe(join(dir, "new.pem"));
    expect(checkOutputFile(file, "output file -o")).toBe(file);
    expect(existsSync(join(dir, "new.pem"))).toBe(false);
  });

  it("refuses a directory by name, before any EISDIR", () => {
    const e = failure(() => checkOutputFile(dir, "output file -o"));
    expect(e.code).toBe("ERR_FILE_UNUSABLE");
    expect(e.message).toBe(`output file -o ${dir}: is a directory: name a file in it`);
  });

  it("says how to make a missing directory, and refuses one that can never be made", () => {
    const e = failure(() => checkOutputFile(join(dir, "a", "b", "c.pem"), "output file -o"));
    expect(e.code).toBe("ERR_FILE_NOT_FOUND");
    expect(e.message).toContain(`mkdir -p ${join(dir, "a", "b")}`);
    const f = failure(() => checkOutputFile(join(file, "c.pem"), "output file -o"));
    expect(f.code).toBe("ERR_FILE_UNUSABLE");
    expect(f.message).toContain(`${file} is a file, not a directory`);
  });

  it("refuses a FIFO and /dev, /proc, /sys instead of hanging on them", () => {
    for (const p of [fifo, "/dev/null", "/dev/shm/x.pem", "/proc/self/comm", "/sys/x"]) {
      expect(failure(() => checkOutputFile(p, "output file -o")).code, p).toBe("ERR_FILE_UNUSABLE");
    }
  });

  it("refuses a directory it cannot write (as an unprivileged user)", () => {
    const d = openDir();
    mkdirSync(join(d, "ro"));
    chmodSync(join(d, "ro"), 0o777);
    expect(codeAsUnprivileged("checkOutputFile", join(d, "ro", "x"))).toBeUndefined();
    chmodSync(join(d, "ro"), 0o555);
    expect(codeAsUnprivileged("checkOutputFile", join(d, "ro", "x"))).toBe("ERR_FILE_UNUSABLE");
  });
});

describe("checkOutputDir", () => {
  it("accepts an existing directory; a missing one is not found unless create", () => {
    expect(checkOutputDir(dir, "--out-dir")).toBe(dir);
    const missing = join(dir, "x", "y");
    const e = failure(() => checkOutputDir(missing, "--out-dir"));
    expect(e.code).toBe("ERR_FILE_NOT_FOUND");
    expect(e.message).toContain(`mkdir -p ${missing}`);
    expect(existsSync(missing)).toBe(false);
    expect(checkOutputDir(missing, "--out-dir", { create: true })).toBe(missing);
    expect(statSync(missing).isDirectory()).toBe(true);
    expect(statSync(missing).mode & 0o077).toBe(0);
  });

  it("refuses a file, a FIFO, a path below a file and the pseudo filesystems", () => {
    for (const p of [file, fifo, join(file, "sub"), "/proc/self", "/dev/shm", "/sys"]) {
      expect(failure(() => checkOutputDir(p, "--out-dir", { create: true })).code, p).toBe("ERR_FILE_UNUSABLE");
    }
    expect(failure(() => checkOutputDir(file, "--out-dir")).message).toBe(`--out-dir ${file}: is a file, not a directory`);
  });
});

describe("checkWorkspaceDir", () => {
  it("accepts a directory or nothing yet; refuses a file or /proc", () => {
    expect(checkWorkspaceDir(dir, "workspace")).toBe(dir);
    expect(checkWorkspaceDir(join(dir, "new"), "workspace")).toBe(join(dir, "new"));
    expect(existsSync(join(dir, "new"))).toBe(false);
    expect(failure(() => checkWorkspaceDir(file, "workspace --workspace")).message).toBe(`workspace --workspace ${file}: is a file, not a workspace directory`);
    expect(failure(() => checkWorkspaceDir(join(file, "ws"), "workspace")).code).toBe("ERR_FILE_UNUSABLE");
    expect(failure(() => checkWorkspaceDir("/proc/ws", "workspace")).code).toBe("ERR_FILE_UNUSABLE");
  });
});
