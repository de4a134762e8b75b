import { describe, expect, test } from "vitest";
import { ANY_POLICY } from "./certificate.js";
import { applyMappings, initialPolicyTree, intersectWithInitial, leafPolicies, nodesAtDepth, processPolicies, prune, type PolicyTree } from "./policy-tree.js";

const P1 = "2.16.840.1.101.3.2.1.48.1";
const P2 = "2.16.840.1.101.3.2.1.48.2";
const P3 = "2.16.840.1.101.3.2.1.48.3";
const pol = (...ids: string[]) => ids.map((policy) => ({ policy }));

function leaves(tree: PolicyTree, depth: number): string[] {
  return leafPolicies(tree, depth).sort();
}

describe("valid_policy_tree, RFC 5280 §6.1.3(d)", () => {
  test("explicit policies hang under the anyPolicy root ((d)(1)(ii))", () => {
    const t = processPolicies(initialPolicyTree(), 1, pol(P1, P2), false);
    expect(leaves(t, 1)).toEqual([P1, P2].sort());
    expect(nodesAtDepth(t, 1).every((n) => n.expectedPolicySet.length === 1)).toBe(true);
  });

  test("a policy the parent level does not expect is dropped, and the tree goes NULL when nothing is left ((d)(3))", () => {
    const t1 = processPolicies(initialPolicyTree(), 1, pol(P1), false);
    expect(processPolicies(t1, 2, pol(P2), false)).toBeNull();
    expect(leaves(processPolicies(t1, 2, pol(P1, P2), false), 2)).toEqual([P1]);
  });

  test("anyPolicy in a certificate carries every expected policy only while inhibit_anyPolicy allows ((d)(2))", () => {
    const t1 = processPolicies(initialPolicyTree(), 1, pol(P1, P2), false);
    expect(leaves(processPolicies(t1, 2, pol(ANY_POLICY), true), 2)).toEqual([P1, P2].sort());
    expect(processPolicies(t1, 2, pol(ANY_POLICY), false)).toBeNull();
    // the root anyPolicy continues as anyPolicy
    expect(leaves(processPolicies(initialPolicyTree(), 1, pol(ANY_POLICY), true), 1)).toEqual([ANY_POLICY]);
  });

  test("(d)(1)(i) before (d)(1)(ii): a policy matched by an expected set is not added again under anyPolicy", () => {
    // depth 1: anyPolicy and P1; depth 2: P1 matches the P1 node only
    const t1 = processPolicies(initialPolicyTree(), 1, pol(P1, ANY_POLICY), true);
    const t2 = processPolicies(t1, 2, pol(P1), false);
    expect(nodesAtDepth(t2, 2)).toHaveLength(1);
  });

  test("prune keeps only branches that reach the given depth", () => {
    const t1 = processPolicies(initialPolicyTree(), 1, pol(P1, P2), false);
    expect(prune(t1, 2)).toBeNull();
    expect(prune(null, 1)).toBeNull();
  });
});

describe("policy mappings, §6.1.4(b)", () => {
  test("a mapping rewrites the expected set when mapping is allowed ((b)(1))", () => {
    const t1 = processPolicies(initialPolicyTree(), 1, pol(P1), false);
    const m = applyMappings(t1, 1, [{ issuerDomainPolicy: P1, subjectDomainPolicy: P2 }], true);
    expect(nodesAtDepth(m, 1)[0]!.expectedPolicySet).toEqual([P2]);
    // the subject's P2 now continues the issuer's P1
    const t2 = processPolicies(m, 2, pol(P2), false);
    expect(nodesAtDepth(t2, 2).map((n) => n.validPolicy)).toEqual([P2]);
    // and its own P1 no longer does
    expect(processPolicies(m, 2, pol(P1), false)).toBeNull();
  });

  test("an issuer policy no node carries is grown under the anyPolicy node's parent ((b)(1))", () => {
    const t1 = processPolicies(initialPolicyTree(), 1, pol(ANY_POLICY), true);
    const m = applyMappings(t1, 1, [{ issuerDomainPolicy: P1, subjectDomainPolicy: P2 }, { issuerDomainPolicy: P1, subjectDomainPolicy: P3 }], true);
    const p1 = nodesAtDepth(m, 1).find((n) => n.validPolicy === P1);
    expect(p1?.expectedPolicySet).toEqual([P2, P3]);
    expect(nodesAtDepth(m, 1).map((n) => n.validPolicy).sort()).toEqual([ANY_POLICY, P1].sort());
  });

  test("with policy_mapping = 0 mapped policies are deleted and the tree pruned ((b)(2))", () => {
    const t1 = processPolicies(initialPolicyTree(), 1, pol(P1, P2), false);
    const m = applyMappings(t1, 1, [{ issuerDomainPolicy: P1, subjectDomainPolicy: P3 }], false);
    expect(leaves(m, 1)).toEqual([P2]);
    const only = processPolicies(initialPolicyTree(), 1, pol(P1), false);
    expect(applyMappings(only, 1, [{ issuerDomainPolicy: P1, subjectDomainPolicy: P3 }], false)).toBeNull();
  });
});

describe("intersection with the user-initial-policy-set, §6.1.5(g)", () => {
  test("anyPolicy as the initial set keeps the tree ((g)(ii))", () => {
    const t = processPolicies(initialPolicyTree(), 1, pol(P1, P2), false);
    expect(intersectWithInitial(t, 1, [ANY_POLICY])).toBe(t);
  });

  test("policies outside the initial set are removed; nothing left is NULL ((g)(iii))", () => {
    const t = processPolicies(initialPolicyTree(), 1, pol(P1, P2), false);
    expect(leaves(intersectWithInitial(t, 1, [P1, P3]), 1)).toEqual([P1]);
    expect(intersectWithInitial(t, 1, [P3])).toBeNull();
  });

  test("an anyPolicy leaf stands for every wanted policy ((g)(iii)(3))", () => {
    const t = processPolicies(initialPolicyTree(), 1, pol(ANY_POLICY), true);
    expect(leaves(intersectWithInitial(t, 1, [P1, P2]), 1)).toEqual([P1, P2].sort());
  });
});
