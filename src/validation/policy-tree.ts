/**
 * The valid_policy_tree of RFC 5280 §6.1.2(a), grown by §6.1.3(d), mapped by §6.1.4(b), and intersected with
 * the user-initial-policy-set at §6.1.5(g). Immutable steps: each function takes a tree and returns a new one
 * (or null, the NULL tree), so a caller can keep the tree of any depth for diagnosis.
 */
import { ANY_POLICY } from "./certificate.js";

export interface PolicyNode {
  readonly validPolicy: string;
  /** policy qualifiers (DER), as the certificate carried them */
  readonly qualifiers?: Buffer;
  readonly expectedPolicySet: readonly string[];
  readonly children: readonly PolicyNode[];
}

export type PolicyTree = PolicyNode | null;

/** §6.1.2(a): one node, anyPolicy, at depth 0. */
export function initialPolicyTree(): PolicyTree {
  return { validPolicy: ANY_POLICY, expectedPolicySet: [ANY_POLICY], children: [] };
}

/** Nodes at a depth (root = 0). */
export function nodesAtDepth(tree: PolicyTree, depth: number): PolicyNode[] {
  if (!tree) return [];
  let level: PolicyNode[] = [tree];
  for (let d = 0; d < depth; d++) level = level.flatMap((n) => n.children);
  return level;
}

/** Rebuilds the tree, replacing the children of every node at `depth` by `grow(node)`. */
function mapDepth(node: PolicyNode, depth: number, grow: (n: PolicyNode) => readonly PolicyNode[]): PolicyNode {
  if (depth === 0) return { ...node, children: grow(node) };
  return { ...node, children: node.children.map((c) => mapDepth(c, depth - 1, grow)) };
}

/** Removes nodes above `depth` that have no children, bottom up; returns null if the root goes (§6.1.3(d)(3)). */
export function prune(tree: PolicyTree, depth: number): PolicyTree {
  const walk = (n: PolicyNode, d: number): PolicyNode | null => {
    if (d === depth) return n;
    const children = n.children.map((c) => walk(c, d + 1)).filter((c): c is PolicyNode => c !== null);
    return children.length === 0 ? null : { ...n, children };
  };
  return tree ? walk(tree, 0) : null;
}

export interface CertificatePolicy {
  readonly policy: string;
  readonly qualifiers?: Buffer;
}

/**
 * §6.1.3(d): processes certificate i's policies into depth i. `anyPolicyAllowed` is the (d)(2) condition:
 * inhibit_anyPolicy > 0, or i < n and the certificate is self-issued.
 */
export function processPolicies(tree: PolicyTree, depth: number, policies: readonly CertificatePolicy[], anyPolicyAllowed: boolean): PolicyTree {
  if (!tree) return null;
  const parentLevel = nodesAtDepth(tree, depth - 1);
  const anyInCert = policies.find((p) => p.policy === ANY_POLICY);
  const explicit = policies.filter((p) => p.policy !== ANY_POLICY);
  // (d)(1)(i): P matched by some parent's expected_policy_set; (d)(1)(ii): otherwise under an anyPolicy parent.
  const matched = new Set(explicit.filter((p) => parentLevel.some((n) => n.expectedPolicySet.includes(p.policy))).map((p) => p.policy));
  const next = mapDepth(tree, depth - 1, (parent) => {
    const children: PolicyNode[] = [];
    for (const p of explicit) {
      const viaExpected = parent.expectedPolicySet.includes(p.policy);
      const viaAny = !matched.has(p.policy) && parent.validPolicy === ANY_POLICY;
      if (viaExpected || viaAny) children.push({ validPolicy: p.policy, qualifiers: p.qualifiers, expectedPolicySet: [p.policy], children: [] });
    }
    // (d)(2): anyPolicy in the certificate carries every expected policy not yet represented under this parent.
    if (anyInCert && anyPolicyAllowed) {
      for (const e of parent.expectedPolicySet) {
        if (!children.some((c) => c.validPolicy === e)) children.push({ validPolicy: e, qualifiers: anyInCert.qualifiers, expectedPolicySet: [e], children: [] });
      }
    }
    return children;
  });
  return prune(next, depth);
}

export interface PolicyMapping {
  readonly issuerDomainPolicy: string;
  readonly subjectDomainPolicy: string;
}

/**
 * §6.1.4(b): applies certificate i's policyMappings to depth i. With policy_mapping > 0 the expected sets are
 * rewritten (and an anyPolicy node at depth i stands in for an unmentioned issuer policy, (b)(1)); with
 * policy_mapping = 0 mapped policies are deleted ((b)(2)).
 */
export function applyMappings(tree: PolicyTree, depth: number, mappings: readonly PolicyMapping[], mappingAllowed: boolean): PolicyTree {
  if (!tree) return null;
  const byIssuer = new Map<string, string[]>();
  for (const m of mappings) {
    const l = byIssuer.get(m.issuerDomainPolicy) ?? [];
    if (!l.includes(m.subjectDomainPolicy)) l.push(m.subjectDomainPolicy);
    byIssuer.set(m.issuerDomainPolicy, l);
  }
  const level = nodesAtDepth(tree, depth);
  if (!mappingAllowed) {
    const next = mapDepth(tree, depth - 1, (parent) => parent.children.filter((c) => !byIssuer.has(c.validPolicy)));
    return prune(next, depth);
  }
  const present = new Set(level.map((n) => n.validPolicy));
  const anyNode = level.find((n) => n.validPolicy === ANY_POLICY);
  return mapDepth(tree, depth - 1, (parent) => {
    const children = parent.children.map((c) => {
      const mapped = byIssuer.get(c.validPolicy);
      return mapped ? { ...c, expectedPolicySet: mapped } : c;
    });
    // (b)(1): an issuer policy no node carries, but anyPolicy does: a node under the anyPolicy node's parent.
    if (anyNode && parent.children.includes(anyNode)) {
      for (const [idp, sdps] of byIssuer) {
        if (!present.has(idp)) children.push({ validPolicy: idp, qualifiers: anyNode.qualifiers, expectedPolicySet: sdps, children: [] });
      }
    }
    return children;
  });
}

/**
 * §6.1.5(g): the intersection of the tree with the user-initial-policy-set. Returns the pruned tree; with
 * anyPolicy in the initial set the tree is returned as it is ((g)(ii)).
 */
export function intersectWithInitial(tree: PolicyTree, depth: number, initial: readonly string[]): PolicyTree {
  if (!tree || initial.includes(ANY_POLICY)) return tree;
  const wanted = new Set(initial);
  // (g)(iii)(1)–(2): valid_policy_node_set is the nodes whose parent is anyPolicy; drop those not wanted.
  const walk = (n: PolicyNode, d: number, parentAny: boolean): PolicyNode | null => {
    if (parentAny && n.validPolicy !== ANY_POLICY && !wanted.has(n.validPolicy)) return null;
    if (d === depth) return n;
    const children = n.children.map((c) => walk(c, d + 1, n.validPolicy === ANY_POLICY)).filter((c): c is PolicyNode => c !== null);
    return { ...n, children };
  };
  let next = walk(tree, 0, false);
  // (g)(iii)(3): an anyPolicy leaf is replaced by the wanted policies not already present at depth n.
  if (next) {
    const leaves = nodesAtDepth(next, depth);
    const anyLeaf = leaves.find((n) => n.validPolicy === ANY_POLICY);
    if (anyLeaf) {
      const present = new Set(leaves.map((n) => n.validPolicy));
      const extra = [...wanted].filter((p) => !present.has(p));
      next = mapDepth(next, depth - 1, (parent) => {
        if (!parent.children.includes(anyLeaf)) return parent.children;
        return [
          ...parent.children.filter((c) => c !== anyLeaf),
          ...extra.map((p) => ({ validPolicy: p, qualifiers: anyLeaf.qualifiers, expectedPolicySet: [p], children: [] })),
        ];
      });
    }
  }
  return prune(next, depth);
}

/** The valid policies of a finished tree: its leaves' valid_policy values. */
export function leafPolicies(tree: PolicyTree, depth: number): string[] {
  return [...new Set(nodesAtDepth(tree, depth).map((n) => n.validPolicy))];
}
