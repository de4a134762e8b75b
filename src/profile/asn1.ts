/**
 * The classes of @peculiar/asn1-x509 (RFC 5280's ASN.1 module) and asn1-schema's AsnConvert that the profile
 * reader uses, loaded with require() instead of an ES import (issue 8 point 9). Both packages are CommonJS, and
 * an ES import of a CommonJS package makes Node scan the source for its export names: asn1-x509's index
 * re-exports ~80 files, each scanned, which cost `jpki inspect` about twice as long to load the package as
 * require() takes. Same module instances either way (Node's one CommonJS cache), so classes, instanceof and
 * AsnConvert's schema registry agree with any module that still imports them.
 *
 * Each name is exported as a value and as a type, so the modules that use it only change where they import from.
 */
import { createRequire } from "node:module";
import type * as X509 from "@peculiar/asn1-x509";
import type * as Schema from "@peculiar/asn1-schema";

const require = createRequire(import.meta.url);
const x509 = require("@peculiar/asn1-x509") as typeof X509;

export const { AsnConvert } = require("@peculiar/asn1-schema") as typeof Schema;

export const AuthorityInfoAccessSyntax = x509.AuthorityInfoAccessSyntax;
export type AuthorityInfoAccessSyntax = X509.AuthorityInfoAccessSyntax;
export const AuthorityKeyIdentifier = x509.AuthorityKeyIdentifier;
export type AuthorityKeyIdentifier = X509.AuthorityKeyIdentifier;
export const BasicConstraints = x509.BasicConstraints;
export type BasicConstraints = X509.BasicConstraints;
export const Certificate = x509.Certificate;
export type Certificate = X509.Certificate;
export const CertificateList = x509.CertificateList;
export type CertificateList = X509.CertificateList;
export const CertificatePolicies = x509.CertificatePolicies;
export type CertificatePolicies = X509.CertificatePolicies;
export const CRLDistributionPoints = x509.CRLDistributionPoints;
export type CRLDistributionPoints = X509.CRLDistributionPoints;
export const DisplayText = x509.DisplayText;
export type DisplayText = X509.DisplayText;
export const ExtendedKeyUsage = x509.ExtendedKeyUsage;
export type ExtendedKeyUsage = X509.ExtendedKeyUsage;
export const GeneralNames = x509.GeneralNames;
export type GeneralNames = X509.GeneralNames;
export const IssuingDistributionPoint = x509.IssuingDistributionPoint;
export type IssuingDistributionPoint = X509.IssuingDistributionPoint;
export const SubjectKeyIdentifier = x509.SubjectKeyIdentifier;
export type SubjectKeyIdentifier = X509.SubjectKeyIdentifier;
export const UserNotice = x509.UserNotice;
export type UserNotice = X509.UserNotice;
export type { DistributionPointName, Extension, GeneralName, Name, RevokedCertificate, Time } from "@peculiar/asn1-x509";
