import { describe, expect, it } from "vitest";
import { CRL_REASON } from "../crl/reason.js";
import type { CertificateType, FourItems } from "../profile/types.js";
import { NOTICE_KIND_NAMES, type ChangeNotice, type NoticeKind } from "./notice.js";
import { NOTICE_RULES, decideRevocations, noticeSource, type CertifiedCertificate } from "./notice-rules.js";
import { makeResidentCode } from "./resident-code.js";

const CODE = makeResidentCode("5988656848");
const NEW_CODE = makeResidentCode("1234567890");
const TYPES: readonly CertificateType[] = ["signature", "authentication"];

const certified: FourItems = Object.freeze({ name: "髙橋\u3000花子", address: "大阪府大阪市弥生町６丁目９番１２号", birthDate: "1980-01-01", gender: "female" });
const moved: FourItems = Object.freeze({ ...certified, address: "大阪府大阪市本町１丁目２番３号" });
const married: FourItems = Object.freeze({ ...certified, name: "佐藤\u3000花子" });

function notice(kind: NoticeKind, after: FourItems | undefined, over: Partial<ChangeNotice> = {}): ChangeNotice {
  return {
    noticeId: `N-${kind}`, residentCode: CODE, kind, effectiveDate: "2024-05-01", sequence: 1, municipalityCode: "271004",
    ...(after ? { after } : {}),
    ...(kind === "resident-code-change" ? { newResidentCode: NEW_CODE } : {}),
    ...over,
  };
}

const sig: CertifiedCertificate = { serial: "0a01", type: "signature", fourItems: certified };
const auth: CertifiedCertificate = { serial: "0a02", type: "authentication", fourItems: certified };

/** What each kind does to each type when the certified items really changed (JPKI.md "Registry event → effect"). */
const EXPECTED: Record<NoticeKind, { after: FourItems | undefined; signature: string | undefined; authentication: string | undefined }> = {
  relocation: { after: moved, signature: "affiliationChanged", authentication: undefined },
  "move-out": { after: { ...moved, address: "神奈川県横浜市本町１番地" }, signature: "affiliationChanged", authentication: undefined },
  "move-in": { after: { ...moved, address: "神奈川県横浜市本町１番地" }, signature: "affiliationChanged", authentication: undefined },
  "name-change": { after: married, signature: "affiliationChanged", authentication: undefined },
  correction: { after: { ...certified, birthDate: "1980-01-02" }, signature: "affiliationChanged", authentication: undefined },
  death: { after: undefined, signature: "cessationOfOperation", authentication: "cessationOfOperation" },
  removal: { after: undefined, signature: "cessationOfOperation", authentication: "cessationOfOperation" },
  "resident-code-change": { after: undefined, signature: undefined, authentication: undefined },
};

describe("NOTICE_RULES", () => {
  it("has a rule for every kind × certificate type, as the spec says", () => {
    expect(Object.keys(NOTICE_RULES).sort()).toEqual([...NOTICE_KIND_NAMES].sort());
    for (const kind of NOTICE_KIND_NAMES) {
      expect(Object.keys(NOTICE_RULES[kind]).sort()).toEqual([...TYPES].sort());
      for (const type of TYPES) {
        const rule = NOTICE_RULES[kind][type];
        if (rule.effect === "revoke" || rule.effect === "revoke-if-changed") expect(rule.reason in CRL_REASON).toBe(true);
        else expect(rule.reason).toBeUndefined();
      }
    }
    expect(NOTICE_RULES.relocation).toEqual({ signature: { effect: "revoke-if-changed", reason: "affiliationChanged" }, authentication: { effect: "keep" } });
    expect(NOTICE_RULES.death.authentication).toEqual({ effect: "revoke", reason: "cessationOfOperation" });
    expect(NOTICE_RULES.removal.signature).toEqual({ effect: "revoke", reason: "cessationOfOperation" });
    expect(NOTICE_RULES["resident-code-change"]).toEqual({ signature: { effect: "relink" }, authentication: { effect: "relink" } });
    expect(Object.isFrozen(NOTICE_RULES) && Object.isFrozen(NOTICE_RULES.correction)).toBe(true);
  });
});

describe("decideRevocations", () => {
  for (const kind of NOTICE_KIND_NAMES) {
    for (const type of TYPES) {
      const want = EXPECTED[kind][type];
      it(`${kind} × ${type}: ${want ?? "nothing revoked"}`, () => {
        const cert = type === "signature" ? sig : auth;
        const got = decideRevocations(notice(kind, EXPECTED[kind].after), [cert]);
        expect(got).toEqual(want ? [{ serial: cert.serial, reason: want, reasonCode: CRL_REASON[want as keyof typeof CRL_REASON], source: `notice:N-${kind}` }] : []);
      });
    }
  }

  it("revokes nothing when after equals what was certified, for every item-change kind", () => {
    for (const kind of ["relocation", "move-out", "move-in", "name-change", "correction"] as const) {
      expect(decideRevocations(notice(kind, certified), [sig, auth])).toEqual([]);
    }
  });

  it("a correction that only swaps a character for its variant (髙 → 高) revokes nothing", () => {
    const restated = { ...certified, name: "高橋\u3000花子" };
    expect(decideRevocations(notice("correction", restated), [sig, auth])).toEqual([]);
    // …but a correction of any certified item does.
    for (const after of [{ ...certified, gender: "male" as const }, { ...certified, name: "髙橋\u3000花代" }, moved]) {
      expect(decideRevocations(notice("correction", after), [sig, auth]).map((d) => d.serial)).toEqual(["0a01"]);
    }
  });

  it("compares with what each certificate certified, not with the notice's before", () => {
    const older: CertifiedCertificate = { serial: "0b01", type: "signature", fourItems: moved };
    // Already certifies the new address: kept; the other signature certificate certifies the old one: revoked.
    expect(decideRevocations(notice("relocation", moved, { before: certified }), [older, sig]).map((d) => d.serial)).toEqual(["0a01"]);
  });

  it("move-out and back: the move-out revokes; the move-in back to the same address revokes nothing more", () => {
    const away = { ...certified, address: "神奈川県横浜市本町１番地" };
    const out = decideRevocations(notice("move-out", away, { newMunicipalityCode: "141003" }), [sig, auth]);
    expect(out.map((d) => [d.serial, d.reasonCode])).toEqual([["0a01", 3]]);
    // The caller passes only the resident's unrevoked certificates: the signature certificate is gone.
    const stillValid = [sig, auth].filter((c) => !out.some((d) => d.serial === c.serial));
    const back = notice("move-in", certified, { noticeId: "N-back", sequence: 2, newMunicipalityCode: "271004" });
    expect(decideRevocations(back, stillValid)).toEqual([]);
    // Had the signature certificate been passed in, it would have been kept too: its items hold again.
    expect(decideRevocations(back, [sig, auth])).toEqual([]);
  });

  it("a certificate issued after the registry took a notice is not revoked by it: it certifies a later state", () => {
    // the registry at sequence 2 (moved, then moved again to `later`), a certificate issued then; the CA side
    // still has both notices to take
    const later = { ...certified, address: "大阪府大阪市北区中之島１丁目３番２０号" };
    const renewed: CertifiedCertificate = { serial: "0d01", type: "signature", fourItems: later, issuedAtSequence: 2 };
    const first = notice("relocation", moved, { sequence: 1 });
    const second = notice("relocation", later, { noticeId: "N-2", sequence: 2 });
    expect(decideRevocations(first, [sig, renewed]).map((d) => d.serial)).toEqual(["0a01"]);
    expect(decideRevocations(second, [renewed])).toEqual([]);
    // a later change than the certificate's does revoke it; so do a death and a removal, whenever they were
    expect(decideRevocations(notice("relocation", moved, { sequence: 3 }), [renewed]).map((d) => d.serial)).toEqual(["0d01"]);
    expect(decideRevocations(notice("death", undefined, { sequence: 1 }), [renewed]).map((d) => d.serial)).toEqual(["0d01"]);
  });

  it("death and removal revoke every certificate of the resident, whatever the items", () => {
    const sig2: CertifiedCertificate = { serial: "0c01", type: "signature", fourItems: moved };
    for (const kind of ["death", "removal"] as const) {
      const got = decideRevocations(notice(kind, certified), [sig, auth, sig2]);
      expect(got.map((d) => [d.serial, d.reason, d.reasonCode])).toEqual([
        ["0a01", "cessationOfOperation", 5], ["0a02", "cessationOfOperation", 5], ["0c01", "cessationOfOperation", 5],
      ]);
    }
  });

  it("decides once per serial, records the notice as the source, and revokes nothing for no certificates", () => {
    expect(decideRevocations(notice("death", undefined), [sig, sig])).toHaveLength(1);
    expect(decideRevocations(notice("death", undefined), [])).toEqual([]);
    expect(noticeSource("N1")).toBe("notice:N1");
  });

  it("refuses an item-change notice without after (ERR_NOTICE_MALFORMED), even though parseNotice never yields one", () => {
    expect(() => decideRevocations(notice("relocation", undefined), [sig])).toThrow(expect.objectContaining({ code: "ERR_NOTICE_MALFORMED" }));
    // Authentication certificates are kept without looking at the items.
    expect(decideRevocations(notice("relocation", undefined), [auth])).toEqual([]);
  });

  it("decides without the items of a certificate no rule compares (a store's context leaves them out), and never revokes for items it was not given", () => {
    const { fourItems: _, ...bare } = auth;
    for (const kind of Object.keys(NOTICE_RULES) as NoticeKind[]) {
      expect(decideRevocations(notice(kind, EXPECTED[kind].after), [bare])).toEqual(decideRevocations(notice(kind, EXPECTED[kind].after), [auth]));
    }
    // A signature certificate without them: a fault (ERR_INTERNAL), not a revocation nor a keep.
    const { fourItems: __, ...bareSig } = sig;
    expect(() => decideRevocations(notice("relocation", moved), [bareSig])).toThrow(expect.objectContaining({ code: "ERR_INTERNAL" }));
    expect(decideRevocations(notice("death", undefined), [bareSig]).map((d) => d.serial)).toEqual(["0a01"]);
  });

  it("an unknown kind (a hand-made notice) is a bug, not a silent keep", () => {
    expect(() => decideRevocations(notice("marriage" as NoticeKind, moved), [sig])).toThrow(expect.objectContaining({ code: "ERR_INTERNAL" }));
  });
});
