/** The public reason → provider reason table (provider/reasons.ts). */
import { describe, expect, it } from "vitest";
import { CRL_REASON } from "../crl/reason.js";
import { privateReasonFor } from "./reasons.js";

describe("privateReasonFor", () => {
  it("carries over what says something about the person or the identity", () => {
    expect(privateReasonFor(CRL_REASON.affiliationChanged, false)).toBe("affiliationChanged");
    expect(privateReasonFor(CRL_REASON.cessationOfOperation, false)).toBe("cessationOfOperation");
    expect(privateReasonFor(CRL_REASON.superseded, false)).toBe("superseded");
    expect(privateReasonFor(CRL_REASON.certificateHold, false)).toBe("certificateHold");
  });

  it("says keyCompromise only for a certificate of the card's own key", () => {
    expect(privateReasonFor(CRL_REASON.keyCompromise, true)).toBe("keyCompromise");
    expect(privateReasonFor(CRL_REASON.keyCompromise, false)).toBe("cessationOfOperation");
  });

  it("treats an absent or unknown reason as unspecified, and removeFromCRL as nothing to revoke", () => {
    expect(privateReasonFor(undefined, false)).toBe("unspecified");
    expect(privateReasonFor(7, false)).toBe("unspecified");
    expect(privateReasonFor(CRL_REASON.removeFromCRL, false)).toBeUndefined();
    expect(privateReasonFor(CRL_REASON.cACompromise, false)).toBe("cessationOfOperation");
  });
});
