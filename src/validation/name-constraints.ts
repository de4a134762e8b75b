/**
 * Name constraints, RFC 5280 §4.2.1.10, as state for §6.1.2(b)–(c), §6.1.3(b)–(c) and §6.1.4(g).
 *
 * permitted_subtrees is an intersection over the path. Rather than compute intersections of subtrees (which
 * needs a case per name form), the state keeps each certificate's permitted set as it came: a name satisfies the
 * state when, for every set that constrains its form, it lies within one subtree of that set. That is the
 * intersection's meaning exactly. excluded_subtrees is a plain union.
 */
import type { GeneralSubtree, NameConstraintsValue } from "./certificate.js";
import { dnWithin, EMAIL_ADDRESS_OID, type GeneralName, type Name } from "./name.js";

export interface NameConstraintsState {
  /** one entry per certificate that had permittedSubtrees */
  readonly permitted: ReadonlyArray<readonly GeneralSubtree[]>;
  readonly excluded: readonly GeneralSubtree[];
}

export const UNCONSTRAINED: NameConstraintsState = { permitted: [], excluded: [] };

/** §6.1.4(g): adds a certificate's constraints. */
export function addConstraints(state: NameConstraintsState, nc: NameConstraintsValue): NameConstraintsState {
  return {
    permitted: nc.permitted.length > 0 ? [...state.permitted, nc.permitted] : state.permitted,
    excluded: [...state.excluded, ...nc.excluded],
  };
}

function hostWithin(host: string, constraint: string): boolean {
  const h = host.toLowerCase();
  const c = constraint.toLowerCase();
  if (c.startsWith(".")) return h.endsWith(c); // ".example.com": any host below, not the domain itself
  return h === c;
}

/** dNSName: the name, or any name formed by adding labels to its left (§4.2.1.10). */
export function dnsWithin(name: string, constraint: string): boolean {
  const n = name.toLowerCase().replace(/\.$/, "");
  const c = constraint.toLowerCase().replace(/^\./, "").replace(/\.$/, "");
  if (c === "") return true;
  return n === c || n.endsWith(`.${c}`);
}

/**
 * rfc822Name: a constraint with "@" is one mailbox; a host name is every mailbox on that host; a leading "."
 * is every mailbox on hosts within the domain (§4.2.1.10).
 */
export function rfc822Within(address: string, constraint: string): boolean {
  const at = address.lastIndexOf("@");
  if (at < 0) return false;
  if (constraint.includes("@")) {
    const ca = constraint.lastIndexOf("@");
    return address.slice(0, at) === constraint.slice(0, ca) && address.slice(at + 1).toLowerCase() === constraint.slice(ca + 1).toLowerCase();
  }
  return hostWithin(address.slice(at + 1), constraint);
}

/** uniformResourceIdentifier: the constraint applies to the host part; a leading "." means hosts below. */
export function uriWithin(uri: string, constraint: string): boolean {
  const m = /^[a-z][a-z0-9+.-]*:\/\/(?:[^@/?#]*@)?(\[[^\]]*\]|[^:/?#]*)/i.exec(uri);
  if (!m || !m[1]) return false; // §4.2.1.10: a URI without an authority cannot satisfy a constraint
  return hostWithin(m[1], constraint);
}

/** iPAddress: address and mask of equal length (8 or 32 octets for v4/v6). */
export function ipWithin(address: Buffer, constraint: Buffer): boolean {
  if (constraint.length !== address.length * 2) return false;
  for (let i = 0; i < address.length; i++) if ((address[i]! & constraint[address.length + i]!) !== (constraint[i]! & constraint[address.length + i]!)) return false;
  return true;
}

type Form = "dn" | "rfc822" | "dns" | "uri" | "ip";

function within(name: GeneralName, base: GeneralName): boolean | undefined {
  if (name.kind !== base.kind || name.kind === "other" || base.kind === "other") return undefined;
  switch (name.kind) {
    case "dn":
      return dnWithin(name.value, base.value as Name);
    case "rfc822":
      return rfc822Within(name.value, base.value as string);
    case "dns":
      return dnsWithin(name.value, base.value as string);
    case "uri":
      return uriWithin(name.value, base.value as string);
    case "ip":
      return ipWithin(name.value, base.value as Buffer);
    default:
      return undefined;
  }
}

export type ConstraintViolation = { readonly kind: "permitted" | "excluded"; readonly name: GeneralName };

/** Checks one name against the state; undefined when it passes. */
export function checkName(state: NameConstraintsState, name: GeneralName): ConstraintViolation | undefined {
  if (name.kind === "other") return undefined;
  const form: Form = name.kind;
  for (const set of state.permitted) {
    const sameForm = set.filter((s) => s.base.kind === form);
    if (sameForm.length > 0 && !sameForm.some((s) => within(name, s.base))) return { kind: "permitted", name };
  }
  if (state.excluded.some((s) => within(name, s.base))) return { kind: "excluded", name };
  return undefined;
}

/**
 * §6.1.3(b)–(c) for one certificate: the subject DN (when not empty), the emailAddress attributes of the
 * subject DN as rfc822Names when there is no subjectAltName (§4.2.1.10's legacy rule), and every subjectAltName.
 */
export function checkCertificateNames(state: NameConstraintsState, subject: Name, altNames: readonly GeneralName[] | undefined): ConstraintViolation | undefined {
  if (state.permitted.length === 0 && state.excluded.length === 0) return undefined;
  const names: GeneralName[] = [];
  if (subject.rdns.length > 0) names.push({ kind: "dn", value: subject });
  if (!altNames) {
    for (const rdn of subject.rdns) for (const a of rdn) if (a.type === EMAIL_ADDRESS_OID) names.push({ kind: "rfc822", value: a.text });
  }
  names.push(...(altNames ?? []));
  for (const n of names) {
    const v = checkName(state, n);
    if (v) return v;
  }
  return undefined;
}
