import { describe, expect, it } from "vitest";
import { auditFields, auditHash, auditHashTail, canonicalJson, CanonicalJsonText, GENESIS_HASH, sealAudit } from "./audit-log.js";
import { issuanceAudit, noticeBatchAudit } from "./audit-ops.js";
import { keyed } from "./contract.js";
import type { IssuanceCommitResult, NoticeCommit } from "./types.js";
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

describe("CanonicalJsonText", () => {
  it("of records with keys in sorted order writes canonicalJson's bytes: quotes, backslashes, control characters, non-ASCII, lone surrogates, numbers", () => {
    const records: Array<Record<string, string | number | boolean>> = [
      { reason: 1, serial: "0a01", source: "notice:N-1" },
      { reason: 0, serial: "ff", source: 'notice:"q"\\\n\t\u0000\u007f' },
      { reason: -0, serial: "00", source: "notice:髙橋\u3000😀\u2028" },
      { reason: 1.5, serial: "01", source: "notice:\ud800 \udc00 \udbff\udfff" },
      { a: true, b: false, c: 1e21, d: "" },
    ];
    expect(canonicalJson({ list: CanonicalJsonText.ofSortedRecords(records) })).toBe(canonicalJson({ list: records }));
    expect(canonicalJson(CanonicalJsonText.ofSortedRecords([]))).toBe("[]");
    // the lone surrogate as its ASCII escape in both, as the stores keep the detail
    expect(canonicalJson(CanonicalJsonText.ofSortedRecords(records))).toContain('"notice:\\ud800 \\udc00 \udbff\udfff"');
  });
});

describe("noticeBatchAudit", () => {
  it("records the same detail, and so the same chain hashes, as canonicalJson of the plain revocation records", () => {
    const source = 'notice:N-"1"\\é\ud800';
    const b: NoticeCommit = {
      at: new Date(1000),
      notices: [
        { noticeId: "N-1", residentCode: "r1", sequence: 1, kind: "death", body: "{}", status: "applied", revocations: 2 },
        { noticeId: "N-2", residentCode: "r2", sequence: 3, kind: "relocation", body: "{}", status: "held", revocations: 0 },
      ],
      sequences: [],
      revocations: [
        { serial: "0a01", reason: 5, source, residentCode: "r1" },
        { serial: "0a02", reason: 5, source: "notice:N-1" },
      ],
      relinks: [],
      dirtyCas: ["13-sig"],
    };
    const entry = noticeBatchAudit(b, 2)!;
    const ids = hash("sha256", "N-1\nN-2", "hex");
    const fields = auditFields(entry, new Date(5000), "os:jpki");
    // the bytes as written before CanonicalJsonText (and as verified by every chain already stored)
    expect(fields.detail).toBe(
      `{"applied":1,"held":1,"noticeIdsSha256":"${ids}","notices":2,"relinks":0,` +
        `"revocations":[{"reason":5,"serial":"0a01","source":"notice:N-\\"1\\"\\\\é\\ud800"},{"reason":5,"serial":"0a02","source":"notice:N-1"}],"revoked":2}`,
    );
    const plain = { ...entry.detail, revocations: b.revocations.map((r) => ({ source: r.source, serial: r.serial, reason: r.reason })) };
    expect(fields.detail).toBe(canonicalJson(plain));
    const sealed = sealAudit(entry, { seq: 7, hash: "ab".repeat(32) }, new Date(5000), "os:jpki");
    expect(sealed.hash).toBe(auditHash({ ...sealed, detail: canonicalJson(plain) }));
    expect(hash("sha256", `["${sealed.prevHash}",${auditHashTail(sealed)}`, "hex")).toBe(sealed.hash);
  });
});

describe("issuanceAudit", () => {
  it("records the same detail, and so the same chain hashes, as canonicalJson of the plain certificate and revocation records", () => {
    const records = [keyed("0a01", "r1", 1000, "k1"), keyed("0a02", "r2", 1000, "k2", "authentication"), keyed("0a03", "r3", 1000, "k3")];
    const results: IssuanceCommitResult[] = [
      { status: "committed" as const, superseded: ["09ff", "09fe"] },
      { status: "stale" as const, why: "registry-changed" as const },
      { status: "committed" as const, superseded: [] },
    ];
    const entry = issuanceAudit(records, results)!;
    const fields = auditFields(entry, new Date(5000), "os:jpki");
    // the bytes as written before CanonicalJsonText (and as verified by every chain already stored)
    expect(fields.detail).toBe(
      `{"certificates":[{"ca":"13-sig","serial":"0a01","type":"signature"},{"ca":"13-sig","serial":"0a03","type":"signature"}],"refused":1,` +
        `"revoked":[{"reason":4,"serial":"09ff","source":"superseded:0a01"},{"reason":4,"serial":"09fe","source":"superseded:0a01"}]}`,
    );
    const plain = {
      refused: 1,
      revoked: [
        { source: "superseded:0a01", serial: "09ff", reason: 4 },
        { source: "superseded:0a01", serial: "09fe", reason: 4 },
      ],
      certificates: [records[0]!, records[2]!].map((r) => ({ type: r.type, serial: r.serial, ca: r.caId })),
    };
    expect(fields.detail).toBe(canonicalJson(plain));
    const sealed = sealAudit(entry, { seq: 7, hash: "ab".repeat(32) }, new Date(5000), "os:jpki");
    expect(sealed.hash).toBe(auditHash({ ...sealed, detail: canonicalJson(plain) }));
    expect(issuanceAudit([records[1]!], [results[1]!])).toBeUndefined();
  });
});
