/**
 * jpki's public API. Everything a program (and the jpki CLI) may use is re-exported here; modules not
 * named here are internal and may change without notice. No import-time side effects.
 */
export { JpkiError, ERROR_CODES, isJpkiError, type ErrorCode } from "./errors.js";
export { childEnv } from "./child-env.js";

// time, keys, encodings
export { systemClock, FixedClock, type Clock } from "./pki/clock.js";
export { SoftwareSigner, type Signer } from "./pki/signer.js";
export {
  Pkcs11Signer,
  Pkcs11Token,
  openPkcs11Signer,
  generatePkcs11Key,
  formatPkcs11Uri,
  parsePkcs11Uri,
  readPinFile,
  setPkcs11PinSource,
  type Pkcs11KeyRef,
  type Pkcs11PinSource,
} from "./pki/pkcs11.js";
export { generateRsaKey, encryptPrivateKey, decryptPrivateKey, requireRsa2048, strongKeyWrapParams, type KeyWrapParams } from "./pki/keys.js";
export { PBKDF2_ITERATIONS } from "./pki/key-wrap.js";
export { toPem, pemOrDer, parsePemBlocks } from "./pki/pem.js";
export { useProvider } from "./pki/webcrypto.js";

// the JPKI profile
export type { FourItems, Gender, CertificateType } from "./profile/types.js";
export { FOUR_ITEMS_OID, POLICY_OID, JLIS_ARC } from "./profile/oids.js";
export { encodeFourItems, validateFourItems, sameCertifiedItems, substituteText, encodeBirthDate, decodeBirthDate, type EncodedFourItems } from "./profile/four-items.js";
export { encodeFourItemsSan, decodeFourItemsSan, type DecodedFourItems } from "./profile/san.js";
export { checkCertificate, checkCrl, type ProfileReport, type CrlProfileReport, type Violation, type ProfileKind } from "./profile/check.js";
export {
  describeCertificate,
  describeCrl,
  detectAndDecode,
  openCrl,
  openForInspection,
  crlBytesSource,
  crlFileSource,
  type CertificateDescription,
  type CrlDescription,
  type CrlEntryDescription,
  type CrlHeaderDescription,
  type CrlSource,
  type CrlStream,
  type CrlTotals,
  type Inspectable,
  type ExtensionDescription,
  type GeneralNameDescription,
} from "./profile/describe.js";

// registry (住民基本台帳)
export { residentCodeCheckDigit, isValidResidentCode, assertResidentCode, makeResidentCode } from "./registry/resident-code.js";
export { municipality, MUNICIPALITIES, assertMunicipalityCode, type Municipality } from "./registry/municipality.js";
export { parseResidentRecord, type Resident, type ResidentInput } from "./registry/resident.js";
export { readRecords, type RecordResult } from "./registry/import.js";
export { releaseStream, untilStopped, type StoppableInput } from "./registry/reading-stop.js";
export { generateResidents, generateNotices, createRandom } from "./registry/fixtures.js";
export { parseNotice, MAX_SEQUENCE_JUMP, NOTICE_KINDS, type ChangeNotice, type ChangeNoticeInput, type NoticeKind } from "./registry/notice.js";
export { NOTICE_RULES, decideRevocations, type RevocationDecision, type NoticeRule } from "./registry/notice-rules.js";
export { applyNoticeToResident } from "./registry/notice-apply.js";
export { applyNoticesToRegistry, type RegistryApplySummary } from "./registry/apply.js";
export {
  ImportedCodes,
  importResidents,
  importResidentFile,
  RESIDENT_FILE_BATCH,
  type ResidentImportOptions,
  type ResidentImportSummary,
  type ResidentFileImportError,
  type ResidentFileImportOptions,
  type ResidentFileImportProgress,
  type ResidentFileImportSummary,
} from "./registry/resident-import.js";
export {
  runProcedures, counterProcedure, parseProcedure, compareWithRegistered, noticeDue, counterNoticeId,
  relocate, moveIn, moveOut, rename, recordDeath, correct, removeRecord, changeResidentCode, COUNTER_KINDS, COUNTER_KIND_NAMES,
  type CounterKind, type CounterProcedure, type ProcedureOutcome, type CounterRunResult, type RegistryComparison,
} from "./registry/counter.js";
export {
  sweepIssuanceInformation, IssuanceSweepSchedule, ISSUANCE_SWEEP_GRACE_MS, ISSUANCE_SWEEP_INTERVAL_MS, ISSUANCE_SWEEP_FIRST_DELAY_MS,
  type IssuanceSweepResult, type IssuanceSweepParams, type IssuanceSweepEvent, type IssuanceSweepScheduleOptions,
} from "./registry/issuance-sweep.js";
export { spoolNotices, ingestNotices, deliverOutbox, defaultSpoolDir, noticesJsonl, type DeliveryTarget, type OutboxDelivery } from "./registry/counter-link.js";

// certification authorities
export { PREFECTURES, prefecture, prefectureList, type Prefecture } from "./ca/prefectures.js";
export { CertificationAuthority, createCaRecord, openCaSigner, tokenKeyLabel, caId, parseCaId, caUrls, type CaKeyToken } from "./ca/authority.js";
export { activeGeneration, caGeneration, caIdOfUrl, isRetired } from "./ca/ids.js";
export { rolloverCas, describeLinks, exportCaLinks, linkFileBase, type LinkCertificate, type LinkDirection, type RolledOver, type RolloverOptions } from "./ca/rollover.js";
export { freeCaIds, type PassedOverCaId } from "./ca/free-ids.js";
export { initCas, summariseCa, getCaRecord, exportCaCertificate, caFiles, rewrapCaKeys, withCaKeysLock, workspaceKeyWrap, type CaSummary, type InitResult, type RewrapOptions } from "./ca/manage.js";
export { certifyBridge, bridgeVouchesFor, revokeBridgeCross, refreshBridgeArl, readBridge, bridgePaths, BRIDGE_ID, type BridgeRevocation, type BridgeArl, type BridgeResult, type BridgeOptions, type BridgePaths, type CrossCertificate, type CrossDirection } from "./ca/bridge.js";
export { IssuanceService, parseApplication, type IssuanceApplication, type IssuedCertificate, type BatchSummary } from "./ca/issuance.js";
export { revokeCertificate, revokeAllIssuedBy, type RevokeAllResult } from "./ca/revocation.js";
export { NoticeIngestor, type IngestSummary, type IngestOptions, type IngestProgress, type RejectedNotice, type RefusedRelease, type ReleaseSummary } from "./ca/notices.js";
export { runIngest, RejectFile, checkRejectFileFree, publishedCrls, rejectFileNames, type IngestRunOptions, type IngestRunResult } from "./ca/ingestion.js";
export { DEFAULT_NOTICE_BATCH } from "./ca/notice-batch.js";
export { watchSpool, type WatchOptions } from "./ca/spool.js";
export { notAfterFor } from "./ca/validity.js";

// CRLs
export { buildCrl, crlDer, type CrlParams, type BuiltCrl } from "./crl/builder.js";
export { encodeEntry, decodeEntries, type CrlEntryInput, type EncodedEntries } from "./profile/crl-entry.js";
export { CrlPublisher, type PublishedCrl, type CrlIssuer } from "./crl/publisher.js";
export { generateCrls, openCrlIssuer, selectCas, type CrlSelection } from "./crl/generate.js";
export { retiredCrlStates } from "./crl/finished.js";
export { CrlUpdater } from "./crl/updater.js";
// the audit log (監査ログ): hash chain, signed checkpoints, verification
export { GENESIS_HASH, auditHash, canonicalJson, type AuditCheckpoint, type AuditEntry, type AuditQuery, type AuditRecord } from "./store/audit-log.js";
export { checkpointMessage, checkpointProblem, createAuditCheckpoint } from "./audit/checkpoint.js";
export { assertAuditLog, auditBroken, verifyAuditLog, type AuditAnchor, type AuditBreak, type AuditVerification } from "./audit/verify.js";
export { AUDIT_ANCHOR_FORMAT, auditAnchorFileName, auditAnchorText, parseAuditAnchor } from "./audit/anchor.js";
export { checkpointAuditLog, checkpointWith } from "./audit/service.js";
export { CrlSchedule, dueCrls, pendingGoesTo, refreshMarginMs, type DeltaState, type DueCrl, type DueReason } from "./crl/schedule.js";
export { deltaCadence, deltaCrlIndicator, deltaNextUpdate, freshestCrl, type DeltaCadence } from "./crl/delta.js";
export { CRL_REASON, REVOCATION_CAUSES, parseReason, reasonName, type CrlReasonName } from "./crl/reason.js";

// store and workspace
export type { Store, CaRecord, IssuanceRecord, CertificateRow, ResidentRecord, CrlRecord, CrlStatus, RegisteredIssuance, OutboxNotice } from "./store/types.js";
export { isRegistered, SWEEP_BATCH, type SweepOptions } from "./store/types.js";
export { SqliteStore, type SqliteOpenOptions } from "./store/sqlite.js";
export { PostgresStore, type PostgresStoreOptions } from "./store/postgres.js";
export type { CaCompromiseRecord, CaLinkRecord, RetiredCaIdRecord } from "./store/types.js";
export { compromisedCaIds, compromisedGeneration, compromisedSignerOf, declareCompromised, type CompromisedGeneration } from "./ca/compromised.js";
export { arlEntries } from "./crl/arl.js";
export { DUMP_KINDS, type SharedCertifiedKey, type DumpBatch, type DumpCounts, type DumpKind, type DumpResident, type DumpResidentSequence, type DumpRevocationOrder, type DumpCrl, type DumpCrlState, type DumpCrlScope, type CrlScope, type CrlScopeStatus, type DeltaCrlReservation, type DeltaCrlStatus, FULL_SCOPE, ARL_SCOPE, DELTA_SCOPE } from "./store/types.js";
export {
  copyStore,
  copyWorkspaceStore,
  fingerprintStore,
  fingerprintDifferences,
  FingerprintBuilder,
  parseStoreTarget,
  redactStoreUrl,
  type StoreCopyOptions,
  type StoreCopyProgress,
  type StoreCopyStep,
  type StoreCopyResult,
  type StoreFingerprint,
  type StoreTarget,
  type StoreLocation,
  type WorkspaceStoreCopyOptions,
  type WorkspaceStoreCopyReport,
} from "./store/copy.js";
export { DirectoryWriter } from "./store/directory-writer.js";
export { writeFailure, writeFileAtomic, writeFileNew } from "./store/files.js";
export { sweepStaleTemps } from "./store/staging.js";
export { Workspace, workspacePaths, type WorkspaceOpenOptions } from "./workspace/workspace.js";
// backup and restore (issue 13)
export { takeBackup, type BackupOptions, type BackupProgress, type BackupReport } from "./backup/backup.js";
export { restoreBackup, recordRestore, type RestoreOptions, type RestoreProgress, type RestoreReport, type RestoredCrlNumbering, type RestoreAuditEvent } from "./backup/restore.js";
export { verifyBackup, readManifest, authenticateBackup, BACKUP_FORMAT, type AuthenticateBackupOptions, type BackupManifest, type ManifestFile, type ManifestCrlNumber } from "./backup/manifest.js";
export { type ManifestAuthentication } from "./backup/authentication.js";
export { crlNumberGap, MIN_CRL_GAP, MAX_CRL_NUMBERS_PER_SECOND } from "./backup/crl-numbers.js";
export { VERSION } from "./version.js";
export { checkInputFile, checkInputDir, checkOutputFile, checkOutputDir, checkWorkspaceDir, type PathCheckOptions, type OutputDirOptions } from "./workspace/paths.js";
export { parseConfig, DEFAULT_CONFIG, STORE_KINDS, SERVER_ROUTES, type WorkspaceConfig, type StoreKind, type ServerRoute, type VerifierRateLimit } from "./workspace/config.js";

// registered signature verifiers (署名検証者): who may fetch revocation information
export type { VerifierRecord, VerifierKind, VerifierCaRecord, VerifierFetch, DisclosureRecord, ConsentRecord, StatusCheckRecord, StoredStatusCheck, LivenessStatus } from "./store/types.js";
export { registerVerifier, revokeVerifier, ensureVerifierCa, parseVerifierKind, VERIFIER_KINDS, type RegisterVerifierOptions, type RegisteredVerifier } from "./verifier/registration.js";
export { LEGAL_BASES, LEGAL_BASIS_CODES, isLegalBasisCode, parseLegalBasis, legalBasisAllows, type LegalBasis, type LegalBasisCode } from "./verifier/legal-basis.js";
export { PRIVATE_STATUS_OF, privateView, governmentView, type PrivateStatus, type PrivateView, type GovernmentView } from "./verifier/views.js";
export { caOverview, CrlRevocationDays, JST_OFFSET_MINUTES, MAX_OVERVIEW_DAYS, type CaOverview, type OverviewCa, type OverviewCrl, type OverviewCrlKind } from "./verifier/overview.js";
export { VerifierValidationService, SignedDataRefused, DOCUMENT_STATUSES, type ValidationQuery, type ValidationAnswer, type ValidationServiceOptions, type SignatureQuery, type SignatureAnswer } from "./verifier/validation-service.js";
export { DisclosureLog } from "./verifier/disclosure-log.js";
export { disclosuresOf, type DisclosureEntry, type DisclosureListing } from "./verifier/disclosure.js";
// liveness checks (現況確認) and old/new certificate links (新旧証明書の紐付け): POST /v1/status, jpki verify --status-of
export {
  checkStatus,
  statusHistory,
  certificateId,
  parseStatusItem,
  successor,
  MAX_STATUS_ITEMS,
  STATUS_ITEM_ERRORS,
  type StatusItemRef,
  type StatusRequest,
  type StatusAnswer,
  type StatusItemAnswer,
  type StatusItemErrorCode,
  type ReplacedBy,
  type StatusHistoryEntry,
  type StatusHistoryPage,
} from "./verifier/liveness.js";
export { parseStatusList, fetchStatus, type StatusClientOptions } from "./verifier/status-client.js";
export { grantConsent, withdrawConsent, listConsents, type ConsentParams } from "./registry/consent.js";
export { validationApiDocument } from "./server/openapi.js";
export { VALIDATE_ERRORS, parseValidateBody, type ValidateErrorCode } from "./server/validate-route.js";
export { SIGNATURE_ERRORS, parseSignatureBody, type SignatureErrorCode } from "./server/verify-signature-route.js";
export { newToken, tokenSha256, bearerToken, certificateSha256, TOKEN_PREFIX } from "./verifier/credentials.js";
export { createVerifierCa, issueClientCertificate, DEFAULT_CLIENT_CERT_DAYS, type ClientCertificate } from "./verifier/authority.js";

// OCSP (RFC 6960, RFC 5019): requests, responses, the responder, delegated signing certificates
export { parseOcspRequest, CERT_ID_HASHES, MAX_REQUESTS as OCSP_MAX_REQUESTS, type OcspRequest, type CertId, type CertIdHash } from "./ocsp/request.js";
export { signedResponse as signOcspResponse, errorResponse as ocspErrorResponse, RESPONSE_STATUS as OCSP_RESPONSE_STATUS, type CertStatus, type SingleAnswer } from "./ocsp/response.js";
export { OcspResponder, type OcspResponderOptions, type OcspAnswer } from "./ocsp/responder.js";
export { checkOwnResponderPassphrase, checkResponderKeysOpen, checkResponderPassphrase, issueOcspSigner, renewOcspSigners, OcspSignerRenewal, type OcspSignerPolicy } from "./ca/ocsp-signer.js";

// jpki serve: the publication point verifiers poll
export { buildServer, pathPrefix, type ServerOptions, type ServerMetrics } from "./server/app.js";
export { AccessLog, accessLine, lineSink, loggedUrl, type AccessLogSink } from "./server/access-log.js";
export { VerifierAccess, SCOPE_ACCESS, ALWAYS_OPEN, scopeOf, type AccessOptions, type RouteScope } from "./server/access.js";
export { PAGE_CSP, PAGE_FILES, type PageFile } from "./server/page.js";
export { serveHttp, runCrlSchedule, openCrlSchedule, type HttpOptions, type ScheduleOptions } from "./server/serve.js";
export { openCrlScheduleThread, scheduleThreadAvailable, type ScheduleThreadOptions } from "./server/schedule-thread.js";
export { decide as decideConditionalRequest, parseRange, type Decision, type Representation } from "./server/http-cache.js";
export { resolvePublished, crlNextUpdate, PublishedFiles, type PublishedFile, type PublishedKind } from "./server/published.js";

// the CLI, for embedding and in-process tests. The CLI reaches the library only through src/cli/lib.ts, which loads
// this file lazily (so --help and --version start fast) and is typed against it (STYLE.md §15).
export { run as runCli, makeProgram } from "./cli/program.js";

// path validation (RFC 5280 §6)
export { validatePath, validatePathAsync, buildPath, buildPaths, pathCandidates, type ValidatePathParams, type ValidatePathAsyncParams, type RevocationFetches } from "./validation/validate.js";
// revocation sources: CRLs parsed once into a compact index, fetched and cached over HTTP
export { JpkiVerifier, type JpkiVerifierConfig } from "./validation/jpki-verifier.js";
export { CrlIndexCache, type CrlIndexCacheParams } from "./validation/crl-index-cache.js";
export { CrlCache, type CrlCacheParams, type CrlCacheStats, type CrlFetchOutcome, type CrlFetchStatus } from "./validation/revocation-sources.js";
export { httpOrigin, originOf } from "./validation/token-origins.js";
// OCSP as a revocation source (RFC 6960 client: request, transport, the §3.2 checks)
export {
  OcspClient,
  buildOcspRequest,
  checkOcspResponse,
  ocspUrlsOf,
  OCSP_PROBLEMS,
  OCSP_CERT_ID_HASHES,
  type OcspClientParams,
  type OcspOutcome,
  type OcspProblem,
  type OcspCertId,
  type OcspCertIdHash,
  type OcspQuery,
  type CheckOcspResponseParams,
} from "./validation/ocsp-source.js";
// signed documents (RFC 5652 CMS SignedData)
export { verifySignedData, CMS_OID, type VerifySignedDataParams, type SignedDataResult, type SignedDataStatus, type SignaturePurpose, type SignerCertificate } from "./validation/cms.js";
export {
  FAILURE_REASONS,
  type FailureReason,
  type PathStatus,
  type PathValidationResult,
  type PolicyOptions,
  type Revocation,
  type RevocationMode,
  type RevocationProblem,
  type RevocationCheck,
  type RevocationSourceName,
  REVOCATION_SOURCES,
} from "./validation/types.js";
// JPKI purposes over path validation (署名用 / 利用者証明用)
export {
  validateJpki,
  validateJpkiAsync,
  describeJpkiAnchor,
  jpkiAuthorityOf,
  JPKI_FAILURE_REASONS,
  JPKI_PURPOSES,
  type JpkiPurpose,
  type JpkiFailureReason,
  type JpkiAuthority,
  type JpkiAnchorInfo,
  type JpkiOperator,
  type JpkiValidationResult,
  type ValidateJpkiParams,
  type ValidateJpkiAsyncParams,
  type ChainCertificate,
} from "./validation/jpki.js";
// A private certification provider (民間認証事業者) linked to JPKI: its own CA, enrolment on a public signature
// certificate, and the follower of the public CRLs (issue 11 point 2).
export {
  initProvider,
  providerPaths,
  readProviderConfig,
  readProviderState,
  readTrustedCas,
  readTrustAnchors,
  type SkippedTrustFile,
  type PublicCaCompromise,
  trustPublicCas,
  untrustPublicCa,
  providerCertificate,
  listProviderLinks,
  showProviderLink,
  revokeProviderCertificate,
  publishProviderCrl,
  openProviderCa,
  withProviderLock,
  type InitProviderOptions,
  type ProviderInitResult,
  type ProviderConfig,
  type ProviderState,
  type ProviderLink,
  type ProviderLinkView,
  type ProviderPaths,
  type ProviderCrl,
  type PublicCrlSeen,
  type TrustedCa,
} from "./provider/workspace.js";
export { enrolCustomer, type EnrolOptions, type EnrolResult } from "./provider/enrol.js";
export { followPublicCrls, watchPublicCrls, refreshPublicCrl, verifyPublicCrl, type FollowOptions, type FollowResult, type FollowedCrl, type FollowRevocation, type CompromiseCheck, type GenerationIndexOutcome, type WatchOptions as ProviderWatchOptions, type PublicEndpointOptions, type PublicCrlFetch } from "./provider/follow.js";
export { privateReasonFor } from "./provider/reasons.js";
export { signApplication, type SignApplicationParams } from "./provider/application.js";
export { serveVpcd, answerVpcdFrame, encodeVpcdFrame, VpcdFrameReader, VPCD_CONTROL, VPCD_DEFAULT_HOST, VPCD_DEFAULT_PORT, type VpcdBridgeOptions, type VpcdEvent } from "./card/vpcd.js";
// The emulated IC card (住基カード) with the JPKI card application and a municipal library application, its
// APDU codec, and the host-side client and card-backed Signer (issue 12 points 2–5, 7–9).
export type { CardTerminal } from "./card/terminal.js";
export { EmulatedCard, JPKI_ATR, CARD_APPLICATIONS, newAdminKey, unblockPin, type CreateCardParams, type CardInfo } from "./card/card.js";
// Storage handles only: the card's state (its private keys) is reached by src/card alone, never through this API.
export { fileCardStorage, memoryCardStorage, defaultChipKeyFile, ensureChipKey, type CardStorage } from "./card/card-state.js";
export { JpkiCardClient, openCardSigner, type JpkiPin, type CardSignerParams } from "./card/client.js";
export { CommandApdu, parseCommandApdu, encodeResponse, parseResponse, type CommandApduParams, type ParsedCommand, type ResponseApdu } from "./card/apdu.js";
export { SW, triesLeftSw, triesLeftOf, isCardStatusWord, describeSw, type StatusWord, type StatusWordName } from "./card/status-words.js";
export { PIN_POLICIES, PIN_IDS, checkPinFormat, type PinId, type PinPolicy } from "./card/pin.js";
export { JPKI_AID, JPKI_EF, JPKI_TOKEN_LABEL, CERTIFICATE_SLOTS, digestInfo, digestInfoHash, type CertificateSlot } from "./card/jpki-app.js";
export { LIBRARY_AID, LIBRARY_EF } from "./card/library-app.js";
export type { KeyId as CardKeyId, AccessCondition, Df, Ef } from "./card/file-system.js";
export { issueCard, checkCardIssuable, renewCardCertificate, type IssueCardParams, type RenewCardParams, type CardIssuance, type CounterCardContext } from "./counter/card-issuance.js";
