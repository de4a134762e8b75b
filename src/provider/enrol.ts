/**
 * Enrolment (the seed's slide 3(4), ②–⑤): a customer applies to the provider with the public signature certificate
 * (署名用電子証明書) on their card; the provider checks it with the public service and issues its own certificate.
 *
 * The application is a CMS SignedData (RFC 5652) signed with the card's signature key, the public certificate
 * inside it, as `jpki card sign` or `openssl cms -sign` makes it. Why not the certificate alone: a certificate is
 * public (it travels with every signed document), so a copy proves nothing; the signature proves the applicant holds
 * the card and knows its PIN. The signed content is either
 * - a PKCS#10 request (RFC 2986) for the customer's new key: the provider certifies that key (the customer keeps
 *   it); or
 * - any application document, with `generateKey`: the provider makes an RSA-2048 key and hands it back once (never
 *   stored here). A request is then honoured once only (its signer and signature value are recorded, so a
 *   re-encoded copy is the same request; ERR_PROVIDER_REQUEST_REUSED), since whoever replays it would get a key in
 *   the customer's name.
 * A request must carry a signing-time attribute no older than maxRequestAgeMinutes (config): a signed request
 * copied later is not an application now. The same CSR request given again returns the certificate issued for it
 * (a retry after a lost answer issues nothing twice) while that certificate is valid; once it is revoked or expired
 * the request is refused (ERR_PROVIDER_REQUEST_REUSED).
 *
 * The check (③④): the signature and the signer's path to a trusted public CA (validation/cms.ts), then
 * `validateJpki` with hard-fail revocation against that CA's current full CRL, fetched through the same conditional
 * GET as `follow` (a 304 when nothing changed): revoked, expired, foreign or test → nothing is issued
 * (ERR_PROVIDER_PUBLIC_CERT_INVALID, with the engine's status and reason in `details`); a CRL past its nextUpdate
 * or dated after this host's clock → nothing is issued either, as the endpoint's failure (ERR_PUBLIC_CRL_STALE,
 * ERR_PUBLIC_CRL_CLOCK: exit 17). The same holds for the trusted successor generation's CRL on which the signer's
 * generation is checked for a declared compromise (follow.ts checkGeneration): past its nextUpdate and not listing the
 * link, it says nothing of a compromise declared since, and nothing is issued (ERR_PUBLIC_CRL_STALE, naming it).
 *
 * The certificate (⑤): provider/workspace.ts certifyCustomer; valid for certificateDays at most and never past the
 * public certificate's notAfter nor the provider CA's. The link (private serial ↔ public CA, serial, digest, when)
 * is committed in the same state write as the certificate.
 */
import { createHash, createPublicKey, randomBytes, type KeyObject } from "node:crypto";
import { join } from "node:path";
import { verifyCsr } from "../ca/csr.js";
import { caUrls } from "../ca/ids.js";
import { JpkiError, isJpkiError } from "../errors.js";
import { formatDuration, type Clock } from "../pki/clock.js";
import { certificateParts } from "../pki/der.js";
import { generateRsaKey } from "../pki/keys.js";
import { toPem } from "../pki/pem.js";
import { parseCertificate } from "../validation/certificate.js";
import { verifySignedData } from "../validation/cms.js";
import { validateJpki } from "../validation/jpki.js";
import { verifySignature, workingKeyOf } from "../validation/signature.js";
import { OcspClient, type OcspProblem, type OcspTimeFault } from "../validation/ocsp-source.js";
import { formatName } from "../validation/name.js";
import { checkGenerationNow, endpointFetch, endpointTimeouts, fetchSuccessorHints, indexFailure, ownCompromise, refreshPublicCrl, type PublicEndpointOptions } from "./follow.js";
import { NO_HINTS, laterTrusted, trustedSuccessors } from "./compromise.js";
import {
  certifyCustomer,
  compromiseEvidence,
  openProviderCa,
  providerPaths,
  readProviderConfig,
  readProviderState,
  readTrustAnchors,
  type SkippedTrustFile,
  type PublicCaCompromise,
  viewLink,
  withProviderLock,
  writeProviderFile,
  writeProviderState,
  type ProviderLink,
  type ProviderLinkView,
} from "./workspace.js";

export interface EnrolOptions extends PublicEndpointOptions {
  readonly dir: string;
  readonly passphrase: string;
  readonly clock: Clock;
  /** the CMS SignedData (DER or PEM), signed with the customer's public signature certificate, content attached */
  readonly request: Uint8Array;
  /** the signed content is an application, not a PKCS#10 request: generate the customer's key here */
  readonly generateKey?: boolean;
  /**
   * With `generateKey`: receives the key (PKCS#8 PEM) once the certificate is signed and before it and its link are
   * recorded, e.g. to write it where the customer gets it. If it throws, nothing is recorded and the request stays
   * unused, so the key is never lost behind a request that can no longer be used. (Without it, the key comes back in
   * the result only.)
   */
  readonly deliverKey?: (privateKeyPem: string) => void;
  /** the provider's own id for the customer (the certificate's CN); a random opaque id when omitted */
  readonly customerId?: string;
  /**
   * Ask the endpoint's OCSP responder too (`<endpoint>/ocsp/<ca>`), and issue only on "good": the CRL may be hours
   * old, OCSP answers from the CA's store now (JPKI.md: OCSP where same-day certainty matters, as at the
   * identity check ③). Revoked, unknown or no answer refuses; a responder down or unreachable (asked again as the
   * CRL is) is ERR_PUBLIC_OCSP_UNAVAILABLE; an answer not current by `clock` (thisUpdate or producedAt ahead of it
   * beyond the skew, nextUpdate past) is ERR_PUBLIC_OCSP_NOT_CURRENT; one malformed, badly signed, about another
   * certificate or without the request's nonce is ERR_PUBLIC_OCSP_INVALID.
   */
  readonly ocsp?: boolean;
}

export interface EnrolResult extends ProviderLinkView {
  readonly certificate: Buffer;
  readonly certificatePem: string;
  readonly certificatePath: string;
  /** the generated key (PKCS#8 PEM, unencrypted): hand it to the customer once; it is not kept here */
  readonly privateKeyPem?: string;
  /** this request was enrolled before: its certificate, nothing new issued */
  readonly alreadyEnrolled: boolean;
  /** how the public CRL the check used was had */
  readonly publicCrl: { readonly caId: string; readonly number: string; readonly status: "downloaded" | "not-modified" };
  /** the OCSP answer, when asked (`ocsp`) */
  readonly publicOcsp?: { readonly url: string; readonly status: "good"; readonly producedAt: Date };
  /** files of trust/ passed over (readTrustAnchors) */
  readonly skippedTrust?: readonly SkippedTrustFile[];
}

const CUSTOMER_ID = /^[A-Za-z0-9._@-]{1,64}$/;
/** Clock skew with the customer and the public side: a signing time, an OCSP answer's thisUpdate or producedAt this far ahead of our clock is still accepted. */
const SKEW_MS = 5 * 60_000;

/** OCSP no-answers that are the responder's unavailability (down, unreachable, overloaded), not a verdict. */
const OCSP_UNAVAILABLE: ReadonlySet<OcspProblem> = new Set(["network", "timeout", "http-status", "response-status"]);
/**
 * OCSP no-answers whose answer came but cannot be relied on (RFC 6960 §3.2(1)(2), §4.2.2.2; RFC 8954): not DER, a
 * signature that does not verify or a signer the CA did not authorise, about another certificate than asked, or
 * without our nonce. The endpoint's fault (or one between it and us), as a public CRL that does not verify is
 * (ERR_PUBLIC_CRL_INVALID): they say nothing of the customer's certificate, and ERR_PROVIDER_PUBLIC_CERT_INVALID
 * sent the operator to the customer.
 */
const OCSP_ANSWER_INVALID: ReadonlySet<OcspProblem> = new Set(["malformed-response", "signature-invalid", "responder-not-authorised", "cert-id-mismatch", "nonce-mismatch"]);

/**
 * An OCSP answer outside its time (RFC 6960 §3.2(5)(6), §4.2.2.1): not relied on. The endpoint's error, not the
 * customer's (exit 17 with the other endpoint failures): a clock wrong on one side, or an old answer replayed.
 */
function notCurrent(url: string, caId: string, problem: OcspProblem, t: OcspTimeFault): JpkiError {
  const by = formatDuration(t.offsetMs);
  const clock = `this provider's clock (${t.at.toISOString()})`;
  const skew = `more than the ${formatDuration(t.skewMs)} of clock skew allowed`;
  const what =
    t.field === "nextUpdate"
      ? `a nextUpdate of ${t.value.toISOString()}, ${by} before ${clock}: an answer past its time (replayed, or a responder behind)`
      : problem === "stale"
        ? `no nextUpdate and a thisUpdate of ${t.value.toISOString()}, ${by} before ${clock}, ${skew} (without nextUpdate an answer is current only at its thisUpdate)`
        : `a ${t.field} of ${t.value.toISOString()}, ${by} ahead of ${clock}, ${skew}`;
  return new JpkiError("ERR_PUBLIC_OCSP_NOT_CURRENT", `the OCSP responder ${url} answered with ${what}: the answer is not relied on; check both sides' clocks (NTP), then enrol again; nothing was issued`, {
    details: { url, caId, problem, field: t.field, offsetMs: t.offsetMs, skewMs: t.skewMs },
  });
}

function invalid(message: string, details?: Record<string, unknown>): JpkiError {
  return new JpkiError("ERR_PROVIDER_REQUEST_INVALID", message, details ? { details } : undefined);
}

function compromisedCa(caId: string, rec: PublicCaCompromise): JpkiError {
  return new JpkiError(
    "ERR_PUBLIC_CA_COMPROMISED",
    `the signer's certificate was issued by ${caId}, whose key the public side declared compromised (${compromiseEvidence(caId, rec)}): a certificate signed with that key proves nothing, genuine or forged; nothing was issued`,
    { details: { caId, successor: rec.successor } },
  );
}

/** `jpki provider enrol`: validates the customer's public certificate and request, then issues and links. */
export async function enrolCustomer(o: EnrolOptions): Promise<EnrolResult> {
  if (o.customerId !== undefined && !CUSTOMER_ID.test(o.customerId)) throw new JpkiError("ERR_USAGE", "the customer id must be 1–64 letters, digits or . _ @ -");
  const timeouts = endpointTimeouts(o);
  const paths = providerPaths(o.dir);
  const config = readProviderConfig(paths);
  // Opened first: a wrong passphrase must fail before the public CRL is fetched and recorded, not after.
  const providerCa = openProviderCa(paths, o.passphrase);
  return withProviderLock(paths, async () => {
    // A file of trust/ that cannot be used is passed over: it fails an enrolment only when the customer's CA may be its
    // (the signer is then untrusted, below), and the others go on.
    const { trusted, skipped } = readTrustAnchors(paths);
    const unusable = () =>
      skipped.length
        ? new JpkiError(skipped[0]!.code, `the certificate that signed the request is from no public CA this provider can use, and ${skipped.map((x) => x.file).join(", ")} cannot be used (${skipped.map((x) => x.message).join("; ")}): if the customer's CA is one of those, mend it ('jpki provider trust' with the CA's certificate replaces it); nothing was issued`, { details: { skippedTrust: skipped.map((x) => x.file) } })
        : undefined;
    if (!trusted.length) throw unusable() ?? new JpkiError("ERR_CA_UNKNOWN", `the provider at ${paths.root} trusts no public CA: trust/ is empty`);
    const now = o.clock.now();
    // The bytes of the file as given: what links recorded before requests were named by their signature (below).
    const fileSha256 = createHash("sha256").update(o.request).digest("hex");

    // ② the signed application: signature and the signer's path now (revocation is checked below, on a CRL this
    // provider fetched and verified itself).
    const signed = verifySignedData({ signature: o.request, trustAnchors: trusted.map((t) => t.der), at: now, revocation: "off", purpose: "signature", signingTimeSkewMs: SKEW_MS });
    if (signed.status === "untrusted") {
      const e = unusable();
      if (e) throw e;
    }
    if (signed.status !== "valid" || !signed.signer) {
      // a signing time ahead of the skew is the request's fault, not the certificate's
      const pathStatus = ["untrusted", "expired", "not-yet-valid", "profile-violation", "revoked", "wrong-purpose"].includes(signed.status) && signed.reason !== "signing-time-in-future";
      throw new JpkiError(
        pathStatus ? "ERR_PROVIDER_PUBLIC_CERT_INVALID" : "ERR_PROVIDER_REQUEST_INVALID",
        pathStatus
          ? `the certificate that signed the request is not a JPKI signature certificate from a CA this provider trusts (${signed.status}: ${signed.message}): nothing was issued${signed.status === "untrusted" ? " (a certificate of a public CA's new key generation, after its rollover, needs that generation trusted: 'jpki provider trust')" : ""}`
          : `the enrolment request is not a valid signed application (${signed.status}: ${signed.message}): the customer signs it again with the card's signature key`,
        { details: { status: signed.status, ...(signed.reason ? { reason: signed.reason } : {}) } },
      );
    }
    if (!signed.content) throw invalid("the request's content is detached: attach the signed PKCS#10 request or application (openssl cms -sign -nodetach)");
    if (!signed.signingTime) throw invalid("the request carries no signing-time attribute: a request must say when it was signed");
    const age = now.getTime() - signed.signingTime.getTime();
    if (age > config.maxRequestAgeMinutes * 60_000 || age < -SKEW_MS) {
      throw invalid(`the request was signed at ${signed.signingTime.toISOString()}, outside the ${config.maxRequestAgeMinutes} minutes this provider accepts: the customer signs a new one`);
    }

    // ③④ the public certificate, validated against its CA's current CRL.
    const publicDer = signed.signer;
    // Which application this is, for "honoured once": its signer and signature value, not the file's bytes. The same
    // signed application re-wrapped — PEM for DER, a certificate added to the CMS, an unsigned attribute — is other
    // bytes but the same signature, and with the file's digest it was honoured again (a second generated key in the
    // customer's name from a copied request). Only the card's key makes another signature.
    const requestSha256 = createHash("sha256").update(createHash("sha256").update(publicDer).digest()).update(signed.signatureValue!).digest("hex");
    const pub = parseCertificate(publicDer);
    const issuerDer = Buffer.from(certificateParts(publicDer).issuer);
    // A CA's key generations share its name (ca/rollover.ts): the one that issued the certificate is the one whose key
    // verifies it, and its CRL is the one to ask. By name alone, a certificate of 13-sig-g2 was checked on 13-sig's CRL.
    const ca = trusted.find((t) => t.subject.equals(issuerDer) && verifySignature(pub.tbs, pub.signatureAlgorithm, pub.signature, workingKeyOf(parseCertificate(t.der).publicKey)));
    if (!ca) {
      throw unusable() ?? new JpkiError("ERR_PROVIDER_PUBLIC_CERT_INVALID", "the signer's certificate was not issued by a CA key this provider trusts directly (after a key rollover, trust the new generation's certificate too: 'jpki provider trust'): nothing was issued", {
        details: { status: "untrusted" },
      });
    }
    let state = readProviderState(paths);
    const compromised = state.compromisedCas?.[ca.caId];
    if (compromised) throw compromisedCa(ca.caId, compromised);
    const fetched = await refreshPublicCrl(paths, config.endpoint, ca, state.publicCrls[ca.caId], o.clock, o);
    // The CA's own CRL listing its own certificate: its key declared compromised (follow.ts ownCompromise), whatever
    // the CRL's dates. Recorded with what was seen; the next pass revokes what rests on it.
    const own = ownCompromise(ca, { crl: fetched.crl, number: fetched.seen.number }, now);
    state = { ...state, publicCrls: { ...state.publicCrls, [ca.caId]: fetched.seen } };
    // Its successor is g+1, or the one the endpoint's index names (provider/compromise.ts): asked only when a later
    // generation of its CA is trusted, the only case in which a successor can be.
    const index = laterTrusted(trusted, ca) ? await fetchSuccessorHints(config.endpoint, trusted, o) : undefined;
    const successors = trustedSuccessors(trusted, ca, index?.hints ?? NO_HINTS);
    if (own) {
      // Where a trusted successor's CRL says so too, its record is kept (made by a key not in question), as follow
      // keeps it; a successor that cannot be asked changes nothing: the own CRL has said it.
      let rec: PublicCaCompromise = own;
      let publicCrls = state.publicCrls;
      for (const successor of successors) {
        const viaLink = await checkGenerationNow(paths, config.endpoint, { ca, successor }, publicCrls[successor.caId], o.clock, o).catch((e: unknown) => {
          if (isJpkiError(e)) return undefined;
          throw e;
        });
        if (viaLink) publicCrls = { ...publicCrls, [successor.caId]: viaLink.seen };
        if (viaLink?.record && rec === own) rec = viaLink.record;
      }
      writeProviderState(paths, { ...state, publicCrls, compromisedCas: { ...state.compromisedCas, [ca.caId]: rec } });
      throw compromisedCa(ca.caId, rec);
    }
    writeProviderState(paths, state);
    // Fail closed: without the index, or with one silent on this certificate, a successor that is not g+1 would not
    // be checked (follow fails its pass alike).
    const unknownSuccessor = index && indexFailure(index, [ca.caId], ", then enrol again: nothing was issued");
    if (unknownSuccessor) throw unknownSuccessor;
    if (fetched.fromFuture) {
      throw new JpkiError(
        "ERR_PUBLIC_CRL_CLOCK",
        `${ca.caId}'s CRL #${fetched.seen.number} is dated ${fetched.crl.thisUpdate.toISOString()}, after this host's clock (${now.toISOString()}): a CRL not yet in force says nothing of now; check this host's clock (NTP), then enrol again: nothing was issued`,
        { details: { caId: ca.caId, crlNumber: fetched.seen.number } },
      );
    }
    // Past its nextUpdate, the endpoint's newest CRL says nothing of now: the endpoint's failure (exit 17, as in
    // follow), not the customer's certificate's. It was ERR_PROVIDER_PUBLIC_CERT_INVALID (exit 16, "revocation
    // unknown"), which sent the operator to the customer for what the public side's CRL publication must fix.
    if (fetched.stale) {
      throw new JpkiError(
        "ERR_PUBLIC_CRL_STALE",
        `the newest CRL of ${ca.caId} the endpoint gives (#${fetched.seen.number}) was due to be replaced at ${fetched.crl.nextUpdate!.toISOString()}: it says nothing of the customer's certificate now; check the public side's CRL publication, then enrol again: nothing was issued`,
        { details: { caId: ca.caId, crlNumber: fetched.seen.number, nextUpdate: fetched.crl.nextUpdate!.toISOString() } },
      );
    }
    const v = validateJpki({ certificate: publicDer, purpose: "signature", trustAnchors: [ca.der], crls: [fetched.crl.der], at: now, revocation: "hard-fail" });
    if (v.status !== "valid") {
      throw new JpkiError(
        "ERR_PROVIDER_PUBLIC_CERT_INVALID",
        `the customer's public signature certificate is ${v.status} (${v.reason}: ${v.message}) by ${ca.caId}'s CRL #${fetched.seen.number}: nothing was issued`,
        { details: { status: v.status, reason: v.reason, caId: ca.caId, crlNumber: fetched.seen.number } },
      );
    }
    // Its key declared compromised since the last follow pass? Asked now, on the successor's CRL (provider/compromise.ts),
    // when the successor is trusted: enrolment is what a stolen key would be used for. Fails closed: a check that
    // could not be made issues nothing. Found, it is recorded; the next pass revokes what rests on it.
    for (const successor of successors) {
      const c = await checkGenerationNow(paths, config.endpoint, { ca, successor }, state.publicCrls[successor.caId], o.clock, o);
      state = { ...state, publicCrls: { ...state.publicCrls, [successor.caId]: c.seen }, ...(c.record ? { compromisedCas: { ...state.compromisedCas, [ca.caId]: c.record } } : {}) };
      writeProviderState(paths, state);
      if (c.record) throw compromisedCa(ca.caId, c.record);
      // Fail closed: a successor's CRL past its nextUpdate (or not yet in force) that does not list the link says nothing
      // of a compromise declared since, and was fetched just now through the endpoint, so nothing fresher is to be had.
      if (c.check.error) {
        const crl = c.check.error.code === "ERR_PUBLIC_CRL_STALE" || c.check.error.code === "ERR_PUBLIC_CRL_CLOCK" ? { crlNumber: c.seen.number, ...(c.seen.nextUpdate !== undefined ? { nextUpdate: new Date(c.seen.nextUpdate).toISOString() } : {}) } : {};
        throw new JpkiError(c.check.error.code, `${c.check.error.message}: nothing was issued`, { details: { caId: ca.caId, successor: successor.caId, ...crl } });
      }
    }
    const publicCrl = { caId: ca.caId, number: fetched.seen.number, status: fetched.status };
    let publicOcsp: EnrolResult["publicOcsp"];
    if (o.ocsp) {
      const url = caUrls(config.endpoint, ca.caId).ocsp;
      // An answer is a few KB (64 KiB at most): its whole exchange is held to the inactivity timeout. The total a CRL
      // download is given would let a trickling responder hold the enrolment for minutes.
      const whole = Math.min(timeouts.inactivityMs, timeouts.totalMs);
      const fetch = endpointFetch({ ...o, totalTimeoutMs: whole });
      const client = new OcspClient({ url, ...(o.bearerToken ? { bearerToken: o.bearerToken } : {}), fetch, timeoutMs: whole, skewMs: SKEW_MS });
      // The clock read now, not at the start: the CRL download before this may have taken minutes, and an answer made
      // since would look as if from the future.
      const answer = await client.check({ certificate: publicDer, issuer: ca.der }, o.clock.now());
      if (answer.status === "no-answer" && answer.time) throw notCurrent(url, ca.caId, answer.problem, answer.time);
      // A responder that is down says nothing of the certificate: the endpoint's error (exit 17, as a CRL that cannot
      // be had), not ERR_PROVIDER_PUBLIC_CERT_INVALID, which sent the operator to the customer.
      if (answer.status === "no-answer" && OCSP_UNAVAILABLE.has(answer.problem)) {
        throw new JpkiError("ERR_PUBLIC_OCSP_UNAVAILABLE", `the OCSP responder ${url} gave no answer (${answer.problem}: ${answer.detail}): check the endpoint and the network, then enrol again; nothing was issued`, {
          details: { url, problem: answer.problem, caId: ca.caId },
        });
      }
      if (answer.status === "no-answer" && OCSP_ANSWER_INVALID.has(answer.problem)) {
        throw new JpkiError("ERR_PUBLIC_OCSP_INVALID", `the OCSP responder ${url} answered with an answer that is not relied on (${answer.problem}: ${answer.detail}): check the endpoint (its responder's key and certificate) and what lies between it and this provider, then enrol again; nothing was issued`, {
          details: { url, problem: answer.problem, caId: ca.caId },
        });
      }
      if (answer.status !== "good") {
        const said = answer.status === "no-answer" ? `no answer (${answer.problem}: ${answer.detail})` : answer.status === "revoked" ? `revoked (${answer.revocation.reason})` : "unknown";
        throw new JpkiError("ERR_PROVIDER_PUBLIC_CERT_INVALID", `the OCSP responder ${url} says the customer's public signature certificate is ${said}: nothing was issued`, {
          details: { status: answer.status === "revoked" ? "revoked" : "revocation-unknown", source: "ocsp", caId: ca.caId, ...(answer.status === "no-answer" ? { problem: answer.problem } : {}) },
        });
      }
      publicOcsp = { url, status: "good", producedAt: answer.producedAt };
    }

    const before = state.links.find((l) => l.requestSha256 === requestSha256 || l.requestSha256 === fileSha256);
    if (before) {
      if (before.keyGenerated) throw new JpkiError("ERR_PROVIDER_REQUEST_REUSED", `this request was enrolled before (certificate ${before.serial}) with a key generated here: a request is honoured once; the customer signs a new one`);
      // A retry after a lost answer gets its certificate back only while that certificate holds: one revoked since
      // (a key reported compromised, say) or expired came back with exit 0 and "already enrolled", and certifying
      // the same key again would undo the revocation. The customer applies anew, with a new key if it was the key.
      const view = viewLink(before, now);
      if (view.status !== "valid") {
        const why = view.status === "revoked" ? `has since been revoked (${view.reason})` : `expired at ${view.notAfter.toISOString()}`;
        throw new JpkiError("ERR_PROVIDER_REQUEST_REUSED", `this request was enrolled before, and its certificate ${before.serial} ${why}: it is not handed out again, nor the key certified anew on the same request; the customer signs a new one${view.status === "revoked" ? " (with a new key, if the revocation was for the key)" : ""}`, {
          details: { serial: before.serial, status: view.status, ...(view.reason ? { reason: view.reason } : {}) },
        });
      }
      return result(before, { alreadyEnrolled: true, publicCrl, ...(publicOcsp ? { publicOcsp } : {}) });
    }

    // The key: the signed PKCS#10 request's, or one made here.
    let spki: Buffer;
    let key: KeyObject | undefined;
    try {
      spki = verifyCsr(signed.content);
      if (o.generateKey) throw new JpkiError("ERR_USAGE", "the signed content is a PKCS#10 request: its key is certified; leave out --generate-key");
    } catch (e) {
      if (!isJpkiError(e, "ERR_CSR_MALFORMED") || !o.generateKey) {
        if (isJpkiError(e, "ERR_CSR_MALFORMED")) throw invalid("the signed content is not a PKCS#10 request: sign one (the customer's new key), or pass --generate-key to make the key here");
        throw e;
      }
      key = await generateRsaKey(2048);
      spki = createPublicKey(key).export({ type: "spki", format: "der" });
    }
    const sameKey = spki.equals(Buffer.from(certificateParts(publicDer).spki));

    const notBefore = new Date(Math.floor(now.getTime() / 1000) * 1000);
    const notAfter = new Date(Math.min(notBefore.getTime() + config.certificateDays * 86_400_000, pub.notAfter.getTime(), providerCa.notAfter.getTime()));
    const customerId = o.customerId ?? `c-${randomBytes(8).toString("hex")}`;
    const issued = await certifyCustomer(providerCa, config, { customerId, spki, notBefore, notAfter });
    const link: ProviderLink = {
      serial: issued.serial,
      customerId,
      issuedAt: notBefore.getTime(),
      notAfter: notAfter.getTime(),
      certificate: issued.der.toString("base64"),
      public: { caId: ca.caId, issuer: formatName(pub.issuer), serial: pub.serialHex, notAfter: pub.notAfter.getTime(), sha256: createHash("sha256").update(publicDer).digest("hex") },
      requestSha256,
      keyGenerated: key !== undefined,
      sameKey,
    };
    const privateKeyPem = key ? (key.export({ type: "pkcs8", format: "pem" }) as string) : undefined;
    if (privateKeyPem) o.deliverKey?.(privateKeyPem);
    writeProviderState(paths, { ...state, links: [...state.links, link] });
    return result(link, { alreadyEnrolled: false, publicCrl, ...(publicOcsp ? { publicOcsp } : {}), ...(privateKeyPem ? { privateKeyPem } : {}) });

    function result(l: ProviderLink, extra: { alreadyEnrolled: boolean; publicCrl: EnrolResult["publicCrl"]; publicOcsp?: EnrolResult["publicOcsp"]; privateKeyPem?: string }): EnrolResult {
      const der = Buffer.from(l.certificate, "base64");
      const pem = toPem(der, "CERTIFICATE");
      const certificatePath = join(paths.certsDir, `${l.serial}.pem`);
      // derived: rewritten from the state
      writeProviderFile(certificatePath, pem, `the certificate ${l.serial} is issued and recorded; 'jpki provider show ${l.serial}' prints it`);
      return { ...viewLink(l, now), certificate: der, certificatePem: pem, certificatePath, ...extra, ...(skipped.length ? { skippedTrust: skipped } : {}) };
    }
  });
}
