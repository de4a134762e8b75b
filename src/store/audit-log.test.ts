import { describe, expect, it } from "vitest";
import { auditHash, auditHashTail, canonicalJson } from "./audit-log.js";
import { hash } from "node:crypto";

describe("canonicalJson", () => {
  it("sorts keys at every level, omits undefined members, writes undefined array items as null", () => {
    const v = { type: "signature", ca: "13-sig", nested: { z: 1, a: [3, undefined, { y: true, b: null }], m: undefined }, serial: "0a", at: new Date(0), n: 10n };
    expect(canonicalJson(v)).toBe(
      '{"at":"1970-01-01T00:00:00.000Z","ca":"13-sig","n":"10","nested":{"a":[3,null,{"b":null,"y":true}],"z":1},"serial":"0a","type":"signature"}',
    );
    // keys already in order and keys out of order encode the same
    expect(canonicalJson({ ca: "x", serial: "1", type: "t" })).toBe(canonicalJson({ type: "t", serial: "1", ca: "x" }));
    expect(canonicalJson({ b: undefined, a: 1 })).toBe('{"a":1}');
    expect(canonicalJson({ a: undefined })).toBe("{}");
    expect(canonicalJson([])).toBe("[]");
    expect(canonicalJson({ "é": 1, e: 2, E: 3 })).toBe('{"E":3,"e":2,"é":1}');
  });
});

describe("auditHashTail", () => {
  it("is what follows a hex previous hash in auditHash's input", () => {
    const r = { prevHash: "ab".repeat(32), at: 1_700_000_000_123, actor: "os:é", action: "a", subject: 'q"\\\n', detail: '{"x":"😀"}' };
    expect(hash("sha256", `["${r.prevHash}",${auditHashTail(r)}`, "hex")).toBe(auditHash(r));
    expect(auditHashTail({ ...r, at: new Date(r.at) })).toBe(auditHashTail(r));
  });
});
