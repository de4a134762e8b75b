/** CA ids with key generations (ca/rollover.ts): "13-sig", "13-sig-g2"; which generation is active. */
import { describe, expect, it } from "vitest";
import { errorCodeOf } from "../../test/error-code.js";
import { activeGeneration, caGeneration, caId, caIdOfUrl, caUrls, isRetired, parseCaId } from "./ids.js";

describe("CA ids and key generations", () => {
  it("generation 1 keeps the plain id; later ones carry -g<n>, and parse back", () => {
    expect(caId("13", "signature")).toBe("13-sig");
    expect(caId("13", "authentication", 1)).toBe("13-auth");
    expect(caId("1", "signature", 2)).toBe("01-sig-g2");
    expect(parseCaId("13-sig-g2")).toEqual({ prefectureCode: "13", purpose: "signature", generation: 2 });
    expect(parseCaId("27-auth-g10")).toEqual({ prefectureCode: "27", purpose: "authentication", generation: 10 });
    expect(parseCaId("13")).toEqual({ prefectureCode: "13", purpose: "signature", generation: 1 });
    expect(caGeneration("13-sig")).toBe(1);
    // one spelling per generation: no -g1, no generation without a purpose
    for (const bad of ["13-sig-g1", "13-sig-g0", "13-g2", "13-sig-g", "13-sig-g2x", "48-sig-g2"]) expect(errorCodeOf(() => parseCaId(bad)), bad).not.toBe("accepted");
    expect(errorCodeOf(() => caId("13", "signature", 0))).toBe("ERR_USAGE");
  });

  it("the highest generation of a prefecture and purpose is active; the lower ones are retired", () => {
    const rec = (id: string) => ({ id, ...parseCaId(id), prefectureCode: parseCaId(id).prefectureCode });
    const all = ["13-sig", "13-sig-g3", "13-sig-g2", "13-auth", "27-sig-g2", "27-sig"].map(rec);
    expect(activeGeneration(all, "13", "signature")?.id).toBe("13-sig-g3");
    expect(activeGeneration(all, "13", "authentication")?.id).toBe("13-auth");
    expect(activeGeneration(all, "27", "signature")?.id).toBe("27-sig-g2");
    expect(activeGeneration(all, "01", "signature")).toBeUndefined();
    expect(["13-sig", "13-sig-g2", "13-sig-g3", "13-auth", "27-sig"].map((id) => isRetired(all, id))).toEqual([true, true, false, false, true]);
  });

  it("reads the CA id back from the URLs caUrls makes, under any base URL, and nothing else", () => {
    for (const id of ["13-sig", "13-sig-g2", "27-auth-g10"]) {
      for (const base of ["https://jpki.example.jp", "http://127.0.0.1:8080/pub"]) {
        const u = caUrls(base, id);
        expect([caIdOfUrl(u.arl, "arl"), caIdOfUrl(u.crl, "crl"), caIdOfUrl(u.caCertificate, "caCertificate"), caIdOfUrl(u.ocsp, "ocsp")], `${base} ${id}`).toEqual([id, id, id, id]);
      }
    }
    const u = caUrls("https://jpki.example.jp", "13-sig-g2");
    // another kind of URL, a partition, a delta, a spelling caId never makes, not a CA
    for (const [url, which] of [[u.crl, "arl"], [u.partition("131016"), "crl"], [u.delta, "crl"], ["https://jpki.example.jp/arl/13.crl", "arl"], ["https://jpki.example.jp/arl/13-sig-g1.crl", "arl"], ["https://jpki.example.jp/arl/bridge.crl", "arl"], ["", "arl"]] as const) {
      expect(caIdOfUrl(url, which), url).toBeUndefined();
    }
  });
});
