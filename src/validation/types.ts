/**
 * The result of path validation, RFC 5280 §6.1.6 and §6.3: a value, never an exception. A failing path names
 * the certificate that failed (its index in the chain as given, 0 = the end entity) and a precise reason.
 */
import type { CrlReasonName } from "../crl/reason.js";

export type PathStatus = "valid" | "revoked" | "expired" | "not-yet-valid" | "untrusted" | "profile-violation" | "revocation-unknown";

/** Why a path failed; stable strings, one per rule of §6.1 / §6.3. */
export const FAILURE_REASONS = {
  "malformed-certificate": "a certificate could not be decoded",
  "no-trust-anchor": "the top of the chain is not issued by any trust anchor",
  "name-chaining": "the issuer name does not match the previous certificate's subject (§6.1.3(a)(4))",
  "signature-invalid": "the signature does not verify with the issuer's public key (§6.1.3(a)(1))",
  "signature-algorithm-unsupported": "the certificate is signed with an algorithm this engine does not check",
  expired: "the validation time is after notAfter (§6.1.3(a)(2))",
  "not-yet-valid": "the validation time is before notBefore (§6.1.3(a)(2))",
  "not-a-ca": "an intermediate certificate lacks basicConstraints cA=TRUE (§6.1.4(k))",
  "path-length-exceeded": "a pathLenConstraint is exceeded (§6.1.4(l))",
  "key-usage-no-key-cert-sign": "an intermediate certificate's keyUsage lacks keyCertSign (§6.1.4(n))",
  "unknown-critical-extension": "a certificate carries a critical extension this engine does not process (§6.1.4(o), §6.1.5(f))",
  "policy-mapping-any-policy": "a policyMappings extension maps to or from anyPolicy (§6.1.4(a))",
  "no-valid-policy": "an explicit policy is required but the valid_policy_tree is empty (§6.1.3(f), §6.1.5(g))",
  "name-constraints-permitted": "a name is outside the permitted subtrees (§6.1.3(b))",
  "name-constraints-excluded": "a name is within the excluded subtrees (§6.1.3(c))",
  revoked: "the certificate is revoked (§6.3)",
  "revocation-unknown": "no usable CRL covers the certificate for all reasons (§6.3.3)",
} as const;

export type FailureReason = keyof typeof FAILURE_REASONS;

export interface Revocation {
  readonly time: Date;
  readonly reason: CrlReasonName;
  readonly invalidityDate?: Date;
  /** which revocation source said so */
  readonly source: RevocationSourceName;
}

/**
 * Where revocation status comes from (RFC 5280 §6.3 CRLs, RFC 6960 OCSP). validatePath asks the sources in the
 * order given, per certificate, until one answers good or revoked.
 */
export type RevocationSourceName = "crl" | "ocsp";

export const REVOCATION_SOURCES: readonly RevocationSourceName[] = Object.freeze(["crl", "ocsp"]);

/** What the revocation check of one certificate of the path came to, and which source decided it. */
export interface RevocationCheck {
  /** index in the chain as given: 0 = the end entity */
  readonly index: number;
  /** the source that answered, or "none" when no source could */
  readonly source: RevocationSourceName | "none";
  readonly status: "good" | "revoked" | "unknown";
  /** for OCSP: the responder asked */
  readonly url?: string;
  /** why the sources asked before it (or all of them) gave no answer */
  readonly detail?: string;
}

/** Why revocation status could not be established for one certificate (soft-fail reports these as warnings). */
export interface RevocationProblem {
  readonly index: number;
  readonly detail: string;
}

export type PathValidationResult =
  | {
      readonly status: "valid";
      /** the policies the path is valid for (leaves of the valid_policy_tree); empty when the tree is NULL */
      readonly policies: readonly string[];
      /** soft-fail: certificates whose revocation status could not be determined */
      readonly revocationWarnings: readonly RevocationProblem[];
      /** per certificate, which source answered; present when `revocationSources` was given */
      readonly revocationChecks?: readonly RevocationCheck[];
    }
  | {
      readonly status: Exclude<PathStatus, "valid">;
      readonly reason: FailureReason;
      /** index in the chain as given: 0 = the end entity */
      readonly index: number;
      readonly message: string;
      readonly revocation?: Revocation;
      /** the certificates checked up to the failure; present when `revocationSources` was given */
      readonly revocationChecks?: readonly RevocationCheck[];
    };

/** The inputs of §6.1.1 that a relying party chooses. */
export interface PolicyOptions {
  /** user-initial-policy-set; default [anyPolicy] */
  readonly initialPolicySet?: readonly string[];
  readonly initialExplicitPolicy?: boolean;
  readonly initialPolicyMappingInhibit?: boolean;
  readonly initialAnyPolicyInhibit?: boolean;
}

/**
 * hard-fail: a certificate whose status cannot be determined fails the path (revocation-unknown);
 * soft-fail: it passes, listed in revocationWarnings; off: no revocation checking.
 */
export type RevocationMode = "hard-fail" | "soft-fail" | "off";
