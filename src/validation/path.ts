/**
 * Basic path validation, RFC 5280 §6.1: the state of §6.1.2, each certificate through §6.1.3 (and §6.1.4
 * for the intermediates), then the wrap-up of §6.1.5. Pure: certificates, anchor, time and options in, a value
 * out. Revocation (§6.1.3(a)(3)) is done by the caller over the same path once this succeeds (see validate.ts).
 *
 * Certificates are numbered as the RFC numbers them: 1 is issued by the trust anchor, n is the end entity.
 */
import { ANY_POLICY, RECOGNISED_EXTENSIONS, KEY_USAGE, type Certificate } from "./certificate.js";
import { isoTime } from "./civil-time.js";
import { addConstraints, checkCertificateNames, UNCONSTRAINED, type NameConstraintsState } from "./name-constraints.js";
import { formatName, nameEquals, type Name } from "./name.js";
import { applyMappings, initialPolicyTree, intersectWithInitial, leafPolicies, processPolicies, type PolicyTree } from "./policy-tree.js";
import { certificateVerifies, signatureAlgorithmSupported, workingKeyOf, type WorkingKey } from "./signature.js";
import type { FailureReason, PathStatus, PolicyOptions } from "./types.js";

/** The trust anchor information of §6.1.1(d). */
export interface TrustAnchor {
  readonly name: Name;
  readonly key: WorkingKey;
}

export interface PathFailure {
  readonly ok: false;
  readonly status: Exclude<PathStatus, "valid" | "revoked" | "revocation-unknown">;
  readonly reason: FailureReason;
  /** 1..n as in §6.1 */
  readonly i: number;
  readonly message: string;
}

export interface PathSuccess {
  readonly ok: true;
  readonly policies: readonly string[];
  /** workingKeys[i - 1]: the key that verified certificate i (its issuer's, with inherited parameters) */
  readonly issuerKeys: readonly WorkingKey[];
}

export function processPath(params: {
  readonly anchor: TrustAnchor;
  /** certificates 1..n: the one the anchor issued first, the end entity last */
  readonly path: readonly Certificate[];
  readonly at: Date;
  readonly policy?: PolicyOptions;
}): PathFailure | PathSuccess {
  const { anchor, path, at } = params;
  const t = at.getTime();
  const n = path.length;
  const opts = params.policy ?? {};
  const initialPolicySet = opts.initialPolicySet ?? [ANY_POLICY];
  // §6.1.2 initialisation
  let tree: PolicyTree = initialPolicyTree();
  let names: NameConstraintsState = UNCONSTRAINED;
  let explicitPolicy = opts.initialExplicitPolicy ? 0 : n + 1;
  let inhibitAnyPolicy = opts.initialAnyPolicyInhibit ? 0 : n + 1;
  let policyMapping = opts.initialPolicyMappingInhibit ? 0 : n + 1;
  let workingKey = anchor.key;
  let workingIssuer = anchor.name;
  let maxPathLength = n;
  const issuerKeys: WorkingKey[] = [];

  const fail = (i: number, status: PathFailure["status"], reason: FailureReason, message: string): PathFailure => ({ ok: false, status, reason, i, message });

  for (let i = 1; i <= n; i++) {
    const cert = path[i - 1]!;
    const last = i === n;
    // §6.1.3(a)(4) first: a certificate from another issuer fails as such, not as a bad signature.
    if (!nameEquals(cert.issuer, workingIssuer)) {
      return fail(i, "untrusted", "name-chaining", `certificate ${formatName(cert.subject)} names issuer ${formatName(cert.issuer)}, not ${formatName(workingIssuer)}`);
    }
    // §6.1.3(a)(1): signature under the working public key (with inherited parameters).
    if (!signatureAlgorithmSupported(cert.signatureAlgorithm)) {
      return fail(i, "untrusted", "signature-algorithm-unsupported", `certificate ${formatName(cert.subject)} is signed with an algorithm this engine does not check`);
    }
    if (!certificateVerifies(cert, workingKey)) {
      return fail(i, "untrusted", "signature-invalid", `certificate ${formatName(cert.subject)} does not verify with the key of ${formatName(workingIssuer)}`);
    }
    issuerKeys.push(workingKey);
    // §6.1.3(a)(2): validity at the chosen time.
    // getTime(): comparing Dates with < converts both through Symbol.toPrimitive, dearer than it looks
    if (t < cert.notBefore.getTime()) return fail(i, "not-yet-valid", "not-yet-valid", `certificate ${formatName(cert.subject)} is not valid before ${isoTime(cert.notBefore)}`);
    if (t > cert.notAfter.getTime()) return fail(i, "expired", "expired", `certificate ${formatName(cert.subject)} expired at ${isoTime(cert.notAfter)}`);
    // §6.1.3(b)–(c): name constraints, except for self-issued intermediates.
    if (!(cert.selfIssued && !last)) {
      const v = checkCertificateNames(names, cert.subject, cert.subjectAltName);
      if (v) {
        const shown = v.name.kind === "dn" ? formatName(v.name.value) : v.name.kind === "ip" || v.name.kind === "other" ? v.name.kind : v.name.value;
        return fail(
          i,
          "profile-violation",
          v.kind === "permitted" ? "name-constraints-permitted" : "name-constraints-excluded",
          `${v.name.kind} name ${shown} is ${v.kind === "permitted" ? "outside the permitted" : "within the excluded"} subtrees`,
        );
      }
    }
    // §6.1.3(d)–(e): the policy tree.
    if (cert.policies && tree) tree = processPolicies(tree, i, cert.policies, inhibitAnyPolicy > 0 || (!last && cert.selfIssued));
    else if (!cert.policies) tree = null;
    // §6.1.3(f)
    if (explicitPolicy <= 0 && tree === null) return fail(i, "profile-violation", "no-valid-policy", `an explicit policy is required but no policy is valid at certificate ${formatName(cert.subject)}`);

    if (last) {
      // §6.1.5 wrap-up
      if (explicitPolicy !== 0) explicitPolicy--;
      if (cert.policyConstraints?.requireExplicitPolicy === 0) explicitPolicy = 0;
      const unknown = unknownCritical(cert);
      if (unknown) return fail(i, "profile-violation", "unknown-critical-extension", `certificate ${formatName(cert.subject)} has critical extension ${unknown}, which is not processed`);
      tree = intersectWithInitial(tree, n, initialPolicySet);
      if (explicitPolicy <= 0 && tree === null) return fail(i, "profile-violation", "no-valid-policy", "an explicit policy is required but the path is valid for none of the acceptable policies");
      return { ok: true, policies: leafPolicies(tree, n), issuerKeys };
    }

    // §6.1.4 preparation for certificate i+1
    if (cert.policyMappings) {
      // (a) anyPolicy may not be mapped
      if (cert.policyMappings.some((m) => m.issuerDomainPolicy === ANY_POLICY || m.subjectDomainPolicy === ANY_POLICY)) {
        return fail(i, "profile-violation", "policy-mapping-any-policy", `certificate ${formatName(cert.subject)} maps anyPolicy`);
      }
      // (b)
      tree = applyMappings(tree, i, cert.policyMappings, policyMapping > 0);
    }
    // (c)–(f)
    workingIssuer = cert.subject;
    workingKey = workingKeyOf(cert.publicKey, workingKey);
    // (g)
    if (cert.nameConstraints) names = addConstraints(names, cert.nameConstraints);
    // (h)
    if (!cert.selfIssued) {
      if (explicitPolicy !== 0) explicitPolicy--;
      if (policyMapping !== 0) policyMapping--;
      if (inhibitAnyPolicy !== 0) inhibitAnyPolicy--;
    }
    // (i)
    const pc = cert.policyConstraints;
    if (pc?.requireExplicitPolicy !== undefined && pc.requireExplicitPolicy < explicitPolicy) explicitPolicy = pc.requireExplicitPolicy;
    if (pc?.inhibitPolicyMapping !== undefined && pc.inhibitPolicyMapping < policyMapping) policyMapping = pc.inhibitPolicyMapping;
    // (j)
    if (cert.inhibitAnyPolicy !== undefined && cert.inhibitAnyPolicy < inhibitAnyPolicy) inhibitAnyPolicy = cert.inhibitAnyPolicy;
    // (k): a CA. Without basicConstraints (a v1/v2 certificate included) nothing says it is one.
    if (!cert.basicConstraints?.cA) return fail(i, "profile-violation", "not-a-ca", `certificate ${formatName(cert.subject)} issues certificates but is not a CA (basicConstraints cA)`);
    // (l)
    if (!cert.selfIssued) {
      if (maxPathLength <= 0) return fail(i, "profile-violation", "path-length-exceeded", `certificate ${formatName(cert.subject)} exceeds a pathLenConstraint above it`);
      maxPathLength--;
    }
    // (m)
    if (cert.basicConstraints.pathLen !== undefined && cert.basicConstraints.pathLen < maxPathLength) maxPathLength = cert.basicConstraints.pathLen;
    // (n)
    if (cert.keyUsage && !cert.keyUsage.has(KEY_USAGE.keyCertSign)) return fail(i, "profile-violation", "key-usage-no-key-cert-sign", `CA certificate ${formatName(cert.subject)} has keyUsage without keyCertSign`);
    // (o)
    const unknown = unknownCritical(cert);
    if (unknown) return fail(i, "profile-violation", "unknown-critical-extension", `certificate ${formatName(cert.subject)} has critical extension ${unknown}, which is not processed`);
  }
  // n = 0: nothing to validate.
  return fail(0, "untrusted", "no-trust-anchor", "the chain is empty");
}

function unknownCritical(cert: Certificate): string | undefined {
  for (const e of cert.extensions.values()) if (e.critical && !RECOGNISED_EXTENSIONS.has(e.oid)) return e.oid;
  return undefined;
}
