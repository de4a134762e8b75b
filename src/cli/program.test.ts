import { describe, expect, it } from "vitest";
import { unexpectedFailure } from "./program.js";

describe("unexpectedFailure: what the CLI says of a failure that is no error of ours", () => {
  it("is ERR_INTERNAL with the error's name and message on one line; the stack only with JPKI_DEBUG=1", () => {
    const bug = new TypeError("x is not a function");
    const plain = unexpectedFailure(bug, false);
    expect(plain.code).toBe("ERR_INTERNAL");
    expect(plain.message).toBe("unexpected failure (a bug in jpki: please report it; JPKI_DEBUG=1 shows where it happened): TypeError: x is not a function");
    expect(plain.message).not.toContain("\n");
    const debug = unexpectedFailure(bug, true);
    expect(debug.message).toContain(bug.stack!);
    expect(unexpectedFailure("a string thrown", false).message).toMatch(/: a string thrown$/);
  });
});
