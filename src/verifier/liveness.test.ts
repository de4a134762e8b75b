import { describe, expect, it } from "vitest";
import type { CertificateRow, DisclosureRecord, StatusCheckRecord } from "../store/types.js";
import type { Workspace } from "../workspace/workspace.js";
import { parseStatusBody, parseHistoryQuery } from "../server/status-route.js";
import { MAX_STATUS_ITEMS, certificateId, checkStatus, parseCursor, parseStatusItem, successor } from "./liveness.js";

const items = { name: "山田　太郎", address: "東京都千代田区千代田１番１号", birthDate: "1980-12-31", gender: "male" as const };
const now = new Date("2026-06-01T00:00:00Z");
function row(serial: string, issued: string, revocation?: { reason: number; at: string }, notAfter = "2029-01-01T00:00:00Z"): CertificateRow {
  return {
    serial, caId: "13-sig", type: "signature", residentCode: "12345678906", municipalityCode: "131016", fourItems: items,
    notBefore: new Date(issued), notAfter: new Date(notAfter), issuedAt: new Date(issued), der: Buffer.from(serial, "hex"),
    revocation: revocation ? { revokedAt: new Date(revocation.at), reason: revocation.reason, source: "notice:x" } : undefined,
  };
}

describe("liveness check items (parseStatusItem)", () => {
  it("takes { caId, serial } (normalised hex) or { certificateId }, and names what is wrong with anything else", () => {
    expect(parseStatusItem({ caId: "13-sig", serial: "0x00:0A:1B" })).toEqual({ caId: "13-sig", serial: "0a1b" });
    expect(parseStatusItem({ certificateId: "AB".repeat(32) })).toEqual({ certificateId: "ab".repeat(32) });
    expect(parseStatusItem("13-sig:0a")).toEqual({ error: "item-invalid" });
    expect(parseStatusItem({ caId: "13-sig", serial: "0a", certificateId: "ab".repeat(32) })).toEqual({ error: "item-invalid" });
    expect(parseStatusItem({ caId: "13 sig", serial: "0a" })).toEqual({ error: "ca-id-invalid" });
    expect(parseStatusItem({ caId: "13-sig", serial: "xyz" })).toEqual({ error: "serial-invalid" });
    expect(parseStatusItem({ caId: "13-sig", serial: "01".repeat(21) })).toEqual({ error: "serial-invalid" });
    expect(parseStatusItem({ certificateId: "ab" })).toEqual({ error: "certificate-id-invalid" });
  });

  it("the body: items 1 to MAX_STATUS_ITEMS, link a boolean, nothing else", () => {
    const code = (b: unknown) => {
      try {
        parseStatusBody(b);
      } catch (e) {
        return (e as { code: string }).code;
      }
    };
    expect(code({ items: [] })).toBe("items-missing");
    expect(code({ items: Array(MAX_STATUS_ITEMS + 1).fill({}) })).toBe("batch-too-large");
    expect(code({ items: [{}], link: "yes" })).toBe("link-invalid");
    expect(code({ items: [{}], extra: 1 })).toBe("field-unknown");
    expect(parseStatusBody({ items: [{}] })).toEqual({ items: [{}], link: false });
    expect(() => parseHistoryQuery({ limit: "0" })).toThrow();
    expect(() => parseHistoryQuery({ cursor: "12" })).toThrow();
    expect(parseHistoryQuery({ since: "2026-01-01T00:00:00Z", limit: "5" })).toEqual({ since: new Date("2026-01-01T00:00:00Z"), limit: 5 });
    expect(parseCursor("hz")).toBe(35);
  });
});

describe("the old/new link (successor)", () => {
  const a = row("0a", "2024-01-01T00:00:00Z", { reason: 3, at: "2025-01-01T00:00:00Z" });
  it("follows superseded and affiliationChanged to the current certificate", () => {
    const b = row("0b", "2025-01-02T00:00:00Z", { reason: 4, at: "2025-06-01T00:00:00Z" });
    const c = row("0c", "2025-06-01T00:00:00Z");
    expect(successor([a, b, c], a, now)?.serial).toBe("0c");
    expect(successor([a, b, c], b, now)?.serial).toBe("0c");
  });
  it("gives nothing when the line ends otherwise: a replacement revoked for another reason, an expired one, none at all", () => {
    const dead = row("0b", "2025-01-02T00:00:00Z", { reason: 5, at: "2025-06-01T00:00:00Z" });
    const later = row("0c", "2025-06-01T00:00:00Z");
    expect(successor([a, dead, later], a, now)).toBeUndefined();
    expect(successor([a, row("0b", "2025-01-02T00:00:00Z", undefined, "2026-01-01T00:00:00Z")], a, now)).toBeUndefined();
    expect(successor([a], a, now)).toBeUndefined();
    const lost = row("0a", "2024-01-01T00:00:00Z", { reason: 1, at: "2025-01-01T00:00:00Z" });
    expect(successor([lost, later], lost, now)).toBeUndefined();
  });
});

describe("checkStatus with a stubbed store", () => {
  const gov = { id: "v-g", name: "g", kind: "government" as const, tokenSha256: undefined, certSha256: undefined, certNotAfter: undefined, createdAt: now, revokedAt: undefined };
  const priv = { ...gov, id: "v-p", kind: "private" as const };
  function ws(rows: CertificateRow[], o: { fail?: boolean; consents?: string[]; carried?: Record<string, { caId: string; revokedAt: Date; reason: number }> } = {}) {
    const recorded: Array<{ checks: StatusCheckRecord[]; disclosures: DisclosureRecord[] }> = [];
    const asked: string[][] = [];
    const store = {
      carriedRevocations: async (serials: string[]) => {
        asked.push([...serials]);
        return new Map(serials.filter((x) => o.carried?.[x]).map((x) => [x, o.carried![x]!]));
      },
      certificatesForStatus: async (q: { serials: string[]; certificateIds: string[] }) =>
        rows.filter((r) => q.serials.includes(r.serial) || q.certificateIds.includes(certificateId(r.der))),
      liveConsents: async (_v: string, codes: string[]) => new Set(codes.filter((c) => o.consents?.includes(c))),
      findCertificates: async () => rows,
      recordStatusChecks: async (checks: StatusCheckRecord[], disclosures: DisclosureRecord[]) => {
        if (o.fail) throw Object.assign(new Error("store away"), { code: "ERR_STORE_UNREACHABLE" });
        recorded.push({ checks, disclosures });
      },
    };
    return { w: { store, clock: { now: () => now } } as unknown as Workspace, recorded, asked };
  }

  it("an expired, unrevoked certificate is unknown: a government body is told why, a private provider not", async () => {
    const old = row("0e", "2020-01-01T00:00:00Z", undefined, "2023-01-01T00:00:00Z");
    const { w, recorded } = ws([old]);
    expect((await checkStatus(w, gov, { items: [{ caId: "13-sig", serial: "0e" }] })).items).toEqual([{ index: 0, item: { caId: "13-sig", serial: "0e" }, status: "unknown", unknownReason: "expired" }]);
    expect((await checkStatus(w, priv, { items: [{ caId: "13-sig", serial: "0e" }] })).items).toEqual([{ index: 0, item: { caId: "13-sig", serial: "0e" }, status: "unknown" }]);
    expect(recorded.map((r) => r.disclosures[0]!.answer)).toEqual(["status:unknown", "status:unknown"]);
  });

  it("an expired certificate revoked after its expiry (a change notice revokes every unrevoked one) is unknown to a private provider", async () => {
    // Expired in 2023, revoked by a move in 2026: a provider polling the stale certificate must not learn of the move.
    const old = row("0e", "2020-01-01T00:00:00Z", { reason: 3, at: "2026-05-01T00:00:00Z" }, "2023-01-01T00:00:00Z");
    const { w, recorded } = ws([old]);
    const asked = { items: [{ caId: "13-sig", serial: "0e" }] };
    expect((await checkStatus(w, priv, asked)).items).toEqual([{ index: 0, item: { caId: "13-sig", serial: "0e" }, status: "unknown" }]);
    expect(recorded[0]!.checks[0]).toMatchObject({ status: "unknown", reason: undefined });
    expect(recorded[0]!.disclosures[0]!.answer).toBe("status:unknown");
    // A government body is still told the CA's record.
    expect((await checkStatus(w, gov, asked)).items[0]).toMatchObject({ status: "revoked", revocation: { reason: "affiliationChanged" } });
  });

  it("a serial whose CRL entry a restore carried over (no certificate row) is revoked, not 'not ours'; another CA's serial stays unknown", async () => {
    const a = row("0a", "2024-01-01T00:00:00Z");
    const revokedAt = new Date("2025-06-01T00:00:05.678Z");
    const { w, recorded, asked } = ws([a], { carried: { "0c": { caId: "13-sig", revokedAt, reason: 1 } } });
    const items = [{ caId: "13-sig", serial: "0c" }, { caId: "14-sig", serial: "0c" }, { caId: "13-sig", serial: "0a" }, { caId: "13-sig", serial: "0d" }];
    expect((await checkStatus(w, gov, { items, link: true })).items).toEqual([
      // the time as the CRL says it: whole seconds
      { index: 0, item: items[0], status: "revoked", revocation: { time: "2025-06-01T00:00:05.000Z", reason: "keyCompromise" } },
      { index: 1, item: items[1], status: "unknown", unknownReason: "not-ours" },
      { index: 2, item: items[2], status: "good" },
      { index: 3, item: items[3], status: "unknown", unknownReason: "not-ours" },
    ]);
    expect((await checkStatus(w, priv, { items: [items[0]!] })).items).toEqual([{ index: 0, item: items[0], status: "revoked" }]);
    // the history holds what was said; no disclosure record (no resident is known for it)
    expect(recorded[0]!.checks[0]).toMatchObject({ serial: "0c", status: "revoked", reason: 1, revokedAt });
    expect(recorded[0]!.disclosures.map((d) => d.serial)).toEqual(["0a"]);
    expect(recorded[1]!.checks[0]).toMatchObject({ status: "revoked", reason: undefined, revokedAt: undefined });
    // only the serials not found are looked up, and not at all when every one is found
    expect(asked[0]!.sort()).toEqual(["0c", "0c", "0d"]);
    await checkStatus(w, gov, { items: [items[2]!] });
    expect(asked.length).toBe(2);
  });

  it("records what the caller was told (a private provider's check holds no reason) and, when the store fails, gives no answer", async () => {
    const a = row("0a", "2024-01-01T00:00:00Z", { reason: 3, at: "2025-01-01T00:00:00Z" });
    const b = row("0b", "2025-01-02T00:00:00Z");
    const { w, recorded } = ws([a, b], { consents: ["12345678906"] });
    const p = await checkStatus(w, priv, { items: [{ certificateId: certificateId(a.der) }], link: true });
    expect(p.items[0]).toEqual({ index: 0, item: { certificateId: certificateId(a.der) }, status: "revoked", replacedBy: { caId: "13-sig", serial: "0b", certificateId: certificateId(b.der) } });
    expect(recorded[0]!.checks[0]).toMatchObject({ verifierId: "v-p", status: "revoked", reason: undefined, revokedAt: undefined, replacedBy: { serial: "0b" }, serial: undefined });
    expect(recorded[0]!.disclosures[0]).toMatchObject({ serial: "0a", residentCode: "12345678906", answer: "status:revoked+link" });
    const failing = ws([a, b], { fail: true });
    await expect(checkStatus(failing.w, gov, { items: [{ caId: "13-sig", serial: "0a" }] })).rejects.toMatchObject({ code: "ERR_STORE_UNREACHABLE" });
    await expect(checkStatus(w, gov, { items: [] })).rejects.toMatchObject({ code: "ERR_USAGE" });
  });
});
