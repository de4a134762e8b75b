/**
 * Text rendering for `jpki inspect` (the JSON form is the description itself). One field per line,
 * extensions indented under their name, the four basic items (基本4情報) with Japanese and English labels,
 * and the profile deviations last so an operator sees at a glance whether the object fits the JPKI profile.
 */
import type { CertificateDescription, CrlDescription, ExtensionDescription, GeneralNameDescription } from "../index.js";
import type { CrlProfileReport, ProfileReport } from "../index.js";

const IND = "    ";

function generalName(g: GeneralNameDescription): string {
  switch (g.type) {
    case "directoryName":
      return `DirName: ${g.value}`;
    case "otherName":
      return `othername ${g.label ?? g.oid}: ${g.value ?? "(not a UTF8String)"}`;
    case "uri":
      return `URI: ${g.value}`;
    case "dns":
      return `DNS: ${g.value}`;
    case "email":
      return `email: ${g.value}`;
    case "ip":
      return `IP: ${g.value}`;
    case "registeredID":
      return `RID: ${g.value}`;
    default:
      return `other: ${g.value}`;
  }
}

function isGeneralName(v: unknown): v is GeneralNameDescription {
  return typeof v === "object" && v !== null && "type" in v && typeof (v as { type: unknown }).type === "string";
}

/** Renders a decoded extension value as indented lines. */
function valueLines(v: unknown, depth: number): string[] {
  const pad = IND.repeat(depth);
  if (v === undefined || v === null) return [];
  if (typeof v !== "object") return [`${pad}${String(v)}`];
  if (isGeneralName(v)) return [`${pad}${generalName(v)}`];
  if (Array.isArray(v)) {
    if (v.length === 0) return [`${pad}(none)`];
    if (v.every((x) => typeof x !== "object")) return [`${pad}${v.join(", ")}`];
    return v.flatMap((x) => valueLines(x, depth));
  }
  const out: string[] = [];
  for (const [k, x] of Object.entries(v as Record<string, unknown>)) {
    if (x === undefined) continue;
    if (typeof x !== "object" || x === null) out.push(`${pad}${k}: ${String(x)}`);
    else if (Array.isArray(x) && x.every((y) => typeof y !== "object")) out.push(`${pad}${k}: ${x.length ? x.join(", ") : "(none)"}`);
    else out.push(`${pad}${k}:`, ...valueLines(x, depth + 1));
  }
  return out;
}

function extensionLines(exts: readonly ExtensionDescription[]): string[] {
  if (exts.length === 0) return [];
  const out = [`${IND}Extensions:`];
  for (const e of exts) {
    out.push(`${IND}${IND}${e.name}${e.name !== e.oid ? ` (${e.oid})` : ""}${e.critical ? ": critical" : ""}`);
    if (e.error) out.push(`${IND.repeat(3)}${e.error}: ${e.der ?? ""}`);
    else if (e.value !== undefined) out.push(...valueLines(e.value, 3));
    else if (e.der) out.push(`${IND.repeat(3)}${e.der}`);
  }
  return out;
}

function profileLines(p: ProfileReport | CrlProfileReport): string[] {
  const n = p.violations.length;
  const out = [`Profile: ${n} deviation${n === 1 ? "" : "s"} (kind: ${p.kind})`];
  for (const v of p.violations) out.push(`${IND}[${v.severity}] ${v.rule}: ${v.message}`);
  return out;
}

export function formatCertificate(desc: CertificateDescription): string {
  const lines = [
    "Certificate:",
    `${IND}Version: ${desc.version}`,
    `${IND}Serial Number: ${desc.serialNumber}`,
    `${IND}Signature Algorithm: ${desc.signatureAlgorithm.name}`,
    `${IND}Issuer: ${desc.issuer.text}`,
    `${IND}Validity:`,
    `${IND}${IND}Not Before: ${desc.validity.notBefore}`,
    `${IND}${IND}Not After:  ${desc.validity.notAfter}`,
    `${IND}Subject: ${desc.subject.text}`,
    `${IND}Public Key: ${desc.publicKey.name}${desc.publicKey.bits ? ` ${desc.publicKey.bits} bits` : ""}${desc.publicKey.exponent !== undefined ? `, exponent ${desc.publicKey.exponent}` : ""}`,
  ];
  const fi = desc.fourItems;
  if (fi) {
    lines.push(`${IND}Four basic items (基本4情報):`);
    const row = (label: string, value: string | undefined) => lines.push(`${IND}${IND}${label}: ${value ?? "(missing)"}`);
    row("氏名 name", fi.name);
    row("性別 gender", fi.gender ? `${fi.genderLabel} (${fi.gender})` : undefined);
    row("生年月日 birth date", fi.birthDate ? `${fi.birthDate}${fi.eraName ? ` (${fi.eraName})` : ""}` : undefined);
    row("住所 address", fi.address);
    row("氏名代替文字フラグ name substitute flags", fi.nameSubstituteFlags);
    row("住所代替文字フラグ address substitute flags", fi.addressSubstituteFlags);
  }
  lines.push(...extensionLines(desc.extensions));
  lines.push(`${IND}SHA-256 Fingerprint: ${colonHex(desc.fingerprints.sha256)}`);
  lines.push(...profileLines(desc.profile));
  return lines.join("\n") + "\n";
}

export function formatCrl(desc: CrlDescription): string {
  const lines = [
    "Certificate Revocation List:",
    `${IND}Version: ${desc.version}`,
    `${IND}Signature Algorithm: ${desc.signatureAlgorithm.name}`,
    `${IND}Issuer: ${desc.issuer.text}`,
    `${IND}This Update: ${desc.thisUpdate}`,
    `${IND}Next Update: ${desc.nextUpdate ?? "(none)"}`,
  ];
  if (desc.crlNumber !== undefined) lines.push(`${IND}CRL Number: ${desc.crlNumber}`);
  if (desc.deltaCrlIndicator !== undefined) lines.push(`${IND}Delta CRL Indicator (base CRL number): ${desc.deltaCrlIndicator}`);
  if (desc.authorityKeyIdentifier) lines.push(`${IND}Authority Key Identifier: ${colonHex(desc.authorityKeyIdentifier)}`);
  lines.push(...extensionLines(desc.extensions));
  lines.push(`${IND}Revoked Certificates: ${desc.entryCount}`);
  for (const e of desc.entries) {
    lines.push(`${IND}${IND}${e.serialNumber}  ${e.revocationDate}${e.reason ? `  ${e.reason}` : ""}${e.invalidityDate ? `  invalidity ${e.invalidityDate}` : ""}`);
  }
  if (desc.entriesTruncated) lines.push(`${IND}${IND}… ${desc.entryCount - desc.entries.length} more`);
  lines.push(`${IND}SHA-256 Fingerprint: ${colonHex(desc.fingerprints.sha256)}`);
  lines.push(...profileLines(desc.profile));
  return lines.join("\n") + "\n";
}

function colonHex(h: string): string {
  return (h.match(/../g) ?? []).join(":").toUpperCase();
}
