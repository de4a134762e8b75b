// The status page's script (src/server/page.ts serves it; index.html says what the page is). Plain browser
// JavaScript, no framework, no build step: it runs as the server sends it.
//
// Rules kept throughout:
// - every value from the server goes into the page through textContent or an SVG attribute, never innerHTML,
//   so a CA id, a CRL field, a name or an address can never become markup (the CSP is the second fence);
// - the verifier's token lives in sessionStorage only, and goes only to this origin's JSON routes, as
//   `Authorization: Bearer` (page.ts says why sessionStorage and not a cookie);
// - the result of a check is said in words, in a live region, so a screen reader announces it.

const TOKEN_KEY = "jpki.verifierToken";
/**
 * Set while signed in without a token: the browser's TLS client certificate is the credential (page.ts), so a
 * reload signs in again by it, as a stored token does. It holds no secret: "1".
 */
const CERTIFICATE_KEY = "jpki.signedInByCertificate";

/** Words for the statuses of POST /v1/validate (both views). */
const STATUS_WORDS = {
  valid: "valid (有効): the certificate chains to a JPKI CA, is within its dates and is not revoked",
  revoked: "revoked (失効)",
  expired: "expired (有効期限切れ)",
  "not-yet-valid": "not yet valid (有効期間前)",
  untrusted: "untrusted: it does not chain to a certification authority this service runs",
  "profile-violation": "not a JPKI certificate of this purpose (プロファイル違反)",
  "revocation-unknown": "revocation status unknown: no current revocation list covers it",
  unknown: "unknown: this service cannot say it is valid or revoked",
};

/** Words for the CRL reasons (RFC 5280 §5.3.1) as JPKI uses them (shared/spec/JPKI.md "Reason codes"). */
const REVOCATION_WORDS = {
  affiliationChanged: "a certified item changed (異動: move, name change or correction of the four items)",
  cessationOfOperation: "no longer in use (death, removal of the resident record, card returned, or the resident's request)",
  keyCompromise: "key compromise (card lost or stolen: 紛失・盗難)",
  superseded: "superseded by a new certificate (更新)",
  cACompromise: "the CA's key was compromised",
  certificateHold: "suspended on a suspected key problem",
  unspecified: "unspecified (e.g. destroyed before delivery)",
  removeFromCRL: "removed from the CRL",
  privilegeWithdrawn: "privilege withdrawn",
  aACompromise: "attribute authority compromised",
};

/** Words for what a signed file's signature can be (POST /v1/verify-signature), besides the path statuses above. */
const SIGNATURE_WORDS = {
  valid: "valid (有効): the file is unchanged since it was signed, and the signer's certificate was good when it signed and is now",
  "digest-mismatch": "the file was changed after it was signed (改ざん): its digest does not match the signed one",
  "bad-signature": "the signature does not verify with the signer's key",
  "signer-not-found": "the signer's certificate is not in the file",
  "wrong-purpose": "the signer's certificate is not a signature certificate (署名用電子証明書)",
  "unsupported-algorithm": "signed with an algorithm this service does not accept",
  "content-missing": "a detached signature: the signed document is not in the file",
};

const ITEM_LABELS = [
  ["name", "Name (氏名)"],
  ["address", "Address (住所)"],
  ["birthDate", "Birth date (生年月日)"],
  ["gender", "Gender (性別)"],
];
const GENDER_WORDS = { male: "male (男)", female: "female (女)", unknown: "unknown (不明)" };

const WITHHELD_WORDS = {
  "certificate-not-ours": "no four items: the certificate was not issued by a CA of this service",
  "no-registry-record": "no four items: the registry holds no record of the resident",
};

const KIND_WORDS = { full: "full CRL", delta: "delta CRL", partition: "municipality partition", arl: "ARL (authority revocation list)" };

const $ = (id) => document.getElementById(id);

/** An element with text (never markup) and attributes. */
/**
 * Unicode's bidirectional controls (LRE…RLO, LRI…PDI, LRM, RLM, ALM), shown as their code points: in a name from a
 * certificate (a subject CN is the certificate author's to choose) an RLO reorders what follows, so
 * "abc<RLO>gpj.exe" read as "abcexe.jpg" on the page. Nothing of ours uses them.
 */
const BIDI_CONTROLS = /[\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;
export const visibleText = (s) => s.replace(BIDI_CONTROLS, (c) => `<U+${c.charCodeAt(0).toString(16).toUpperCase().padStart(4, "0")}>`);

function el(tag, text, attrs) {
  const e = document.createElement(tag);
  if (text !== undefined && text !== null) e.textContent = visibleText(String(text));
  for (const [k, v] of Object.entries(attrs ?? {})) e.setAttribute(k, String(v));
  return e;
}

const SVG = "http://www.w3.org/2000/svg";
function svgEl(tag, attrs, text) {
  const e = document.createElementNS(SVG, tag);
  for (const [k, v] of Object.entries(attrs ?? {})) e.setAttribute(k, String(v));
  if (text !== undefined) e.textContent = String(text);
  return e;
}

function token() {
  return sessionStorage.getItem(TOKEN_KEY) ?? "";
}

/** fetch with the verifier's token (if any); throws a readable Error for a refusal. */
async function api(path, init = {}) {
  const headers = new Headers(init.headers ?? {});
  const t = token();
  if (t) headers.set("Authorization", `Bearer ${t}`);
  const res = await fetch(path, { ...init, headers, credentials: "same-origin", cache: "no-store" });
  if (res.status === 401) throw Object.assign(new Error("the server did not accept the credential (unknown or revoked verifier)"), { status: 401 });
  if (res.status === 403) throw Object.assign(new Error("this verifier may not use this route"), { status: 403 });
  if (res.status === 429) throw Object.assign(new Error(`too many requests: try again in ${res.headers.get("Retry-After") ?? "a few"} seconds`), { status: 429 });
  let body;
  try {
    body = await res.json();
  } catch {
    body = undefined;
  }
  if (!res.ok) throw Object.assign(new Error(body && typeof body.message === "string" ? body.message : `the server answered ${res.status}`), { status: res.status, code: body?.code });
  return body;
}

// ---- sign in ----

function showSignedIn(on) {
  $("signin").hidden = on;
  $("verifier").hidden = !on;
}

async function signIn(t) {
  if (t) sessionStorage.setItem(TOKEN_KEY, t);
  else sessionStorage.removeItem(TOKEN_KEY);
  $("signin-status").textContent = "Signing in…";
  let failed;
  try {
    await loadOverview();
  } catch (e) {
    // Only a 401 says the credential is wrong. Any other failure (the store, a rate limit, the network) says
    // nothing of it: the verifier stays signed in, the check form usable, the overview's error shown where it goes.
    if (e.status === 401) {
      sessionStorage.removeItem(TOKEN_KEY);
      sessionStorage.removeItem(CERTIFICATE_KEY);
      showSignedIn(false);
      $("signin-status").textContent = `Not signed in: ${e.message}.`;
      return;
    }
    failed = e;
  }
  if (t) sessionStorage.removeItem(CERTIFICATE_KEY);
  else sessionStorage.setItem(CERTIFICATE_KEY, "1");
  $("signin-status").textContent = "";
  showSignedIn(true);
  if (failed) $("overview-status").textContent = `Could not load: ${failed.message}.`;
  void loadLegalBases();
}

function signOut() {
  sessionStorage.removeItem(TOKEN_KEY);
  sessionStorage.removeItem(CERTIFICATE_KEY);
  $("ca-list").replaceChildren();
  $("result").replaceChildren();
  $("token").value = "";
  showSignedIn(false);
  $("signin-status").textContent = "Signed out.";
}

/** The legal bases the API knows, from its OpenAPI document (so the list cannot drift from the server's table). */
async function loadLegalBases() {
  const select = $("legal-basis");
  try {
    const doc = await api("openapi.json");
    const lb = doc?.components?.schemas?.ValidateRequest?.properties?.legalBasis;
    const codes = Array.isArray(lb?.enum) ? lb.enum : [];
    // The description lists "code (日本語名)": keep the Japanese name for the option's text when it is there.
    const names = new Map();
    for (const m of String(lb?.description ?? "").matchAll(/([a-z-]+) \(([^)]+)\)/g)) names.set(m[1], m[2]);
    select.replaceChildren(el("option", "none: status only", { value: "" }));
    for (const c of codes) select.append(el("option", names.has(c) ? `${c} (${names.get(c)})` : c, { value: c }));
  } catch {
    // Without the document the check still works, with status only.
  }
}

// ---- the CA overview ----

function duration(seconds) {
  const s = Math.abs(Math.round(seconds));
  const d = Math.floor(s / 86400);
  const h = Math.floor((s % 86400) / 3600);
  const m = Math.floor((s % 3600) / 60);
  if (d) return `${d} d ${h} h`;
  if (h) return `${h} h ${m} min`;
  return `${m} min`;
}

function when(iso) {
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? String(iso) : `${d.toISOString().replace("T", " ").slice(0, 16)} UTC`;
}

async function loadOverview() {
  $("overview-status").textContent = "Loading…";
  const o = await api("v1/overview");
  renderOverview(o);
  $("overview-status").textContent = `As of ${when(o.generatedAt)}. Revocations per day are counted on Japanese days (JST), ${o.from} to ${o.to}.`;
}

function renderOverview(o) {
  const list = $("ca-list");
  list.replaceChildren();
  if (!Array.isArray(o.cas) || o.cas.length === 0) {
    list.append(el("p", "This service runs no CA yet."));
    return;
  }
  for (const ca of o.cas) {
    const section = el("section", undefined, { class: "ca", "aria-label": `CA ${ca.id}` });
    const purpose = ca.purpose === "signature" ? "signature (署名用)" : "user authentication (利用者証明用)";
    section.append(el("h3", `${ca.id} — ${ca.prefecture} — ${purpose}`));
    section.append(crlTable(ca, o));
    if (ca.fullCrlProblem) {
      // The full CRL's file is not what verifiers should get: said where an operator looks, in the colour of an overdue CRL.
      section.append(el("p", `The full CRL's file ${FILE_PROBLEMS[ca.fullCrlProblem] ?? "has a problem"}: verifiers fetching it do not get this CRL. Publish it again (jpki crl generate).`, { class: "stale problem", "data-problem": ca.fullCrlProblem }));
    }
    // Counted from the latest full CRL: none published (or unreadable) means nothing to count from, not zero.
    section.append(ca.revocationsPerDay?.length ? chart(ca, o) : el("p", "Revocations per day: no full CRL to count them from yet."));
    list.append(section);
  }
}

const FILE_PROBLEMS = { missing: "is missing", unreadable: "cannot be read as a CRL", "not-this-crl": "is not the CRL the store published (replaced or damaged)" };

function crlTable(ca, o) {
  if (!ca.crls.length) return el("p", "No CRL published yet.");
  const table = el("table", undefined, { class: "crls" });
  table.append(el("caption", `Latest revocation lists of ${ca.id}`));
  const head = el("tr");
  for (const h of ["CRL", "Number", "This update", "Age", "Next update", "Entries"]) head.append(el("th", h, { scope: "col" }));
  const thead = el("thead");
  thead.append(head);
  table.append(thead);
  const body = el("tbody");
  for (const c of ca.crls) {
    // An ended CRL (a retired generation that publishes it no more) is past its nextUpdate by design: not overdue.
    const tr = el("tr", undefined, (c.stale && !c.ended) || (c.kind === "full" && ca.fullCrlProblem) ? { class: "stale" } : c.ended ? { class: "ended" } : {});
    let what = KIND_WORDS[c.kind] ?? c.kind;
    if (c.kind === "partition") what = `${what} ${c.municipality}`;
    if (c.kind === "delta" && c.baseNumber) what = `${what} (on ${c.baseNumber})`;
    tr.append(el("th", what, { scope: "row" }));
    tr.append(el("td", c.number, { class: "num" }));
    tr.append(el("td", when(c.thisUpdate)));
    tr.append(el("td", duration(c.ageSeconds)));
    // Against the server's time, not this computer's: the two may disagree.
    const now = Date.parse(o.generatedAt) || Date.now();
    const left = (Date.parse(c.nextUpdate) - now) / 1000;
    tr.append(el("td", c.ended ? `${when(c.nextUpdate)} — ended: its retired key generation publishes it no more` : c.stale ? `${when(c.nextUpdate)} — overdue by ${duration(left)}: do not rely on it` : `${when(c.nextUpdate)} (in ${duration(left)})`));
    tr.append(el("td", c.entries, { class: "num" }));
    body.append(tr);
  }
  table.append(body);
  return table;
}

/** Revocations per day as an SVG bar chart, with a text summary for those who cannot see it. */
function chart(ca, o) {
  const days = ca.revocationsPerDay ?? [];
  const figure = el("figure", undefined, { class: "chart" });
  const total = days.reduce((n, d) => n + d.count, 0);
  const max = days.reduce((m, d) => Math.max(m, d.count), 0);
  const peak = days.find((d) => d.count === max);
  const summary = total ? `${total} revocations from ${o.from} to ${o.to}; most on ${peak.day} (${max}).` : `No revocations from ${o.from} to ${o.to}.`;
  const W = 12, GAP = 2, H = 80, TOP = 12, BOTTOM = 16;
  const width = days.length * (W + GAP) + 30;
  const svg = svgEl("svg", { viewBox: `0 0 ${width} ${TOP + H + BOTTOM}`, role: "img", "aria-label": `Revocations per day of ${ca.id}: ${summary}`, class: "bars" });
  svg.append(svgEl("line", { x1: 30, y1: TOP + H, x2: width, y2: TOP + H, class: "axis" }));
  svg.append(svgEl("text", { x: 26, y: TOP + 4, "text-anchor": "end", class: "tick" }, max));
  svg.append(svgEl("text", { x: 26, y: TOP + H, "text-anchor": "end", class: "tick" }, 0));
  days.forEach((d, i) => {
    const h = max ? Math.round((d.count / max) * H) : 0;
    const bar = svgEl("rect", { x: 30 + i * (W + GAP), y: TOP + H - h, width: W, height: h, class: "bar", "data-day": d.day, "data-count": d.count });
    bar.append(svgEl("title", {}, `${d.day}: ${d.count} revoked`));
    svg.append(bar);
  });
  if (days.length) {
    svg.append(svgEl("text", { x: 30, y: TOP + H + 12, class: "tick" }, days[0].day));
    svg.append(svgEl("text", { x: width, y: TOP + H + 12, "text-anchor": "end", class: "tick" }, days[days.length - 1].day));
  }
  figure.append(svg);
  figure.append(el("figcaption", `Revocations per day (失効件数) as CRL number ${ca.revocationsFrom} of ${ca.id} lists them: ${summary}`));
  return figure;
}

// ---- checking a certificate ----

function base64(bytes) {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  return btoa(s);
}

/** CMS SignedData's OID (1.2.840.113549.1.7.2) as DER: a signed file names it within its first bytes. */
const SIGNED_DATA_OID = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x02];
/** CMS EnvelopedData's (1.2.840.113549.1.7.3): an encrypted S/MIME message, which holds no signature to check. */
const ENVELOPED_DATA_OID = [0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x0d, 0x01, 0x07, 0x03];

/** Whether `oid` (tag and length included) occurs within the first 32 bytes: a ContentInfo names its type there. */
function namesOid(bytes, oid) {
  outer: for (let i = 0; i + oid.length <= Math.min(bytes.length, 32); i++) {
    for (let j = 0; j < oid.length; j++) if (bytes[i + j] !== oid[j]) continue outer;
    return true;
  }
  return false;
}

// ---- reading just enough DER to tell what a file is ----
// The server parses and checks everything; the page reads only the outline: which element is where, so it can
// send a certificate bundle's end entity first, a certs-only .p7b as the certificates it carries, and say what a
// detached signature needs. Definite lengths only (DER): a BER file (indefinite lengths) goes to the server as is.

/** The element at `at`: its tag, where its contents start and where it ends. Throws on what DER cannot be. */
function tlvAt(b, at) {
  if (at + 2 > b.length) throw new Error("truncated");
  let len = b[at + 1];
  let start = at + 2;
  if (len & 0x80) {
    const n = len & 0x7f;
    if (n === 0 || n > 4 || start + n > b.length) throw new Error("not DER");
    len = 0;
    for (let i = 0; i < n; i++) len = len * 256 + b[start + i];
    start += n;
  }
  if (start + len > b.length) throw new Error("truncated");
  return { tag: b[at], at, start, end: start + len };
}

function childrenOf(b, t) {
  const out = [];
  for (let i = t.start; i < t.end; ) {
    const c = tlvAt(b, i);
    out.push(c);
    i = c.end;
  }
  return out;
}

const bytesOf = (b, t) => b.subarray(t.at, t.end);
const sameBytes = (a, b) => a.length === b.length && a.every((x, i) => x === b[i]);
const hexOf = (b) => Array.from(b, (x) => x.toString(16).padStart(2, "0")).join("");

/** A DER CMS SignedData's outline — its certificates, how many signers, whether the content is left out — or undefined. */
function signedDataOutline(b) {
  try {
    const ci = tlvAt(b, 0);
    if (ci.tag !== 0x30 || ci.end !== b.length) return undefined;
    const [type, explicit] = childrenOf(b, ci);
    if (!type || !sameBytes(bytesOf(b, type), SIGNED_DATA_OID) || explicit?.tag !== 0xa0) return undefined;
    const sd = childrenOf(b, explicit)[0];
    if (sd?.tag !== 0x30) return undefined;
    // version, digestAlgorithms, encapContentInfo, [0] certificates, [1] crls, signerInfos
    const parts = childrenOf(b, sd);
    const encap = parts[2];
    const signerInfos = parts[parts.length - 1];
    if (encap?.tag !== 0x30 || signerInfos?.tag !== 0x31) return undefined;
    const certs = parts.slice(3, -1).find((p) => p.tag === 0xa0);
    return {
      certificates: certs ? childrenOf(b, certs).filter((c) => c.tag === 0x30).map((c) => bytesOf(b, c)) : [],
      signers: childrenOf(b, signerInfos).length,
      detached: childrenOf(b, encap).length < 2,
    };
  } catch {
    return undefined;
  }
}

/** A certificate's issuer and subject names, as hex of their DER, to match one certificate's issuer to another's subject. */
function namesOf(der) {
  let f = childrenOf(der, childrenOf(der, tlvAt(der, 0))[0]);
  if (f[0].tag === 0xa0) f = f.slice(1); // version
  // serialNumber, signature, issuer, validity, subject
  return { issuer: hexOf(bytesOf(der, f[2])), subject: hexOf(bytesOf(der, f[4])) };
}

/**
 * A bundle's certificates with the end entity first, then its issuers in order: the one no other certificate of the
 * bundle names as its issuer. Bundles come CA-first too (and .p7b files in any order); the first was checked as
 * "the certificate itself". Undecidable bundles (unreadable, or no single end) keep their order.
 */
function endEntityFirst(ders) {
  try {
    const names = ders.map(namesOf);
    const ends = names.flatMap((n, k) => (names.some((m, j) => j !== k && m.issuer === n.subject) ? [] : [k]));
    if (ends.length !== 1) return ders;
    const order = [ends[0]];
    for (;;) {
      const cur = names[order[order.length - 1]];
      if (cur.issuer === cur.subject) break;
      const next = names.findIndex((n, k) => !order.includes(k) && n.subject === cur.issuer);
      if (next < 0) break;
      order.push(next);
    }
    for (let k = 0; k < ders.length; k++) if (!order.includes(k)) order.push(k);
    return order.map((k) => ders[k]);
  } catch {
    return ders;
  }
}

/** The DER of each PEM block with this label. */
function pemBlocks(text, label) {
  const re = new RegExp(`-----BEGIN ${label}-----([\\s\\S]*?)-----END ${label}-----`, "g");
  return Array.from(text.matchAll(re), (m) => Uint8Array.from(atob(m[1].replace(/\s+/g, "")), (c) => c.charCodeAt(0)));
}

/** What the server is asked of a DER file: a signed file, certificates (one, or a .p7b's), or nothing, with why. */
function ofDer(der, from) {
  const sd = signedDataOutline(der);
  if (sd) {
    if (sd.signers) return { kind: "signed", der, detached: sd.detached };
    if (sd.certificates.length) return { kind: "certificates", ders: endEntityFirst(sd.certificates), note: `${from} holds no signature, only certificates (a .p7b bundle): its end-entity certificate was checked` };
    return { kind: "refused", why: `${from} is a CMS SignedData with neither a signature nor a certificate` };
  }
  if (namesOid(der, SIGNED_DATA_OID)) return { kind: "signed", der, detached: false }; // BER: the server reads it
  if (namesOid(der, ENVELOPED_DATA_OID)) return { kind: "refused", why: `${from} is an encrypted (enveloped) message: this page checks signatures and certificates, and reads no encrypted content` };
  return { kind: "certificates", ders: [der] };
}

/**
 * What a file is, and so what to ask the server: `signed` (CMS SignedData, DER or PEM or S/MIME), `certificates`
 * (a certificate, a PEM bundle or a certs-only .p7b, end entity first), or `refused` with why — a PEM file without
 * a certificate (a private key above all) is not sent anywhere.
 */
function classify(bytes) {
  const head = new TextDecoder("latin1").decode(bytes.subarray(0, 4096));
  if (head.includes("-----BEGIN")) {
    const text = new TextDecoder().decode(bytes);
    const certs = pemBlocks(text, "CERTIFICATE");
    if (certs.length) return { kind: "certificates", ders: endEntityFirst(certs) };
    const cms = [...pemBlocks(text, "CMS"), ...pemBlocks(text, "PKCS7")];
    if (cms.length) return ofDer(cms[0], "the file");
    const label = /-----BEGIN ([A-Z0-9 ]{1,40})-----/.exec(text)?.[1] ?? "something else";
    return { kind: "refused", why: `it is PEM without a certificate (it holds ${label})${/PRIVATE KEY/.test(label) ? ", and a private key never leaves its holder: nothing was sent" : ""}` };
  }
  // S/MIME (RFC 8551): MIME headers, then the CMS in base64. A clear-signed message is the document and a detached
  // signature in two MIME parts, which this form does not take apart.
  const mime = /^(?:mime-version|content-type|content-disposition)\s*:/i.test(head.trimStart()) ? head.toLowerCase() : "";
  if (mime.includes("multipart/signed")) {
    return { kind: "refused", why: "it is a clear-signed S/MIME message: save its signature part (smime.p7s) and the signed part, then check the signature with the document beside it" };
  }
  if (/content-type\s*:\s*application\/(?:x-)?pkcs7-(?:mime|signature)/.test(mime)) {
    const text = new TextDecoder("latin1").decode(bytes);
    const body = text.split(/\r?\n\r?\n/).slice(1).join("\n").replace(/\s+/g, "");
    try {
      return ofDer(Uint8Array.from(atob(body), (c) => c.charCodeAt(0)), "the S/MIME message");
    } catch {
      return { kind: "refused", why: "it is an S/MIME message whose body is not base64" };
    }
  }
  return ofDer(bytes, "the file");
}

function pemOf(der) {
  return `-----BEGIN CERTIFICATE-----\n${base64(der).replace(/.{64}/g, "$&\n")}\n-----END CERTIFICATE-----`;
}

function line(parent, label, value, attrs) {
  const dt = el("dt", label);
  const dd = el("dd", value, attrs);
  parent.append(dt, dd);
}

/** A certificate's answer (POST /v1/validate, or the signer's in a signed file's) as a list of words. */
function answerList(a) {
  const dl = el("dl");
  line(dl, "Status", STATUS_WORDS[a.status] ?? a.status, { "data-field": "status" });
  if (a.view === "private") {
    line(dl, "Your view", "private certification provider (民間認証事業者): you are told valid, revoked or unknown, and nothing about the reason or the resident", { "data-field": "view" });
  } else {
    line(dl, "Your view", "government body (行政機関)", { "data-field": "view" });
    if (a.serial) line(dl, "Serial", a.serial);
    if (a.issuer) line(dl, "Issuer", a.issuer);
    if (a.failedCertificate) {
      const i = a.failedCertificate.index;
      const which = i === 0 ? "the certificate itself (index 0, the end entity)" : `certificate ${i} of the path (a CA certificate)`;
      line(dl, "Which certificate failed", `${which}${a.failedCertificate.subject ? `: ${a.failedCertificate.subject}` : ""}`, { "data-field": "failed" });
    }
    if (a.reason) line(dl, "Why", `${a.reason}${a.message ? ` — ${a.message}` : ""}`, { "data-field": "reason" });
    if (a.revocation) line(dl, "Revocation", `on ${when(a.revocation.time)}: ${REVOCATION_WORDS[a.revocation.reason] ?? a.revocation.reason} (${a.revocation.reason})`, { "data-field": "revocation" });
    if (a.currentItems) {
      for (const [k, label] of ITEM_LABELS) {
        if (a.currentItems[k] === undefined) continue;
        line(dl, label, k === "gender" ? (GENDER_WORDS[a.currentItems[k]] ?? a.currentItems[k]) : a.currentItems[k], { "data-field": `item-${k}` });
      }
    } else if (a.itemsWithheld) line(dl, "Four items (基本4情報)", WITHHELD_WORDS[a.itemsWithheld] ?? a.itemsWithheld, { "data-field": "items" });
  }
  line(dl, "Checked at", when(a.validationTime));
  return dl;
}

function renderAnswer(a, fileName) {
  const out = $("result");
  out.className = `result ${a.status === "valid" ? "ok" : "bad"}`;
  out.replaceChildren(el("h3", `${fileName}: ${a.status}`, { id: "result-status", "data-status": a.status }), answerList(a));
}

/** A signed file's answer: the signature in words, then the signer's certificate as for a certificate. */
function renderSignature(a, fileName) {
  const out = $("result");
  const s = a.signature;
  out.className = `result ${s.status === "valid" ? "ok" : "bad"}`;
  out.replaceChildren(el("h3", `${fileName}: signature ${s.status}`, { id: "result-status", "data-status": s.status, "data-kind": "signed-file" }));
  const dl = el("dl");
  line(dl, "Signature (電子署名)", SIGNATURE_WORDS[s.status] ?? STATUS_WORDS[s.status] ?? s.status, { "data-field": "signature" });
  if (s.message && s.status !== "valid") line(dl, "Why", `${s.reason ? `${s.reason} — ` : ""}${s.message}`, { "data-field": "signature-reason" });
  if (s.signingTime) line(dl, "Signing time (the signer's claim)", when(s.signingTime), { "data-field": "signing-time" });
  out.append(dl);
  if (a.certificate) {
    out.append(el("h4", "The signer's certificate (署名用電子証明書)"));
    out.append(answerList(a.certificate));
  }
}

async function check(ev) {
  ev.preventDefault();
  const out = $("result");
  const file = $("file").files?.[0];
  if (!file) {
    out.className = "result bad";
    out.replaceChildren(el("p", "Choose or drop a certificate or a signed file first."));
    return;
  }
  // The server's body limits: 64 KiB for a certificate, 2 MiB for a signed file (base64 grows it by a third).
  if (file.size > 1_500_000) {
    out.className = "result bad";
    out.replaceChildren(el("p", `${file.name} is ${file.size} bytes: this page takes certificates and signed files up to 1.5 MB.`));
    return;
  }
  out.className = "result";
  out.replaceChildren(el("p", `Checking ${file.name}…`));
  const bytes = new Uint8Array(await file.arrayBuffer());
  const what = classify(bytes);
  const legalBasis = $("legal-basis").value ? { legalBasis: $("legal-basis").value } : {};
  try {
    if (what.kind === "refused") throw new Error(what.why);
    if (what.kind === "signed") {
      const doc = $("document").files?.[0];
      if (what.detached && !doc) throw Object.assign(new Error("it is a detached signature, without the document it signs: choose the signed document too (Signed document), then check again"), { code: "content-missing" });
      if (doc && doc.size > 1_000_000) throw new Error(`the signed document ${doc.name} is ${doc.size} bytes: this page takes documents up to 1 MB`);
      const content = what.detached && doc ? { content: base64(new Uint8Array(await doc.arrayBuffer())) } : {};
      const a = await api("v1/verify-signature", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify({ signedData: base64(what.der), ...content, ...legalBasis }) });
      renderSignature(a, file.name);
    } else {
      const [ee, ...chain] = what.ders;
      if (ee.length > 48 * 1024) throw new Error("a certificate is a few kilobytes: this file is neither a certificate nor a signed file");
      const body = { certificate: pemOf(ee), ...(chain.length ? { chain: chain.map(pemOf) } : {}), purpose: $("purpose").value, ...legalBasis };
      const a = await api("v1/validate", { method: "POST", headers: { "Content-Type": "application/json" }, body: JSON.stringify(body) });
      renderAnswer(a, file.name);
      if (what.note) $("result").append(el("p", `Note: ${what.note}.`, { "data-field": "note" }));
    }
  } catch (e) {
    out.className = "result bad";
    out.replaceChildren(el("p", `${file.name} was not checked: ${e.message}.`, { "data-error": e.code ?? e.status ?? "error" }));
    if (e.status === 401) signOut();
  }
}

// ---- wiring ----

function wire() {
  $("signin-form").addEventListener("submit", (ev) => {
    ev.preventDefault();
    void signIn($("token").value.trim());
  });
  $("signout").addEventListener("click", signOut);
  $("refresh").addEventListener("click", () => void loadOverview().catch((e) => ($("overview-status").textContent = `Could not load: ${e.message}.`)));
  $("check-form").addEventListener("submit", (ev) => void check(ev));
  const zone = $("dropzone");
  zone.addEventListener("dragover", (ev) => {
    ev.preventDefault();
    zone.classList.add("over");
  });
  zone.addEventListener("dragleave", () => zone.classList.remove("over"));
  zone.addEventListener("drop", (ev) => {
    ev.preventDefault();
    zone.classList.remove("over");
    if (ev.dataTransfer?.files?.length) $("file").files = ev.dataTransfer.files;
  });
  if (sessionStorage.getItem(TOKEN_KEY) || sessionStorage.getItem(CERTIFICATE_KEY)) void signIn(token());
}

wire();
