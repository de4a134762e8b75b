/**
 * CrlInstallFailed (types.ts): what guardedInstall throws for a CRL install that failed inside Store.publishCrls. The
 * stores catch it and return the install's own error (store contract: publishCrls); should one escape, it must read
 * as an error: it was a plain object, whose message was "undefined" and which had no code and no stack.
 */
import { describe, expect, it } from "vitest";
import { JpkiError, isJpkiError } from "../errors.js";
import { CrlInstallFailed, guardedInstall } from "./types.js";

function thrownBy(f: () => void): unknown {
  try {
    f();
  } catch (e) {
    return e;
  }
  throw new Error("nothing thrown");
}

describe("CrlInstallFailed", () => {
  it("is an Error with the install's own code and message, the install's error kept as `error` and as its cause", () => {
    const unusable = new JpkiError("ERR_FILE_UNUSABLE", "crl/13-sig cannot be replaced", { details: { path: "crl/13-sig" } });
    const e = thrownBy(guardedInstall(() => {
      throw unusable;
    }));
    expect(e).toBeInstanceOf(CrlInstallFailed);
    expect(e).toBeInstanceOf(Error);
    expect(isJpkiError(e, "ERR_FILE_UNUSABLE")).toBe(true);
    const f = e as CrlInstallFailed;
    expect(f.error).toBe(unusable); // what the stores return for the CRL, as before
    expect(f.cause).toBe(unusable);
    expect(f.name).toBe("CrlInstallFailed");
    expect(f.message).toBe("a CRL could not be installed: crl/13-sig cannot be replaced");
    expect(f.details).toEqual({ path: "crl/13-sig" });
    expect(f.stack).toContain("CrlInstallFailed");
    expect(String(f)).not.toContain("undefined");
  });

  it("a failure that is no JpkiError (a disk full, a thrown string) has ERR_INTERNAL, and its message still says what failed", () => {
    const full = Object.assign(new Error("no space left on device"), { code: "ENOSPC" });
    const e = thrownBy(guardedInstall(() => {
      throw full;
    })) as CrlInstallFailed;
    expect(isJpkiError(e, "ERR_INTERNAL")).toBe(true);
    expect(e.error).toBe(full);
    expect(e.message).toBe("a CRL could not be installed: no space left on device");
    expect(e.toJSON()).toEqual({ code: "ERR_INTERNAL", message: "a CRL could not be installed: no space left on device" });
    const s = thrownBy(guardedInstall(() => {
      throw "EIO";
    })) as CrlInstallFailed;
    expect(s.message).toBe("a CRL could not be installed: EIO");
    expect(s.error).toBe("EIO");
  });

  it("an install that succeeds throws nothing", () => {
    let ran = false;
    guardedInstall(() => void (ran = true))();
    expect(ran).toBe(true);
  });
});
