import { describe, expect, it } from "vitest";
import { auditHash, auditHashTail, canonicalJson, GENESIS_HASH, sealAudit } from "./audit-log.js";
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

describe("sealAudit", () => {
  it("links the record to the head and hashes exactly the fields it returns (what `jpki audit verify` recomputes)", () => {
    const at = new Date(1_700_000_000_123);
    const entry = { action: "verifier.validate-query", subject: "v-1", actor: "verifier:v-1", detail: { answers: ["0a:valid", "0b:revoked"], checks: [], itemsDisclosed: 0 } };
    const first = sealAudit(entry, undefined, at, "os:ops");
    expect(first).toMatchObject({ seq: 1, at, actor: "verifier:v-1", action: entry.action, subject: "v-1", detail: canonicalJson(entry.detail), prevHash: GENESIS_HASH });
    expect(first.hash).toBe(auditHash(first));
    const next = sealAudit({ action: "ca.init", subject: "13-sig" }, { seq: first.seq, hash: first.hash }, at, "os:ops");
    expect(next).toMatchObject({ seq: 2, actor: "os:ops", detail: "{}", prevHash: first.hash });
    expect(next.hash).toBe(auditHash(next));
    expect(Object.keys(next).sort()).toEqual(["action", "actor", "at", "detail", "hash", "prevHash", "seq", "subject"]);
  });
});
