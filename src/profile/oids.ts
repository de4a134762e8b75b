/**
 * Object identifiers used by the JPKI profile (shared/spec/JPKI.md) and RFC 5280.
 * profile/ imports nothing of ours but pki/der; these tables are the single source of each OID.
 */

/** J-LIS arc (地方公共団体情報システム機構). */
export const JLIS_ARC = "1.2.392.200149.8.5";

/** The four basic items (基本4情報) as subjectAltName otherName type-ids, J-LIS personal data arc …8.5.5. */
export const FOUR_ITEMS_OID = {
  /** 氏名 name */
  name: "1.2.392.200149.8.5.5.1",
  /** 氏名代替文字フラグ name substitute-character flags */
  nameSubstituteFlags: "1.2.392.200149.8.5.5.2",
  /** 性別 gender */
  gender: "1.2.392.200149.8.5.5.3",
  /** 生年月日 birth date */
  birthDate: "1.2.392.200149.8.5.5.4",
  /** 住所 address */
  address: "1.2.392.200149.8.5.5.5",
  /** 住所代替文字フラグ address substitute-character flags */
  addressSubstituteFlags: "1.2.392.200149.8.5.5.6",
} as const;

/** Certificate policies. */
export const POLICY_OID = {
  /** 署名用電子証明書 signature certificate, production */
  signature: "1.2.392.200149.8.5.1.1.20",
  /** signature certificate, J-LIS test environment */
  signatureTest: "1.2.392.200149.8.5.1.0.20",
  /** 利用者証明用電子証明書 user-authentication certificate */
  authentication: "1.2.392.200149.8.5.1.3.30",
} as const;

export const ATTR_OID = {
  countryName: "2.5.4.6",
  localityName: "2.5.4.7",
  organizationName: "2.5.4.10",
  organizationalUnitName: "2.5.4.11",
  commonName: "2.5.4.3",
} as const;

export const EXT_OID = {
  subjectKeyIdentifier: "2.5.29.14",
  keyUsage: "2.5.29.15",
  subjectAltName: "2.5.29.17",
  issuerAltName: "2.5.29.18",
  basicConstraints: "2.5.29.19",
  cRLNumber: "2.5.29.20",
  cRLReason: "2.5.29.21",
  invalidityDate: "2.5.29.24",
  deltaCRLIndicator: "2.5.29.27",
  issuingDistributionPoint: "2.5.29.28",
  certificateIssuer: "2.5.29.29",
  certificatePolicies: "2.5.29.32",
  nameConstraints: "2.5.29.30",
  policyMappings: "2.5.29.33",
  policyConstraints: "2.5.29.36",
  inhibitAnyPolicy: "2.5.29.54",
  cRLDistributionPoints: "2.5.29.31",
  authorityKeyIdentifier: "2.5.29.35",
  /** RFC 5280 §5.2.6 (in CRLs) and §4.2.1.15 (in certificates): where the delta CRLs are */
  freshestCRL: "2.5.29.46",
  extKeyUsage: "2.5.29.37",
  authorityInfoAccess: "1.3.6.1.5.5.7.1.1",
  /** id-pkix-ocsp-nocheck, RFC 6960 §4.2.2.2.1: a delegated OCSP signer's own status is not checked */
  ocspNoCheck: "1.3.6.1.5.5.7.48.1.5",
} as const;

/** extendedKeyUsage key purposes (RFC 5280 §4.2.1.12). */
export const KP_OID = {
  /** id-kp-OCSPSigning: a CA's delegated OCSP responder (RFC 6960 §4.2.2.2) */
  ocspSigning: "1.3.6.1.5.5.7.3.9",
} as const;

export const ALG_OID = {
  rsaEncryption: "1.2.840.113549.1.1.1",
  sha256WithRSAEncryption: "1.2.840.113549.1.1.11",
  sha1WithRSAEncryption: "1.2.840.113549.1.1.5",
  sha256: "2.16.840.1.101.3.4.2.1",
} as const;

export const AIA_OID = {
  ocsp: "1.3.6.1.5.5.7.48.1",
  caIssuers: "1.3.6.1.5.5.7.48.2",
  cpsQualifier: "1.3.6.1.5.5.7.2.1",
} as const;
