/**
 * Text rendering for `jpki inspect` (the JSON form is the description itself). One field per line,
 * extensions indented under their name, the four basic items (基本4情報) with Japanese and English labels,
 * and the profile deviations last so an operator sees at a glance whether the object fits the JPKI profile.
 *
 * A CRL is written as it is read (writeCrl): the header, then the entries in chunks of about 64 KiB, then what
 * needs all of them (count, fingerprint, profile). Text and JSON alike never hold the entries of a national CRL.
 */
import type { CertificateDescription, CrlDescription, CrlEntryDescription, CrlHeaderDescription, CrlStream, CrlTotals, ExtensionDescription, GeneralNameDescription } from "../index.js";
import type { CrlProfileReport, ProfileReport } from "../index.js";
import type { Io } from "./output.js";

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

/** The CRL's fields up to "Revoked Certificates: N", each line ending in a newline. */
function crlHeaderText(h: CrlHeaderDescription, entryCount: number): string {
  const lines = [
    "Certificate Revocation List:",
    `${IND}Version: ${h.version}`,
    `${IND}Signature Algorithm: ${h.signatureAlgorithm.name}`,
    `${IND}Issuer: ${h.issuer.text}`,
    `${IND}This Update: ${h.thisUpdate}`,
    `${IND}Next Update: ${h.nextUpdate ?? "(none)"}`,
  ];
  if (h.crlNumber !== undefined) lines.push(`${IND}CRL Number: ${h.crlNumber}`);
  if (h.deltaCrlIndicator !== undefined) lines.push(`${IND}Delta CRL Indicator (base CRL number): ${h.deltaCrlIndicator}`);
  if (h.authorityKeyIdentifier) lines.push(`${IND}Authority Key Identifier: ${colonHex(h.authorityKeyIdentifier)}`);
  lines.push(...extensionLines(h.extensions));
  lines.push(`${IND}Revoked Certificates: ${entryCount}`);
  return lines.join("\n") + "\n";
}

function crlEntryText(e: CrlEntryDescription): string {
  return `${e.serialNumber}  ${e.revocationDate}${e.reason ? `  ${e.reason}` : ""}${e.invalidityDate ? `  invalidity ${e.invalidityDate}` : ""}`;
}

/** "… N more" when the list stopped short, then the fingerprint and the profile. */
function crlTrailerText(listed: number, t: Pick<CrlTotals, "entryCount" | "fingerprints" | "profile">): string {
  const lines: string[] = [];
  if (listed < t.entryCount) lines.push(`${IND}${IND}… ${t.entryCount - listed} more`);
  lines.push(`${IND}SHA-256 Fingerprint: ${colonHex(t.fingerprints.sha256)}`);
  lines.push(...profileLines(t.profile));
  return lines.join("\n") + "\n";
}

export function formatCrl(desc: CrlDescription): string {
  return crlHeaderText(desc, desc.entryCount) + desc.entries.map((e) => `${IND}${IND}${crlEntryText(e)}\n`).join("") + crlTrailerText(desc.entries.length, desc);
}

/** How `jpki inspect` writes a CRL. */
export interface CrlOutputOptions {
  readonly json: boolean;
  /** header, counts per reason, first and last entries; no list */
  readonly summary: boolean;
  /** entries to list (Infinity for all) */
  readonly maxEntries: number;
}

/** Text lists up to this many entries from memory; a longer list is headed by a count read first (CrlStream.countEntries). */
const LISTED_IN_MEMORY = 1000;

/**
 * Writes a CRL as it is read, in chunks through `out` (waiting for 'drain' when a write returns false). A
 * malformed entry stops it with ERR_DER_MALFORMED where it is found: what was written stays written.
 */
export async function writeCrl(crl: CrlStream, o: CrlOutputOptions, out: Io["stdout"]): Promise<void> {
  const w = new ChunkWriter(out);
  if (o.summary) return writeSummary(crl, o.json, w);
  if (o.json) {
    // One document: the header's fields, the entries one per line, then what needs them all.
    const head = JSON.stringify(crl.header, null, 2);
    w.push(`${head.slice(0, -2)},\n  "entries": [`);
    let listed = 0;
    for (const e of crl.entries()) {
      if (listed >= o.maxEntries) continue;
      if (w.push(`${listed++ ? "," : ""}\n    ${JSON.stringify(e)}`)) await w.flush();
    }
    const t = crl.totals();
    const tail = JSON.stringify({ entryCount: t.entryCount, entriesTruncated: listed < t.entryCount, fingerprints: t.fingerprints, profile: t.profile }, null, 2);
    w.push(`${listed ? "\n  " : ""}],${tail.slice(1)}\n`);
    return w.flush();
  }
  if (o.maxEntries <= LISTED_IN_MEMORY) {
    const lines: string[] = [];
    for (const e of crl.entries()) if (lines.length < o.maxEntries) lines.push(`${IND}${IND}${crlEntryText(e)}\n`);
    const t = crl.totals();
    w.push(crlHeaderText(crl.header, t.entryCount) + lines.join("") + crlTrailerText(lines.length, t));
    return w.flush();
  }
  w.push(crlHeaderText(crl.header, crl.countEntries()));
  let listed = 0;
  for (const e of crl.entries()) {
    if (listed >= o.maxEntries) continue;
    listed++;
    if (w.push(`${IND}${IND}${crlEntryText(e)}\n`)) await w.flush();
  }
  w.push(crlTrailerText(listed, crl.totals()));
  return w.flush();
}

/** `inspect --summary`: the header, the count, counts per reason, the first and last entries; one pass. */
async function writeSummary(crl: CrlStream, json: boolean, w: ChunkWriter): Promise<void> {
  let first: CrlEntryDescription | undefined;
  let last: CrlEntryDescription | undefined;
  for (const e of crl.entries()) {
    first ??= e;
    last = e;
  }
  const t = crl.totals();
  if (json) {
    w.push(
      JSON.stringify(
        { ...crl.header, entryCount: t.entryCount, reasonCounts: t.reasonCounts, ...(first ? { firstEntry: first, lastEntry: last } : {}), fingerprints: t.fingerprints, profile: t.profile },
        null,
        2,
      ) + "\n",
    );
    return w.flush();
  }
  const lines: string[] = [];
  const reasons = Object.entries(t.reasonCounts).sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
  if (reasons.length) lines.push(`${IND}${IND}by reason:`, ...reasons.map(([r, n]) => `${IND.repeat(3)}${r === "none" ? "(no reasonCode)" : r}: ${n}`));
  if (first) lines.push(`${IND}${IND}first: ${crlEntryText(first)}`);
  if (last) lines.push(`${IND}${IND}last:  ${crlEntryText(last)}`);
  w.push(crlHeaderText(crl.header, t.entryCount) + lines.map((l) => l + "\n").join("") + crlTrailerText(t.entryCount, t));
  return w.flush();
}

const CHUNK = 64 * 1024;

/** Gathers output into chunks of about 64 KiB; `flush` writes one and waits when the stream asks it to. */
class ChunkWriter {
  private readonly out: Io["stdout"];
  private text = "";
  constructor(out: Io["stdout"]) {
    this.out = out;
  }
  /** Adds text; true when a chunk is ready to flush. */
  push(s: string): boolean {
    this.text += s;
    return this.text.length >= CHUNK;
  }
  async flush(): Promise<void> {
    if (!this.text) return;
    const s = this.text;
    this.text = "";
    if (this.out.write(s) === false) await drained(this.out);
  }
}

/** Resolves on 'drain', or on 'close' or 'error' (a reader that went away: quietOnClosedPipe drops the rest). */
function drained(out: Io["stdout"]): Promise<void> {
  const s = out as Partial<NodeJS.WritableStream>;
  if (typeof s.once !== "function" || typeof s.removeListener !== "function") return Promise.resolve();
  if ((s as { destroyed?: boolean }).destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const done = () => {
      s.removeListener!("drain", done);
      s.removeListener!("close", done);
      s.removeListener!("error", done);
      resolve();
    };
    s.once!("drain", done);
    s.once!("close", done);
    s.once!("error", done);
  });
}

function colonHex(h: string): string {
  return (h.match(/../g) ?? []).join(":").toUpperCase();
}
