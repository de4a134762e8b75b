/**
 * Errors with stable codes (STYLE.md §10).
 *
 * A code, once published, keeps its meaning forever: scripts and other teams match on it. The message
 * tells the user what to do; it never contains a PIN, a key, or any of the four basic items.
 */

/**
 * Every code this library can raise, with the CLI exit code it maps to. Exit 1 and 15 are no error's: the
 * verifying commands (`jpki verify-signature`, `jpki verify`) exit 1 for an invalid verdict and 15 when they
 * cannot decide (revocation status unknown).
 */
export const ERROR_CODES = {
  ERR_USAGE: { exit: 2, summary: "the command line or a parameter is wrong" },
  ERR_CONFIG_INVALID: { exit: 2, summary: "a configuration value is out of range" },
  ERR_PREFECTURE_UNKNOWN: { exit: 2, summary: "not a JIS X 0401 prefecture code (01–47)" },
  ERR_MUNICIPALITY_INVALID: { exit: 2, summary: "not a 6-digit local government code" },
  ERR_FILE_NOT_FOUND: { exit: 2, summary: "a file or directory named on the command line does not exist" },
  ERR_FILE_UNUSABLE: { exit: 2, summary: "the path exists but cannot be used: a directory, a device, a FIFO, /proc, /sys or /dev, no permission" },
  ERR_WORKSPACE_MISSING: { exit: 3, summary: "no workspace at the given path" },
  ERR_WORKSPACE_CORRUPT: { exit: 3, summary: "the workspace store is damaged or not ours" },
  ERR_WORKSPACE_LOCKED: { exit: 3, summary: "another process holds the workspace" },
  ERR_CA_EXISTS: { exit: 4, summary: "the CA is already initialised" },
  ERR_CA_UNKNOWN: { exit: 4, summary: "no such CA in the workspace" },
  ERR_CA_RETIRED: { exit: 4, summary: "the CA id was retired (CRLs were published under it by a CA a restore did not bring back): it is never created again" },
  ERR_CA_ACTIVE: { exit: 4, summary: "the CA generation is the active one: its key is replaced by 'jpki ca rollover --compromised', not declared compromised" },
  ERR_CA_INVALID: { exit: 4, summary: "a CA certificate does not fit the CA profile" },
  ERR_ROLLOVER_NO_CA: { exit: 4, summary: "no CA of that prefecture and purpose to roll over to a new key" },
  ERR_ROLLOVER_EXPIRED: { exit: 4, summary: "the active CA certificate has expired: it cannot certify a new key (link certificate)" },
  ERR_CLOCK_OUTSIDE_CA_VALIDITY: { exit: 4, summary: "the clock is before the CA's notBefore or past its notAfter (a stepped clock, or an expired CA): nothing is issued" },
  ERR_ROLLOVER_CONFLICT: { exit: 4, summary: "another key rollover of the same CA committed first" },
  ERR_PASSPHRASE_MISSING: { exit: 5, summary: "no passphrase for the CA keys" },
  ERR_PASSPHRASE_WRONG: { exit: 5, summary: "the passphrase does not decrypt the CA key" },
  ERR_KEYS_REWRAPPED: { exit: 5, summary: "the CA keys were re-encrypted ('jpki ca rewrap') since this process opened them: what it would wrap under its passphrase was not stored; restart it with the new passphrase" },
  ERR_PASSPHRASE_FILE_UNSAFE: { exit: 5, summary: "the passphrase file can be read or written by other users: it must be owner-only (chmod 600)" },
  ERR_KEY_UNSUPPORTED: { exit: 6, summary: "the subject key is not RSA-2048" },
  ERR_KEY_MALFORMED: { exit: 6, summary: "the public key could not be decoded" },
  ERR_CSR_MALFORMED: { exit: 6, summary: "the PKCS#10 request could not be decoded" },
  ERR_CSR_SIGNATURE: { exit: 6, summary: "the PKCS#10 request's signature does not verify" },
  ERR_CSR_UNSUPPORTED: { exit: 6, summary: "the PKCS#10 request is not signed with sha256WithRSAEncryption" },
  ERR_KEY_IN_USE: { exit: 6, summary: "the public key is certified already, to another resident or for the other certificate type, or was revoked for key compromise: a card holds a key pair of its own per certificate type" },
  ERR_RESIDENT_UNKNOWN: { exit: 7, summary: "no resident with that resident code" },
  ERR_RESIDENT_CODE_INVALID: { exit: 7, summary: "resident code fails the format or check digit" },
  ERR_RESIDENT_INVALID: { exit: 7, summary: "a resident record field is invalid" },
  ERR_RESIDENT_NOT_ELIGIBLE: { exit: 7, summary: "the resident record does not allow issuance" },
  ERR_FOUR_ITEMS_INVALID: { exit: 7, summary: "one of the four basic items is malformed" },
  ERR_IMPORT_FORMAT: { exit: 8, summary: "an input file is not JSON Lines or CSV as documented" },
  ERR_APPLICATION_INVALID: { exit: 8, summary: "an issuance application is malformed" },
  ERR_NOTICE_MALFORMED: { exit: 8, summary: "a change notice (異動等情報の通知) is malformed" },
  ERR_NOTICE_KIND_UNKNOWN: { exit: 8, summary: "a change notice names a kind we do not know" },
  ERR_NOTICE_STALE: { exit: 8, summary: "a change notice repeats a sequence already applied or held for its resident" },
  ERR_NOTICE_SEQUENCE_JUMP: { exit: 8, summary: "a change notice's sequence is implausibly far ahead of its resident's record (a broken feed): it is not applied" },
  ERR_NOTICE_CONFLICT: { exit: 8, summary: "a notice id already seen arrives with a different body" },
  ERR_NOTICE_NOT_YET_EFFECTIVE: { exit: 8, summary: "a change notice takes effect after today (JST): send it when it does" },
  ERR_RESIDENT_CODE_IN_USE: { exit: 7, summary: "a resident-code change names a code that already belongs to someone" },
  ERR_RESIDENT_CHANGE_NEEDS_NOTICE: { exit: 7, summary: "a bulk import would change a record the CA side relies on: send it as a change notice" },
  ERR_RESIDENT_DUPLICATE: { exit: 7, summary: "an import file lists a resident code again: only its first record is taken" },
  ERR_COUNTER_PROCEDURE_INVALID: { exit: 7, summary: "a counter procedure (市町村窓口) does not fit the resident's record, e.g. a move-in to the municipality they live in" },
  ERR_REGISTRY_BEHIND: { exit: 7, summary: "the CA has applied change notices the registry has not: apply them to the registry first" },
  ERR_CERT_UNKNOWN: { exit: 9, summary: "no certificate with that serial" },
  ERR_CERT_ALREADY_REVOKED: { exit: 9, summary: "the certificate is already revoked" },
  ERR_APPLICATION_CERT_REVOKED: { exit: 9, summary: "an application id was issued before and its certificate has since been revoked: that certificate is not handed out as issued, nor a new one made under the same id; apply under a new application id" },
  ERR_REASON_UNKNOWN: { exit: 2, summary: "not a revocation reason we know" },
  ERR_DER_MALFORMED: { exit: 10, summary: "the input is not valid DER/PEM of the expected kind" },
  ERR_CMS_MALFORMED: { exit: 10, summary: "a signature is not a DER/PEM CMS SignedData (RFC 5652) with one SignerInfo we can read" },
  ERR_OCSP_MALFORMED: { exit: 10, summary: "an OCSP request is not a DER OCSPRequest (RFC 6960 §4.1.1), or breaks RFC 8954's nonce limits" },
  ERR_OCSP_RESPONDER_UNAVAILABLE: { exit: 4, summary: "a CA has no current OCSP signing certificate: the process running the CRL schedule issues one" },
  ERR_PROFILE_VIOLATION: { exit: 11, summary: "what we produced does not fit the JPKI profile" },
  ERR_CRL_NO_BASE: { exit: 4, summary: "a delta CRL was asked for, but the CA has no full CRL a delta can be built on: publish one first" },
  ERR_CRL_UNVERIFIED: { exit: 11, summary: "a CRL read back from its staged file did not parse or verify with the CA's key: it was not published" },
  ERR_STORE: { exit: 12, summary: "the store failed" },
  ERR_STORE_NOT_EMPTY: { exit: 12, summary: "a store copy's target already holds facts (or the file exists): copies go into an empty store only" },
  ERR_STORE_COPY_MISMATCH: { exit: 12, summary: "a store copy does not match its source (counts, digests, or a dump that stopped early): the workspace was not switched" },
  ERR_STORE_UNRESPONSIVE: { exit: 12, summary: "the store did not answer within the bound jpki serve waits for it (a database server that hangs, a SQLite write lock held elsewhere): no answer was given; ask again (the API's 503 store-unresponsive, with Retry-After)" },
  ERR_STORE_UNREACHABLE: { exit: 12, summary: "the store's database server cannot be reached, refused the login, or has no such database" },
  ERR_STORE_PERMISSION: { exit: 12, summary: "the store's database role lacks a privilege the command needs (PostgreSQL SQLSTATE 42501): the message names the table, schema or function" },
  ERR_VERIFIER_UNKNOWN: { exit: 14, summary: "no registered signature verifier (署名検証者) with that id" },
  ERR_VERIFIER_REVOKED: { exit: 14, summary: "the verifier's registration is already revoked" },
  ERR_VERIFIER_INVALID: { exit: 14, summary: "a verifier's name, kind or certificate request is not acceptable" },
  ERR_SERVICE_FAILED: { exit: 17, summary: "a jpki serve asked over HTTP could not be reached or answered an error (its typed code is in the message)" },
  ERR_TOKEN_FILE_UNSAFE: { exit: 14, summary: "the verifier token file (--token-file) can be read or written by other users: it must be owner-only (chmod 600)" },
  ERR_LEGAL_BASIS_NOT_ALLOWED: { exit: 14, summary: "a verifier named a legal basis (住民基本台帳法 別表) its kind may not name: government bodies (行政機関) only, never a private certification provider (民間認証事業者); nothing was answered or recorded" },
  ERR_CONSENT_UNKNOWN: { exit: 14, summary: "no live consent of that resident for that verifier" },
  ERR_PROVIDER_MISSING: { exit: 16, summary: "no private certification provider (民間認証事業者) workspace at the given path: 'jpki provider init' makes one" },
  ERR_PROVIDER_EXISTS: { exit: 16, summary: "the directory already holds a provider workspace" },
  ERR_PROVIDER_REQUEST_INVALID: { exit: 16, summary: "an enrolment request is not a fresh CMS SignedData by a JPKI signature certificate over a PKCS#10 request (or an application, with a key generated here)" },
  ERR_PROVIDER_REQUEST_REUSED: { exit: 16, summary: "this enrolment request was used before and is not honoured again: for a key generated here, or its certificate has since been revoked or has expired: the customer signs a new one" },
  ERR_PROVIDER_PUBLIC_CERT_INVALID: { exit: 16, summary: "the customer's public signature certificate (署名用電子証明書) did not validate (revoked, expired, foreign, test, revocation unknown): nothing was issued" },
  ERR_PROVIDER_CERT_UNKNOWN: { exit: 16, summary: "the provider issued no certificate with that serial" },
  ERR_PUBLIC_CRL_UNAVAILABLE: { exit: 17, summary: "a public CRL could not be fetched from the JPKI endpoint (network, HTTP status, token)" },
  ERR_PUBLIC_CRL_INVALID: { exit: 17, summary: "a public CRL from the endpoint did not verify with the trusted CA certificate, or is not that CA's full CRL" },
  ERR_PUBLIC_CRL_ROLLBACK: { exit: 17, summary: "a public CRL's number went backwards (or the same number came with other contents): it was refused" },
  ERR_PUBLIC_OCSP_UNAVAILABLE: { exit: 17, summary: "the JPKI endpoint's OCSP responder could not be reached, answered an HTTP error or refused to answer (tryLater, internalError …): nothing was issued" },
  ERR_PUBLIC_OCSP_NOT_CURRENT: { exit: 17, summary: "the JPKI endpoint's OCSP answer is not current by the provider's clock: its thisUpdate or producedAt lies ahead of it beyond the clock skew allowed, or its nextUpdate has passed (a clock wrong on one side, or an old answer replayed): nothing was issued" },
  ERR_PUBLIC_OCSP_INVALID: { exit: 17, summary: "the JPKI endpoint's OCSP answer cannot be relied on: not a DER OCSP response, a signature that does not verify with the trusted CA's key or a responder it authorised, about another certificate than asked, or without the request's nonce: nothing was issued" },
  ERR_PUBLIC_CRL_CLOCK: { exit: 17, summary: "a public CRL is dated after this host's clock (beyond 5 minutes): its revocations were applied, but nothing is validated against it until the clocks agree" },
  ERR_PUBLIC_CRL_STALE: { exit: 17, summary: "the newest public CRL the endpoint gives is past its nextUpdate: follow applied its revocations, but the provider is not current with the public side; enrol issued nothing" },
  ERR_PUBLIC_CA_INDEX_UNAVAILABLE: { exit: 17, summary: "the JPKI endpoint's index of CA key generations (/ca/index.json) could not be had (network, timeout, an HTTP status other than 404, a body that is not an index) while the provider trusts two generations of a public CA: which generation succeeds which is not known, so a compromise declared on a successor other than g+1 would go unseen; follow fails the pass (its revocations are applied, the provider CRL is not renewed for being due) and enrol issues nothing" },
  ERR_PUBLIC_CA_INDEX_MISMATCH: { exit: 17, summary: "the JPKI endpoint's index of CA key generations (/ca/index.json) names no successor for the certificate the provider trusts as a public CA generation of which it trusts a later generation too (the entry is missing, names none, or is about another certificate: its SHA-256 differs): as when the index cannot be had, follow fails the pass (its revocations are applied, the provider CRL is not renewed for being due) and enrol issues nothing" },
  ERR_PUBLIC_CA_COMPROMISED: { exit: 17, summary: "the public side declared a trusted public CA generation's key compromised (its successor's CRL lists the link certificate that vouched for it, or its own CRL lists its own certificate): follow revoked every provider certificate resting on it; enrol and trust refuse it; 'jpki provider untrust' removes it" },
  ERR_CARD_EXISTS: { exit: 18, summary: "a card file already exists at that path: a card is issued once" },
  ERR_CARD_MISSING: { exit: 18, summary: "no card file (住基カード state) at that path" },
  ERR_CARD_STATE_CORRUPT: { exit: 18, summary: "the card's state file does not decrypt and authenticate: altered, truncated, or made under another chip secret" },
  ERR_CARD_FILE_LINKED: { exit: 18, summary: "the card's state file, the chip secret or the card's rollback record has another name too (a hard link, link count > 1): the card is neither read nor written until that other name is removed" },
  ERR_CARD_ROLLBACK_RECORD_DAMAGED: { exit: 18, summary: "the card's rollback record (card-rollback/<card id> beside the chip secret; card-generations/<card id> before) is unreadable, holds no generation number, or does not authenticate (edited, another card's): the card is not used until it is mended (the message says how)" },
  ERR_CARD_CHIP_KEY_MISSING: { exit: 18, summary: "the installation's card chip secret (JPKI_CARD_CHIP_KEY_FILE) is missing, not owner-only, or not 32 bytes" },
  ERR_CARD_PIN_FORMAT: { exit: 18, summary: "a PIN breaks its rule: signature 6–16 of A–Z and 0–9, authentication and library 4 digits" },
  ERR_CARD_ADMIN_KEY_WRONG: { exit: 18, summary: "the municipality's administrative key does not open this card" },
  ERR_CARD_KEY_MISSING: { exit: 18, summary: "the card holds no key pair for that use yet: generate it at the counter first" },
  ERR_CARD_CERT_MISMATCH: { exit: 18, summary: "a certificate written to the card is not DER X.509, too large, or does not certify the card's key for that slot" },
  ERR_CARD_ADMIN_KEY_UNSAFE: { exit: 18, summary: "the administrative key file is readable by other users or not a regular file: chmod 600 it (and consider it disclosed)" },
  ERR_CARD_RESIDENT_MISMATCH: { exit: 18, summary: "the card's certificates are another resident's: a card is renewed only for the resident it was issued to" },
  ERR_CARD_PIN_WRONG: { exit: 18, summary: "the card refused the PIN; the message says how many tries are left" },
  ERR_CARD_PIN_BLOCKED: { exit: 18, summary: "the PIN is blocked: the municipal counter unblocks it with the administrative key" },
  ERR_CARD_STATUS: { exit: 18, summary: "the card answered a status word the operation does not expect (the word is in the message)" },
  ERR_PKCS11_MODULE: { exit: 19, summary: "the PKCS#11 module (--pkcs11-module, or the one a CA's key reference names) cannot be loaded or initialised" },
  ERR_PKCS11_MODULE_NOT_ALLOWED: { exit: 19, summary: "a CA's key reference names a PKCS#11 module this host's config.json (pkcs11Modules) does not list: it was not loaded" },
  ERR_PKCS11_TOKEN_NOT_FOUND: { exit: 19, summary: "no PKCS#11 token with that label in the module, or the token refused the login for a reason other than the PIN" },
  ERR_PKCS11_PIN_FILE_UNSAFE: { exit: 19, summary: "the token PIN file can be read or written by other users: it must be owner-only (chmod 600)" },
  ERR_PKCS11_PIN_MISSING: { exit: 19, summary: "a CA key is in a PKCS#11 token and no user PIN was given (JPKI_PKCS11_PIN or --pkcs11-pin-file)" },
  ERR_PKCS11_PIN_WRONG: { exit: 19, summary: "the token refused the user PIN (CKR_PIN_INCORRECT), or has locked it: it is not tried again" },
  ERR_PKCS11_KEY_NOT_FOUND: { exit: 19, summary: "the token holds no private key with the label and id the CA's key reference names" },
  ERR_PKCS11_SIGN_FAILED: { exit: 19, summary: "the token failed to generate a key or to sign, or returned a signature that does not verify: nothing was signed" },
  ERR_BACKUP_CORRUPT: { exit: 21, summary: "a backup fails its manifest (a file missing, added, or changed, or no valid manifest.json): nothing was restored" },
  ERR_BACKUP_UNAUTHENTICATED: { exit: 21, summary: "a passphrase was given to check a backup whose manifest is not authenticated (taken without one, or its authentication removed): nothing was restored; --accept-unauthenticated for a backup taken so" },
  ERR_BACKUP_EXISTS: { exit: 2, summary: "the backup destination already exists: backups go into a new directory" },
  ERR_BACKUP_TARGET_LIVE: { exit: 3, summary: "the restore target already holds a workspace (or its database holds records): stop every jpki process on it and pass --force" },
  ERR_BACKUP_UNSUPPORTED: { exit: 21, summary: "the backup was made by a newer jpki, of a newer store schema, or of another store kind than the target's" },
  ERR_STORE_UPGRADED: { exit: 3, summary: "the store was upgraded by a newer jpki while this process had it open: it refused this process's write (a certificate without a column the newer schema relies on), nothing of it was stored; stop the process and run the new release" },
  ERR_STORE_RETIRED: { exit: 3, summary: "the workspace's store is retired ('jpki store copy' moved the workspace to another store; the message names it): it is no longer the workspace's truth, so no backup was made" },
  ERR_BACKUP_TOOL: { exit: 12, summary: "pg_dump, pg_restore or psql is missing, older than the server, or failed (its error lines are included, without the names and values they quote)" },
  ERR_AUDIT_CHAIN_BROKEN: { exit: 20, summary: "the audit log's hash chain or a signed checkpoint does not hold: a record was altered, removed or reordered, or the log rolled back behind a checkpoint kept outside the store (the message names the first)" },
  ERR_AUDIT_ANCHOR_FORMAT: { exit: 8, summary: "a checkpoint file given to 'jpki audit verify --anchor' is not one 'jpki audit checkpoint --out' wrote (the message names the file and the field)" },
  ERR_OUTPUT_EXISTS: { exit: 2, summary: "an output file named on the command line already exists and is not replaced: jpki issue -o (unless --force), provider enrol --key-out" },
  ERR_REJECT_FILE_EXISTS: { exit: 2, summary: "the reject file named (--reject-file) already exists: a reject file is never replaced or added to, so nothing was ingested" },
  ERR_SPOOL_CLAIM_LOST: { exit: 3, summary: "another watcher took over a spool file this one was ingesting (its heartbeat had stopped past the claim timeout): that one finishes it" },
  ERR_PARTIAL: { exit: 13, summary: "some records were applied and some rejected" },
  ERR_NOTICES_UNDELIVERED: { exit: 13, summary: "the counter changed the records, but their change notices could not be delivered yet: they wait in the registry's outbox for 'jpki counter deliver'" },
  ERR_INSTALLATION_INCOMPLETE: { exit: 72, summary: "a file of jpki's own installation is missing or unreadable (the web page's public/ beside dist/): reinstall the package" },
  ERR_INTERNAL: { exit: 70, summary: "a bug: please report it" },
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

/** Base class of every error this library throws on purpose. */
export class JpkiError extends Error {
  readonly code: ErrorCode;
  /** Structured, user-safe details (never personal data or secrets). */
  readonly details: Readonly<Record<string, unknown>> | undefined;

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown; details?: Record<string, unknown> }) {
    super(message, options?.cause !== undefined ? { cause: options.cause } : undefined);
    this.name = "JpkiError";
    this.code = code;
    this.details = options?.details ? Object.freeze({ ...options.details }) : undefined;
  }

  get exitCode(): number {
    return ERROR_CODES[this.code].exit;
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, ...(this.details ? { details: this.details } : {}) };
  }
}

export function isJpkiError(e: unknown, code?: ErrorCode): e is JpkiError {
  return e instanceof JpkiError && (code === undefined || e.code === code);
}

/** A JpkiError as it crosses a worker thread's boundary (structured clone keeps no class). */
export interface ThreadError {
  readonly code?: ErrorCode;
  readonly message: string;
  readonly details?: Record<string, unknown>;
}

/** What a thread posts for an error it caught: its code when it is one of ours, its message, its details. */
export function toThreadError(e: unknown): ThreadError {
  const x = e as { code?: unknown; message?: unknown; details?: unknown };
  return {
    ...(typeof x?.code === "string" && x.code.startsWith("ERR_") ? { code: x.code as ErrorCode } : {}),
    message: typeof x?.message === "string" ? x.message : String(e),
    ...(x?.details && typeof x.details === "object" ? { details: { ...(x.details as Record<string, unknown>) } } : {}),
  };
}

/** The thread's error as the JpkiError it was (a plain error arrives as ERR_INTERNAL). */
export function fromThreadError(e: ThreadError): JpkiError {
  return new JpkiError(e.code ?? "ERR_INTERNAL", e.message, e.details ? { details: e.details } : undefined);
}
