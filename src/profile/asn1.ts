/**
 * The classes of @peculiar/asn1-x509 (RFC 5280's ASN.1 module) and asn1-schema's AsnConvert that the profile
 * reader uses, loaded with require() instead of an ES import (issue 8 point 9). Both packages are CommonJS, and
 * an ES import of a CommonJS package makes Node scan the source for its export names: asn1-x509's index
 * re-exports ~80 files, each scanned, which cost `jpki inspect` about twice as long to load the package as
 * require() takes. Same module instances either way (Node's one CommonJS cache), so classes, instanceof and
 * AsnConvert's schema registry agree with any module that still imports them.
 *
 * The classes are reached through asn1x509() at the point of use; their names are exported as types.
 */
import { createRequire } from "node:module";
import type * as X509 from "@peculiar/asn1-x509";
import type * as Schema from "@peculiar/asn1-schema";

const require = createRequire(import.meta.url);

let x509: typeof X509 | undefined;
let schema: typeof Schema | undefined;

/**
 * The package's classes, loaded on first use: a command that never parses an extension with them (`jpki crl
 * generate`, which reaches this module through the CRL reader) no longer pays the ≈ 45 ms asn1-x509 and
 * asn1-schema take to load.
 */
export function asn1x509(): typeof X509 {
  return (x509 ??= require("@peculiar/asn1-x509") as typeof X509);
}

/** asn1-schema's AsnConvert, loaded on first use (see asn1x509). */
export function asnConvert(): typeof Schema.AsnConvert {
  return (schema ??= require("@peculiar/asn1-schema") as typeof Schema).AsnConvert;
}

export type {
  AuthorityInfoAccessSyntax,
  AuthorityKeyIdentifier,
  BasicConstraints,
  Certificate,
  CertificateList,
  CertificatePolicies,
  CRLDistributionPoints,
  DisplayText,
  DistributionPointName,
  ExtendedKeyUsage,
  Extension,
  GeneralName,
  GeneralNames,
  IssuingDistributionPoint,
  Name,
  RevokedCertificate,
  SubjectKeyIdentifier,
  Time,
  UserNotice,
} from "@peculiar/asn1-x509";
