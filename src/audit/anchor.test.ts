/** audit/anchor.ts: a checkpoint's file round-trips, and anything else is refused with ERR_AUDIT_ANCHOR_FORMAT naming what. */
import { describe, expect, it } from "vitest";
import { JpkiError } from "../errors.js";
import type { AuditCheckpoint } from "../store/audit-log.js";
import { AUDIT_ANCHOR_FORMAT, auditAnchorFileName, auditAnchorText, parseAuditAnchor } from "./anchor.js";

const cp: AuditCheckpoint = {
  seq: 42,
  hash: "ab".repeat(32),
  at: new Date("2026-12-06T21:30:00.123Z"),
  caId: "13-sig",
  certificateDer: Buffer.from([0x30, 0x82, 0x01, 0x00, 0xff]),
  signature: Buffer.from([1, 2, 3, 4, 5, 6, 7]),
};
const fields = () => JSON.parse(auditAnchorText(cp)) as Record<string, unknown>;
const refusal = (bytes: Buffer | string): string => {
  try {
    parseAuditAnchor(Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes), "kept.json");
  } catch (e) {
    expect(e).toBeInstanceOf(JpkiError);
    expect((e as JpkiError).code).toBe("ERR_AUDIT_ANCHOR_FORMAT");
    expect((e as JpkiError).details).toEqual({ file: "kept.json" });
    return (e as JpkiError).message.replace("kept.json is not an audit checkpoint written by 'jpki audit checkpoint --out': ", "");
  }
  throw new Error("accepted");
};

describe("audit checkpoint files (anchors)", () => {
  it("reads back exactly the checkpoint written, and names files in record order", () => {
    const text = auditAnchorText(cp);
    expect(text.endsWith("}\n")).toBe(true);
    expect(fields()).toEqual({ format: AUDIT_ANCHOR_FORMAT, seq: 42, hash: cp.hash, at: "2026-12-06T21:30:00.123Z", caId: "13-sig", certificate: "MIIBAP8=", signature: "AQIDBAUGBw==" });
    expect(parseAuditAnchor(Buffer.from(text), "kept.json")).toEqual(cp);
    expect(auditAnchorFileName(cp)).toBe("audit-checkpoint-000000000042.json");
    expect(auditAnchorFileName({ seq: 9 }) < auditAnchorFileName({ seq: 10 })).toBe(true);
  });

  it("refuses anything else, saying what", () => {
    const with_ = (o: Record<string, unknown>) => JSON.stringify({ ...fields(), ...o });
    expect(refusal("not json")).toBe("it is not JSON");
    expect(refusal(Buffer.from([0x7b, 0xff, 0x7d]))).toBe("it is not JSON");
    expect(refusal("[1]")).toBe("it is not a JSON object");
    expect(refusal("null")).toBe("it is not a JSON object");
    expect(refusal(auditAnchorText(cp).replace('"seq":42,', '"seq":42,"seq":43,'))).toBe("a field is given more than once");
    expect(refusal(with_({ extra: 1 }))).toBe('it has a field "extra" no checkpoint has');
    const { hash: _, ...noHash } = fields();
    expect(refusal(JSON.stringify(noHash))).toBe('the field "hash" is missing');
    expect(refusal(with_({ format: "jpki-audit-checkpoint/2" }))).toBe(`its format is not ${AUDIT_ANCHOR_FORMAT}`);
    for (const seq of ["42", 0, -1, 1.5, 2 ** 53]) expect(refusal(with_({ seq }))).toBe("seq is not a record number (a whole number from 1)");
    for (const hash of ["AB".repeat(32), "ab".repeat(31), 7]) expect(refusal(with_({ hash }))).toBe("hash is not 64 lowercase hex digits");
    for (const at of ["2026-12-06T21:30:00Z", "2026-12-06", "yesterday", 1765056600123]) expect(refusal(with_({ at }))).toBe("at is not a time as jpki writes it (ISO 8601 in UTC with milliseconds)");
    for (const caId of ["", "13 sig", "x".repeat(65), 13]) expect(refusal(with_({ caId }))).toBe("caId is not a CA id");
    for (const certificate of ["", "MIIBAP8", "MIIB AP8=", 1]) expect(refusal(with_({ certificate }))).toBe("certificate is not base64");
    expect(refusal(with_({ signature: "!!!!" }))).toBe("signature is not base64");
    expect(refusal(Buffer.alloc(64 * 1024 + 1, 0x20))).toBe(`it is ${64 * 1024 + 1} bytes, more than a checkpoint's ${64 * 1024}`);
  });
});
