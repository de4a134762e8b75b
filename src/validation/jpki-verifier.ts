/**
 * A relying party's (署名検証者's) validation set-up, configured once and used for every certificate: which CAs it
 * trusts, which cross-certificates it holds (the Bridge's), where revocation comes from — local CRLs, the CRL
 * endpoint through a cache, OCSP, in the order it prefers — and hard- or soft-fail. Issue 10 point 5's "chosen
 * per call or by configuration": `validateJpkiAsync` is the per-call form; this is the configured one, what a
 * service (the verifier services of the next issue) holds for its life. Parsed CRLs, fetched CRLs and key objects
 * are shared by every call through the sources' caches.
 */
import { JpkiError } from "../errors.js";
import { systemClock, type Clock } from "../pki/clock.js";
import { CrlIndexCache } from "./crl-index-cache.js";
import { validateJpkiAsync, type JpkiPurpose, type JpkiValidationResult } from "./jpki.js";
import type { OcspClient } from "./ocsp-source.js";
import type { CrlCache } from "./revocation-sources.js";
import { REVOCATION_SOURCES, type RevocationMode, type RevocationSourceName } from "./types.js";
import type { RevocationFetches } from "./validate.js";

export interface JpkiVerifierConfig {
  /** DER certificates: our prefecture CAs, J-LIS's roots, the Bridge CA */
  readonly trustAnchors: readonly Uint8Array[];
  /** cross-certificates and sub-CAs to build paths from */
  readonly intermediates?: readonly Uint8Array[];
  /** CRLs held locally (files a verifier was given), used besides what the sources fetch */
  readonly crls?: readonly Uint8Array[];
  /** where to ask, in order (default ["crl"]); "ocsp" needs `ocspSource` */
  readonly revocationSources?: readonly RevocationSourceName[];
  /**
   * the CRL endpoint through a cache (conditional GET, nextUpdate): the CRLs the certificates name. Those go with
   * the verifier's token only to the cache's `tokenOrigins` (give it your jpki serve's origin): by default none.
   */
  readonly crlSource?: CrlCache;
  readonly ocspSource?: OcspClient;
  /** default "hard-fail" */
  readonly revocation?: RevocationMode;
  /** the time of a check when the call names none */
  readonly clock?: Clock;
}

export class JpkiVerifier {
  readonly #config: JpkiVerifierConfig;
  readonly #clock: Clock;
  /** where local CRLs are parsed once when no CRL source brings its own index */
  readonly #index: CrlIndexCache;

  constructor(config: JpkiVerifierConfig) {
    if (!config.trustAnchors?.length) throw new JpkiError("ERR_USAGE", "JpkiVerifier: give at least one trust anchor");
    const sources = config.revocationSources ?? ["crl"];
    if (!sources.length || sources.some((s) => !REVOCATION_SOURCES.includes(s)) || new Set(sources).size !== sources.length) {
      throw new JpkiError("ERR_USAGE", `JpkiVerifier: revocationSources must list "crl" and/or "ocsp", each once, not ${JSON.stringify(sources)}`);
    }
    if (sources.includes("ocsp") && !config.ocspSource) throw new JpkiError("ERR_USAGE", 'JpkiVerifier: revocationSources names "ocsp": give an ocspSource (OcspClient)');
    this.#config = Object.freeze({ ...config, revocationSources: Object.freeze([...sources]) });
    this.#clock = config.clock ?? systemClock;
    this.#index = config.crlSource?.index ?? new CrlIndexCache();
  }

  get config(): JpkiVerifierConfig {
    return this.#config;
  }

  /** Validates a certificate for a purpose now (or `at`), by the configured trust and revocation sources. */
  async verify(certificate: Uint8Array, opts: { readonly purpose: JpkiPurpose; readonly at?: Date }): Promise<JpkiValidationResult & RevocationFetches> {
    const c = this.#config;
    return validateJpkiAsync({
      certificate,
      purpose: opts.purpose,
      trustAnchors: c.trustAnchors,
      ...(c.intermediates ? { intermediates: c.intermediates } : {}),
      ...(c.crls ? { crls: c.crls } : {}),
      at: opts.at ?? this.#clock.now(),
      ...(c.revocation ? { revocation: c.revocation } : {}),
      revocationSources: c.revocationSources!,
      ...(c.crlSource ? { crlSource: c.crlSource } : { crlIndex: this.#index }),
      ...(c.ocspSource ? { ocspSource: c.ocspSource } : {}),
    });
  }
}
