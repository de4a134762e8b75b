/**
 * Path building (the search RFC 5280 §6 leaves to the implementation; RFC 4158 describes the craft): from a
 * certificate up to a trust anchor through a pool of certificates, by issuer name with key identifiers as the
 * tie-breaker. Links whose signature verifies are preferred; when no such path exists, the first path by
 * names alone is returned so that validation can say which signature failed instead of "no path".
 */
import type { Certificate } from "./certificate.js";
import { nameEquals } from "./name.js";
import { certificateVerifies, workingKeyOf } from "./signature.js";

const MAX_DEPTH = 12;
const MAX_STEPS = 2000;

export interface BuiltPath {
  /** end entity first, the certificate the anchor issued last */
  readonly chain: readonly Certificate[];
  readonly anchor: Certificate;
}

/** 2: verifies; 1: cannot tell here (a DSA key whose parameters are inherited from further up); 0: fails */
function linkStrength(subject: Certificate, issuer: Certificate): number {
  if (certificateVerifies(subject, workingKeyOf(issuer.publicKey))) return 2;
  return issuer.publicKey.parameters === undefined && issuer.publicKey.algorithm === "1.2.840.10040.4.1" ? 1 : 0;
}

function keyIdMatch(subject: Certificate, issuer: Certificate): number {
  if (!subject.authorityKeyId || !issuer.subjectKeyId) return 0;
  return subject.authorityKeyId.equals(issuer.subjectKeyId) ? 1 : -1;
}

export function buildChain(endEntity: Certificate, pool: readonly Certificate[], anchors: readonly Certificate[]): BuiltPath | undefined {
  const search = (strict: boolean): BuiltPath | undefined => {
    // A budget on the search: many certificates sharing one name (cross-certificates, rollovers) could otherwise
    // make the depth-first search exponential.
    let budget = MAX_STEPS;
    const walk = (chain: Certificate[]): BuiltPath | undefined => {
      if (--budget < 0) return undefined;
      const top = chain[chain.length - 1]!;
      const fits = (issuer: Certificate) => nameEquals(issuer.subject, top.issuer) && (!strict || linkStrength(top, issuer) > 0);
      const anchor = anchors.find(fits);
      if (anchor) return { chain: [...chain], anchor };
      if (chain.length >= MAX_DEPTH) return undefined;
      const candidates = pool
        .filter((c) => !chain.some((x) => x.der.equals(c.der)) && fits(c))
        .sort((a, b) => keyIdMatch(top, b) - keyIdMatch(top, a));
      for (const c of candidates) {
        const found = walk([...chain, c]);
        if (found) return found;
      }
      return undefined;
    };
    return walk([endEntity]);
  };
  return search(true) ?? search(false);
}
