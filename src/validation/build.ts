/**
 * Path building (the search RFC 5280 §6 leaves to the implementation; RFC 4158 describes the craft): from a
 * certificate up to a trust anchor through a pool of certificates, by issuer name with key identifiers as the
 * tie-breaker. Several paths may exist — a prefecture CA reached directly and through the Bridge CA's
 * cross-certificate (ca/bridge.ts), an old and a new cross-certificate — so the builder yields candidates in
 * order of preference and the caller validates them until one is valid:
 *   1. links whose signature verifies and whose issuer may issue them (a CA, keyCertSign, every
 *      pathLenConstraint kept: RFC 4158 §3.5 prunes with these), shortest first;
 *   2. links whose signature verifies, whatever the constraints (so validation can say which one a path breaks);
 *   3. names alone (so validation can say which signature failed instead of "no path").
 * Breadth-first, so a short path is never hidden behind a long one through a mesh of cross-certificates.
 */
import type { Certificate } from "./certificate.js";
import { KEY_USAGE } from "./certificate.js";
import { nameEquals } from "./name.js";
import { certificateVerifies, spkiId, workingKeyOf } from "./signature.js";

const MAX_DEPTH = 12;
/** Partial paths expanded per pass: a mesh of cross-certificates sharing names could otherwise explode. */
const MAX_STEPS = 2000;
/** Partial paths kept per level of the breadth-first search. */
const MAX_FRONTIER = 256;
/**
 * Signature checks one build may spend over all its passes, in RSA-2048 verifications (a larger key counts by
 * the square of its size): a pool of certificates sharing names (a hostile signed document carries its own)
 * costs a bounded few milliseconds, not minutes. A genuine JPKI path needs one to three.
 */
export const MAX_VERIFY_WORK = 128;
/** How often one certificate is expanded: once in the explaining passes, a few times where pathLen matters. */
const MAX_EXPANSIONS = { constraints: 4, other: 1 } as const;

export interface BuiltPath {
  /** end entity first, the certificate the anchor issued last */
  readonly chain: readonly Certificate[];
  readonly anchor: Certificate;
}

/** The work one build has spent, and the links it has checked (by subject certificate and issuer key). */
interface Budget {
  work: number;
  readonly links: Map<Certificate, Map<string, number>>;
}

/**
 * 2: verifies; 1: cannot tell here (a DSA key whose parameters are inherited from further up); 0: fails, or
 * the build's signature budget is spent. Each (certificate, issuer key) pair is checked once per build: a pool
 * of certificates sharing one key costs one verification per subject, not one per path through it.
 */
function linkStrength(subject: Certificate, issuer: Certificate, budget: Budget): number {
  const key = spkiId(issuer.publicKey);
  let known = budget.links.get(subject);
  const seen = known?.get(key);
  if (seen !== undefined) return seen;
  const bytes = issuer.publicKey.key.length;
  const cost = Math.max(1, (bytes / 270) ** 2); // ~270 octets: an RSA-2048 subjectPublicKey
  if (budget.work + cost > MAX_VERIFY_WORK) return 0;
  budget.work += cost;
  const strength = certificateVerifies(subject, workingKeyOf(issuer.publicKey))
    ? 2
    : issuer.publicKey.parameters === undefined && issuer.publicKey.algorithm === "1.2.840.10040.4.1"
      ? 1
      : 0;
  if (!known) budget.links.set(subject, (known = new Map()));
  known.set(key, strength);
  return strength;
}

function keyIdMatch(subject: Certificate, issuer: Certificate): number {
  if (!subject.authorityKeyId || !issuer.subjectKeyId) return 0;
  return subject.authorityKeyId.equals(issuer.subjectKeyId) ? 1 : -1;
}

/**
 * Whether `issuer` may stand above `chain` as an intermediate (§6.1.4 (k), (l), (n)): a CA whose key may sign
 * certificates, and whose pathLenConstraint allows the non-self-issued intermediates already below it.
 */
function mayIssue(issuer: Certificate, chain: readonly Certificate[]): boolean {
  if (!issuer.basicConstraints?.cA) return false;
  if (issuer.keyUsage && !issuer.keyUsage.has(KEY_USAGE.keyCertSign)) return false;
  const limit = issuer.basicConstraints.pathLen;
  if (limit === undefined) return true;
  let below = 0;
  for (let i = 1; i < chain.length; i++) if (!chain[i]!.selfIssued) below++;
  return below <= limit;
}

const enum Level {
  Names = 0,
  Signatures = 1,
  Constraints = 2,
}

function* search(endEntity: Certificate, pool: readonly Certificate[], anchors: readonly Certificate[], level: Level, budget: Budget): Generator<BuiltPath> {
  const signs = (subject: Certificate, issuer: Certificate) => level === Level.Names || linkStrength(subject, issuer, budget) > 0;
  const maxExpansions = level === Level.Constraints ? MAX_EXPANSIONS.constraints : MAX_EXPANSIONS.other;
  const expanded = new Map<Certificate, number>();
  let steps = MAX_STEPS;
  let frontier: Certificate[][] = [[endEntity]];
  while (frontier.length > 0) {
    const next: Certificate[][] = [];
    for (const chain of frontier) {
      if (--steps < 0) return;
      const top = chain[chain.length - 1]!;
      for (const a of anchors) if (nameEquals(a.subject, top.issuer) && signs(top, a)) yield { chain, anchor: a };
      if (chain.length >= MAX_DEPTH) continue;
      const times = expanded.get(top) ?? 0;
      if (times >= maxExpansions) continue;
      expanded.set(top, times + 1);
      // Names, constraints and the chain first (cheap), the signature last (the cost).
      const candidates = pool
        .filter((c) => nameEquals(c.subject, top.issuer) && !chain.some((x) => x.der.equals(c.der)) && (level < Level.Constraints || mayIssue(c, chain)))
        .sort((a, b) => keyIdMatch(top, b) - keyIdMatch(top, a));
      for (const c of candidates) {
        if (next.length >= MAX_FRONTIER) break;
        if (signs(top, c)) next.push([...chain, c]);
      }
    }
    frontier = next;
  }
}

const ids = new WeakMap<Certificate, number>();
let nextId = 0;
/** A number per parsed certificate object (the pool and anchors are parsed once per call). */
function idOf(c: Certificate): number {
  let id = ids.get(c);
  if (id === undefined) ids.set(c, (id = nextId++));
  return id;
}

/** What a build spent (for tests and diagnostics): signature checks, in RSA-2048 verifications. */
export interface BuildStats {
  verifyWork: number;
}

/** Distinct candidate paths, the most promising first (see above), found as they are asked for. */
export function* chainCandidates(endEntity: Certificate, pool: readonly Certificate[], anchors: readonly Certificate[], stats?: BuildStats): Generator<BuiltPath> {
  const seen = new Set<string>();
  const budget: Budget = { work: 0, links: new Map() };
  try {
    yield* candidatesWithin(endEntity, pool, anchors, budget, seen);
  } finally {
    if (stats) stats.verifyWork = budget.work;
  }
}

function* candidatesWithin(endEntity: Certificate, pool: readonly Certificate[], anchors: readonly Certificate[], budget: Budget, seen: Set<string>): Generator<BuiltPath> {
  for (const level of [Level.Constraints, Level.Signatures, Level.Names]) {
    let found = false;
    for (const p of search(endEntity, pool, anchors, level, budget)) {
      const key = [...p.chain.map(idOf), idOf(p.anchor)].join(".");
      if (seen.has(key)) continue;
      seen.add(key);
      found = true;
      yield p;
    }
    // A path that keeps every constraint is what the caller wants; the weaker passes only explain failures.
    if (found) return;
  }
}

/** Up to `limit` candidate paths. */
export function buildChains(endEntity: Certificate, pool: readonly Certificate[], anchors: readonly Certificate[], limit = 8, stats?: BuildStats): BuiltPath[] {
  const out: BuiltPath[] = [];
  for (const p of chainCandidates(endEntity, pool, anchors, stats)) {
    out.push(p);
    if (out.length >= limit) break;
  }
  return out;
}

export function buildChain(endEntity: Certificate, pool: readonly Certificate[], anchors: readonly Certificate[]): BuiltPath | undefined {
  return buildChains(endEntity, pool, anchors, 1)[0];
}
