/**
 * Issuance (発行): an application from a municipal counter (市町村窓口) — a resident code and the card's
 * public key, or a PKCS#10 request made by the card — becomes a certificate in the JPKI profile.
 * The four items always come from the registry record, never from the request; the issuance record
 * (what was certified) is committed atomically with the certificate.
 */
import { reasonName } from "../crl/reason.js";
import { JpkiError, isJpkiError, type ErrorCode } from "../errors.js";
import { clockMs, type Clock } from "../pki/clock.js";
import { certificateParts } from "../pki/der.js";
import { requireRsa2048 } from "../pki/keys.js";
import { serialHex } from "../pki/serial.js";
import { checkCertificate } from "../profile/check.js";
import type { CertificateType } from "../profile/types.js";
import { municipality } from "../registry/municipality.js";
import { untilStopped } from "../registry/reading-stop.js";
import { IDENTIFIER } from "../registry/resident.js";
import { assertResidentCode } from "../registry/resident-code.js";
import { codeChangeWalk } from "../store/rows.js";
import type { CertificateRow, IssuanceCommitResult, IssuanceRecord, ResidentForIssuance, ResidentRecord, Store } from "../store/types.js";
import type { WorkspaceConfig } from "../workspace/config.js";
import { CertificationAuthority, caId } from "./authority.js";
import { compromisedCaIds } from "./compromised.js";
import { activeGeneration } from "./ids.js";
import { readSpki, verifyCsr } from "./csr.js";
import { GroupCommitter } from "./group-commit.js";
import { prefecture } from "./prefectures.js";
import { notAfterFor } from "./validity.js";

/** 交付申請: one application as a municipal counter submits it. */
export interface IssuanceApplication {
  readonly residentCode: string;
  readonly type: CertificateType;
  /** the card's public key, SubjectPublicKeyInfo as PEM or DER */
  readonly publicKey?: Uint8Array;
  /** or a PKCS#10 request generated on the card, PEM or DER */
  readonly csr?: Uint8Array;
  /** 9-character id of the counter that checked the resident (goes into the opaque subject CN) */
  readonly counterId?: string;
  /** optional prefecture code; when given it must be the resident's */
  readonly prefecture?: string;
  /**
   * The counter's own id for this application. Issuing an application id again returns the certificate
   * already issued for it instead of a new one, so a batch re-run after a crash issues nothing twice.
   */
  readonly applicationId?: string;
}

export interface IssuedCertificate {
  readonly serial: string;
  readonly caId: string;
  readonly type: CertificateType;
  readonly residentCode: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly der: Buffer;
  /** serials of earlier certificates of the same type revoked as superseded by this one */
  readonly superseded: readonly string[];
  /** true when the application id had been issued before and this is that certificate */
  readonly alreadyIssued: boolean;
}

export interface BatchLineError {
  readonly line: number;
  readonly code: ErrorCode;
  readonly message: string;
}

export interface BatchProgress {
  readonly read: number;
  readonly issued: number;
  readonly failed: number;
}

export interface BatchSummary extends BatchProgress {
  /** applications whose id had been issued before (a re-run): their certificates are returned, not re-issued */
  readonly alreadyIssued: number;
  readonly errors: readonly BatchLineError[];
  readonly superseded: number;
  readonly byCa: Readonly<Record<string, number>>;
  /**
   * Set when the batch's `signal` stopped it before the end of its input: the lines up to `lastLine` were read
   * and each is counted above (issued, already issued or failed), the ones after it were not read.
   */
  readonly stopped?: { readonly lastLine: number };
}

export type BatchInput = AsyncIterable<{ line: number; value: Record<string, unknown> } | { line: number; error: JpkiError }>;

const FIELDS = new Set(["residentCode", "type", "publicKey", "csr", "counterId", "prefecture", "applicationId"]);

/** 窓口 id: the subject CN's last 9 characters (profile/names.ts opaqueId pads it with 0s). */
const COUNTER_ID = /^[0-9A-Za-z]{1,9}$/;

/** Decodes a PEM string or base64 DER from a JSON field. */
function keyMaterial(v: unknown, field: string, line?: number): Uint8Array {
  if (typeof v !== "string" || v.length === 0) throw invalid(`${field} must be a PEM string or base64 DER`, line);
  if (v.includes("-----BEGIN")) return Buffer.from(v, "utf8");
  if (!/^[A-Za-z0-9+/=\s]+$/.test(v)) throw invalid(`${field} is neither PEM nor base64`, line);
  return Buffer.from(v, "base64");
}

function invalid(msg: string, line?: number): JpkiError {
  return new JpkiError("ERR_APPLICATION_INVALID", line ? `line ${line}: ${msg}` : msg);
}

/** Validates one application as read from JSON (a batch line or an API call). */
export function parseApplication(obj: Record<string, unknown>, line?: number): IssuanceApplication {
  const keys = Object.keys(obj);
  const unknown = keys.find((k) => !FIELDS.has(k));
  if (unknown !== undefined) {
    // A CSV without its header row makes its first application's values the field names: a resident code is
    // personal data, so a name is quoted back only when it is shaped like one and the record has names we know.
    if (!keys.some((k) => FIELDS.has(k))) throw invalid(`none of the application's field names is one we know (is the CSV header row missing?): accepted fields are ${[...FIELDS].join(", ")}`, line);
    throw invalid(`unknown field ${IDENTIFIER.test(unknown) ? JSON.stringify(unknown) : "(a name that is not an identifier)"}`, line);
  }
  if (obj.residentCode === undefined) throw invalid("residentCode is missing", line);
  // A number is not taken for a string: 01234567890 as a JSON number loses its leading zero.
  if (typeof obj.residentCode !== "string") throw invalid("residentCode must be a string", line);
  const type = obj.type === undefined ? "signature" : obj.type;
  if (type !== "signature" && type !== "authentication") throw invalid('type must be "signature" or "authentication"', line);
  if ((obj.publicKey === undefined) === (obj.csr === undefined)) throw invalid("give exactly one of publicKey and csr", line);
  if (obj.counterId !== undefined && (typeof obj.counterId !== "string" || !COUNTER_ID.test(obj.counterId))) {
    throw invalid("counterId must be 1–9 letters or digits", line);
  }
  if (obj.prefecture !== undefined && typeof obj.prefecture !== "string") throw invalid('prefecture must be a string, e.g. "13"', line);
  if (obj.applicationId !== undefined && (typeof obj.applicationId !== "string" || !/^[A-Za-z0-9._:-]{1,64}$/.test(obj.applicationId))) {
    throw invalid("applicationId must be 1–64 letters, digits or . _ : -", line);
  }
  return {
    residentCode: obj.residentCode,
    type,
    ...(obj.applicationId !== undefined ? { applicationId: obj.applicationId as string } : {}),
    ...(obj.publicKey !== undefined ? { publicKey: keyMaterial(obj.publicKey, "publicKey", line) } : {}),
    ...(obj.csr !== undefined ? { csr: keyMaterial(obj.csr, "csr", line) } : {}),
    ...(obj.counterId !== undefined ? { counterId: obj.counterId as string } : {}),
    ...(obj.prefecture !== undefined ? { prefecture: obj.prefecture as string } : {}),
  };
}

export interface IssuanceServiceOptions {
  readonly store: Store;
  readonly config: WorkspaceConfig;
  readonly clock: Clock;
  readonly passphrase: string;
  /**
   * How what we sign is checked (STYLE.md §9). "full": the whole JPKI profile check on every certificate.
   * "template" (default): the full check on the first certificate of each CA and type in this process —
   * everything but the per-resident values comes from that CA's fixed template — and for every certificate
   * a structural re-parse plus a signature verification with the CA key.
   */
  readonly checkProfile?: "full" | "template";
}

/** How often a long-lived service looks for a generation it opened having been rolled over as compromised. */
const COMPROMISE_CHECK_MS = 60_000;

export class IssuanceService {
  readonly #opts: IssuanceServiceOptions;
  #compromiseCheckedAt = -Infinity;
  readonly #cas = new Map<string, Promise<CertificationAuthority>>();
  /** The CAs opened so far, for prepare() to take without waiting on a settled promise per certificate. */
  readonly #opened = new Map<string, CertificationAuthority>();
  readonly #checkedTemplates = new Set<string>();
  readonly #committer: GroupCommitter;
  readonly #nowMs: () => number;

  constructor(opts: IssuanceServiceOptions) {
    this.#opts = opts;
    this.#nowMs = clockMs(opts.clock);
    this.#committer = new GroupCommitter((records) => opts.store.commitIssuances(records), { durable: () => opts.store.syncCommitted() });
  }

  /**
   * Opens (once) the CA that issues `type` certificates for a prefecture: its active key generation (the
   * highest; ca/rollover.ts), found when first asked. A process that was issuing before a rollover goes on with
   * the generation it opened until it restarts: the old key stays valid, and its certificates stay revocable —
   * unless that generation is rolled over as compromised ({@link #leaveCompromised}).
   */
  authority(prefectureCode: string, type: CertificateType): Promise<CertificationAuthority> {
    const id = caId(prefectureCode, type);
    let ca = this.#cas.get(id);
    if (!ca) {
      ca = (async () => {
        const rec = activeGeneration(await this.#opts.store.listCas(), prefecture(prefectureCode).code, type);
        if (!rec) {
          throw new JpkiError("ERR_CA_UNKNOWN", `CA ${id} (${prefecture(prefectureCode).kanji}) is not initialised: run 'jpki ca init --prefecture ${prefectureCode}'`);
        }
        const opened = await CertificationAuthority.open(rec, this.#opts.passphrase, this.#opts.config);
        this.#opened.set(id, opened);
        return opened;
      })();
      ca.catch(() => this.#cas.delete(id));
      this.#cas.set(id, ca);
    }
    return ca;
  }

  /**
   * Once a minute at most: a generation this service opened that has since been rolled over as compromised
   * (`ca rollover --compromised`; ca/compromised.ts) is let go, so the next certificate comes from the active
   * generation. A batch or counter started before the rollover signed with the stolen key until it restarted
   * (found by a helper), and `revoke --ca <old> --all` run meanwhile missed what it signed after.
   */
  async #leaveCompromised(): Promise<void> {
    this.#compromiseCheckedAt = this.#nowMs();
    if (this.#opened.size === 0) return;
    const compromised = await compromisedCaIds(this.#opts.store);
    for (const [key, ca] of this.#opened) {
      if (!compromised.has(ca.id)) continue;
      this.#opened.delete(key);
      this.#cas.delete(key);
    }
  }

  /**
   * What issuance checks of the resident before it signs: a valid code and counter id, a record, active, and the
   * registry not behind the CA side. Nothing is signed or stored; issue() checks again (and again as it commits).
   * For a caller that must not start what only a certificate finishes: the counter's card issuance
   * (counter/card-issuance.ts) makes a card file and its keys first, which for a dead or unknown resident was a
   * card no rerun could ever finish.
   */
  async checkResident(app: Pick<IssuanceApplication, "residentCode" | "counterId">): Promise<ResidentForIssuance> {
    assertApplicant(app);
    return issuableResident(app, await this.#opts.store.getResidentForIssuance(app.residentCode));
  }

  /**
   * checkResident, and the CA that would sign opened (its key unwrapped: a wrong passphrase fails here). For a
   * caller that must not undo anything before issuing: a card renewal replaces the card's key, and with it the
   * certificate, before it asks for the new one.
   */
  async checkIssuable(app: Pick<IssuanceApplication, "residentCode" | "counterId" | "type">): Promise<void> {
    const found = await this.checkResident(app);
    await this.authority(found.record.municipalityCode.slice(0, 2), app.type);
  }

  /** Checks the application against the registry, then builds and signs; nothing is stored. */
  async prepare(app: IssuanceApplication): Promise<IssuanceRecord> {
    const { clock, config } = this.#opts;
    // (no await on the way when not due, and the clock's ms rather than a Date: this runs for every certificate)
    if (this.#nowMs() - this.#compromiseCheckedAt >= COMPROMISE_CHECK_MS) await this.#leaveCompromised();
    // checkResident's checks in line, not a call of it: an async function's frame and promise less per certificate
    // (≈ 0.9 KB of the young generation's 17, heap sampling).
    assertApplicant(app);
    const found = issuableResident(app, await this.#opts.store.getResidentForIssuance(app.residentCode));
    const resident = found.record;
    const residentPref = resident.municipalityCode.slice(0, 2);
    if (app.prefecture !== undefined && prefecture(app.prefecture).code !== residentPref) {
      throw new JpkiError(
        "ERR_USAGE",
        `resident ${app.residentCode} is registered in prefecture ${residentPref}, so CA ${residentPref} issues the certificate, not ${prefecture(app.prefecture).code}`,
      );
    }
    const spkiDer = app.csr ? verifyCsr(app.csr) : app.publicKey ? readSpki(app.publicKey) : undefined;
    if (!spkiDer) throw invalid("the application carries neither a public key nor a request");
    const { spki } = requireRsa2048(spkiDer, "the card's public key");
    const ca = this.#opened.get(caId(residentPref, app.type)) ?? (await this.authority(residentPref, app.type));
    const issuedAt = clock.now();
    // A clock stepped back before the CA was made, or ahead past its end, would sign a certificate that starts
    // before its CA (already expired, with the birthday rule) or ends before it starts: never committed.
    if (issuedAt.getTime() < ca.notBefore.getTime() || issuedAt.getTime() >= ca.notAfter.getTime()) {
      throw new JpkiError(
        "ERR_CLOCK_OUTSIDE_CA_VALIDITY",
        `the clock says ${issuedAt.toISOString()}, outside the validity of CA ${ca.id} (${ca.notBefore.toISOString()} to ${ca.notAfter.toISOString()}): nothing was issued; check the system clock (or roll the CA over if it has expired)`,
      );
    }
    const muni = municipality(resident.municipalityCode);
    const notAfter = notAfterFor({ rule: config.validityRule, issuedAt, birthDate: resident.fourItems.birthDate, caNotAfter: ca.notAfter });
    const certified = await ca.certify({
      type: app.type,
      municipalityCode: resident.municipalityCode,
      municipalityRomaji: muni.romaji,
      fourItems: resident.fourItems,
      spki,
      requestedAt: issuedAt,
      counterId: app.counterId ?? `${resident.municipalityCode}000`,
      notAfter,
    });
    const templateKey = `${ca.id}/${app.type}`;
    if (this.#opts.checkProfile === "full" || !this.#checkedTemplates.has(templateKey)) {
      const report = checkCertificate(certified.der, { expect: app.type });
      const errors = report.violations.filter((v) => v.severity === "error");
      if (errors.length) {
        throw new JpkiError("ERR_PROFILE_VIOLATION", `the certificate built for CA ${ca.id} breaks the JPKI profile (${errors.map((v) => v.rule).join(", ")}): nothing was stored; please report this`);
      }
      this.#checkedTemplates.add(templateKey);
    }
    // A self-verifying signer's certificate needs only the field comparisons, made here without a promise.
    if (ca.signer.selfVerifying) ca.assertCarries(certified, spki);
    else await ca.assertIssued(certified, spki);
    return {
      serial: serialHex(certified.serial),
      caId: ca.id,
      type: app.type,
      residentCode: resident.residentCode,
      municipalityCode: resident.municipalityCode,
      fourItems: resident.fourItems,
      notBefore: certified.notBefore,
      notAfter: certified.notAfter,
      issuedAt,
      der: certified.der,
      registrySequence: found.registrySequence,
      ...(app.applicationId ? { applicationId: app.applicationId } : {}),
    };
  }

  /** The certificate already issued for this application id, checked to be for the same resident and type. */
  async #alreadyIssued(app: IssuanceApplication): Promise<IssuedCertificate | undefined> {
    if (!app.applicationId) return undefined;
    const row = await this.#opts.store.getCertificateByApplication(app.applicationId);
    if (!row) return undefined;
    // The same person under a code since changed (住民票コード変更): a day's batch run again after the change still
    // names the old code, and its certificate was re-linked to the new one. Anyone else is another resident.
    const same = row.residentCode === app.residentCode || (await this.#codeChangedTo(app.residentCode, row.residentCode));
    assertSameApplication(same ? { ...app, residentCode: row.residentCode } : app, row);
    assertNotRevoked(app, row);
    return { ...toIssued(row, []), alreadyIssued: true };
  }

  /** Whether the registry closed `from` for a resident-code change that leads to `to` (store/rows.ts codeChangedTo, read through the store). */
  async #codeChangedTo(from: string, to: string): Promise<boolean> {
    const walk = codeChangeWalk(from, to);
    for (let step = walk.next(); ; step = walk.next((await this.#opts.store.getResident(step.value))?.successorCode)) if (step.done) return step.value;
  }

  /**
   * Issues one certificate and commits it with its issuance record (and any supersession). Concurrent calls
   * share transactions (group-commit.ts); each returns once its own certificate is committed.
   */
  async issue(app: IssuanceApplication): Promise<IssuedCertificate> {
    const done = await this.#alreadyIssued(app);
    if (done) return done;
    for (let attempt = 1; ; attempt++) {
      const rec = await this.prepare(app);
      const out = this.#outcome(app, rec, await this.#committer.submit(rec), attempt);
      if (out) return out;
    }
  }

  /**
   * What one commit result means: the certificate, the one already issued for the application id, or
   * undefined when the record changed while it was signed and it must be signed again (a few times at most).
   */
  #outcome(app: IssuanceApplication, rec: IssuanceRecord, r: IssuanceCommitResult, attempt: number): IssuedCertificate | undefined {
    if (r.status === "committed") return toIssued(rec, r.superseded);
    if (r.status === "duplicate-application") {
      assertSameApplication(app, r.existing);
      assertNotRevoked(app, r.existing);
      return { ...toIssued(r.existing, []), alreadyIssued: true };
    }
    if (r.status === "key-in-use") throw keyInUse(app, r.serial, r.why);
    if (r.why === "registry-behind") throw registryBehind(app.residentCode);
    if (attempt >= MAX_ATTEMPTS) {
      throw new JpkiError("ERR_REGISTRY_BEHIND", `resident ${app.residentCode}: the registry record changed each time the certificate was signed (${attempt} tries); nothing was issued: try again when the registry is quiet`);
    }
    return undefined; // signed from items that changed meanwhile: never committed, sign again
  }

  /**
   * Issues a batch (JSON Lines of applications). Several signatures are in flight at once so every core
   * signs; signed certificates are group-committed in input order (group-commit.ts), `commitEvery` per
   * transaction, while the next ones are being signed. A bad line is reported with its number and the rest
   * still issue.
   */
  async issueBatch(
    input: BatchInput,
    opts: {
      concurrency?: number;
      commitEvery?: number;
      onProgress?: (p: BatchProgress) => void;
      /**
       * Each certificate committed (or found issued before). A promise it returns holds the certificate's place in
       * the commit window until it settles (so a slow consumer — `--out-dir` on a slow disk — holds the batch back
       * rather than piling certificates up), and its rejection is the line's error.
       */
      onIssued?: (c: IssuedCertificate) => unknown;
      /**
       * A stop (`issue --batch` on SIGTERM or SIGINT): no line is read after it, the applications already read are
       * signed and committed and each reaches onIssued, and the summary says where the batch stopped (`stopped`).
       */
      signal?: AbortSignal;
      /**
       * What lets go of the input when the stop comes while it waits for its next line (a pipe: releaseStream), so
       * the stop need not wait for a line or the end that may never come. Without it, the stop is acted on between
       * two lines: right for a file, which never waits long.
       */
      release?: () => void;
    } = {},
  ): Promise<BatchSummary> {
    // 512 in flight, not 64: while a group of 500 commits on this thread (≈ 20 ms on 2 cores), 64 queued
    // signatures ran out after ≈ 8 ms and the signing threads stood idle (machine idle 6–8 % in the issue bench,
    // 1 % at 512); each waiting certificate is a few kilobytes.
    const concurrency = opts.concurrency ?? DEFAULT_CONCURRENCY;
    const refill = Math.max(1, Math.floor(concurrency / 4));
    const commitEvery = opts.commitEvery ?? 500;
    const committer = new GroupCommitter((records) => this.#opts.store.commitIssuances(records), {
      maxGroup: commitEvery,
      fullGroups: true,
      durable: () => this.#opts.store.syncCommitted(),
    });
    const errors: BatchLineError[] = [];
    const byCa: Record<string, number> = {};
    let read = 0;
    let issued = 0;
    let superseded = 0;
    let alreadyIssued = 0;
    // The signing window, a queue taken from `head`: Array.prototype.shift moved the whole window down each time
    // (≈ 6 K instructions a certificate with 512 in flight, callgrind: V8 cannot trim an array's front in place while
    // the collector marks or sweeps). Taken slots are cleared, and compacted away once a window's worth is taken.
    const window: Array<WindowSlot | undefined> = [];
    let head = 0;
    const idsInBatch = new Map<string, number>();
    // Keyed by the resident code the line already holds, one map per type: a "code/type" key was a new string per
    // line, kept (and copied by the young generation's collections) for the whole batch.
    const unnamedInBatch = { signature: new Map<string, number>(), authentication: new Map<string, number>() };
    // Signed certificates waiting for their commit. Bounded, so a store slower than the signers holds back
    // the signing instead of piling up certificates in memory.
    const committing = new Set<Promise<void>>();
    const maxCommitting = 2 * commitEvery;
    let wake: (() => void) | undefined;
    let settled = 0;

    // The store gone (a database server down, its host unreachable): every line after would be signed and then
    // fail alike. The batch stops reading at the first such failure, lets what is in flight settle, and ends with
    // that error; a re-run issues what is left (with applicationId per line, nothing twice).
    let storeLost: { line: number; error: JpkiError } | undefined;
    const fail = (line: number, e: unknown) => {
      const err = isJpkiError(e) ? e : new JpkiError("ERR_INTERNAL", (e as Error)?.message ?? String(e), { cause: e });
      if (err.code === "ERR_STORE_UNREACHABLE" && (!storeLost || line < storeLost.line)) storeLost = { line, error: err };
      errors.push({ line, code: err.code, message: err.message.startsWith(`line ${line}`) ? err.message : `line ${line}: ${err.message}` });
    };
    const progress = () => opts.onProgress?.({ read, issued, failed: errors.length });
    const counted = (out: IssuedCertificate) => {
      if (out.alreadyIssued) alreadyIssued++;
      else {
        issued++;
        superseded += out.superseded.length;
        byCa[out.caId] = (byCa[out.caId] ?? 0) + 1;
      }
      const r = opts.onIssued?.(out);
      return r instanceof Promise ? (r as Promise<void>) : undefined;
    };
    // Submitted synchronously, in the order drainOne hands them over: the group commits keep input order.
    // A chain of then() rather than an async function with catch() and finally(): three promises and their
    // closures less per certificate, at thousands a second (the young generation's collections were ≈ a sixth
    // of this thread, issue bench).
    const commit = (line: number, app: IssuanceApplication, first: IssuanceRecord) => {
      const attempt = (rec: IssuanceRecord, n: number): Promise<void> =>
        committer.submit(rec).then((r) => {
          const out = this.#outcome(app, rec, r, n);
          if (out) return counted(out);
          // The registry record changed after this one was signed: sign it again from the current record.
          return this.prepare(app).then((again) => attempt(again, n + 1));
        });
      const done = () => {
        committing.delete(p);
        if (++settled % commitEvery === 0) progress();
        if (wake && committing.size < maxCommitting) {
          wake();
          wake = undefined;
        }
      };
      const p: Promise<void> = attempt(first, 1).then(done, (e: unknown) => {
        fail(line, e);
        done();
      });
      committing.add(p);
    };
    const drainOne = async () => {
      const next = window[head]!;
      window[head++] = undefined;
      if (head >= concurrency) {
        window.splice(0, head);
        head = 0;
      }
      let r: IssuanceRecord | IssuedCertificate;
      try {
        r = await next.p;
      } catch (e) {
        fail(next.line, e);
        return;
      }
      if ("alreadyIssued" in r) {
        try {
          await counted(r);
        } catch (e) {
          fail(next.line, e);
        }
        return;
      }
      while (committing.size >= maxCommitting) await new Promise<void>((res) => (wake = res));
      commit(next.line, next.app, r);
    };

    let lastLine = 0;
    // The stop is checked before a line is taken, not after: the line in hand when the stop came is not read, and
    // lastLine says so. With `release`, a wait for the next line ends at the stop too (a stdin with nothing to read
    // held the stop until it had: untilStopped).
    const lines = untilStopped(input, opts.signal, opts.release);
    const paused = new InputPause();
    const source = lines[Symbol.asyncIterator]();
    try {
      for (;;) {
        const pending = source.next();
        let r = await paused.race(pending);
        // The input has paused with work in hand (a feeder sending one application at a time): what is signed goes on
        // to its commit and its caller now, not once 512 more lines have come. Only what is signed already: waiting
        // here for a signature would empty the window of a file-fed batch whose read queued behind the signatures
        // (hundreds of ms on libuv's pool). And a group short of full only once the window is empty: such a batch,
        // its window still signing, keeps its groups of 500.
        while (r === PAUSED) {
          while (window.length - head && window[head]!.signed) await drainOne();
          if (window.length - head === 0) committer.commitWaiting();
          r = await paused.race(pending);
        }
        if (r.done) break;
        const item = r.value;
        if (storeLost) {
          await source.return?.(undefined); // as a for-await's break: the input is closed
          break;
        }
        read++;
        lastLine = item.line;
        if ("error" in item) {
          fail(item.line, item.error);
          continue;
        }
        let app: IssuanceApplication;
        try {
          app = parseApplication(item.value, item.line);
        } catch (e) {
          fail(item.line, e);
          continue;
        }
        if (app.applicationId) {
          const first = idsInBatch.get(app.applicationId);
          if (first !== undefined) {
            fail(item.line, invalid(`applicationId ${app.applicationId} repeats line ${first}`, item.line));
            continue;
          }
          idsInBatch.set(app.applicationId, item.line);
        } else {
          // The same resident and type twice without application ids is a file given twice (two days' files
          // concatenated, a re-run appended): the later line would supersede — revoke — the certificate the earlier
          // one just issued. Two applications of one day (a card lost after the morning's) carry their ids.
          const lines = unnamedInBatch[app.type];
          const first = lines.get(app.residentCode);
          if (first !== undefined) {
            fail(item.line, invalid(`resident ${app.residentCode}'s ${app.type} certificate repeats line ${first}: nothing issued for this line (a batch issues one per resident and type; to issue both, the later superseding the earlier, give each line its own applicationId)`, item.line));
            continue;
          }
          lines.set(app.residentCode, item.line);
        }
        // Without an application id there is nothing issued before to look up (two promises less per certificate).
        const p: Promise<IssuanceRecord | IssuedCertificate> = app.applicationId
          ? this.#alreadyIssued(app).then<IssuanceRecord | IssuedCertificate>((done) => done ?? this.prepare(app))
          : this.prepare(app);
        const slot: WindowSlot = { line: item.line, app, p, signed: false };
        p.then(
          () => (slot.signed = true),
          () => (slot.signed = true), // the rejection is handled in order by drainOne
        );
        window.push(slot);
        // Refilled in chunks, not one by one as each signature finishes: the chunk's registry reads then reach
        // the store together (one query on PostgreSQL), while the rest of the window keeps the signers busy.
        if (window.length - head >= concurrency) while (window.length - head > concurrency - refill) await drainOne();
      }
    } finally {
      paused.stop();
    }
    while (window.length - head) await drainOne();
    committer.flush();
    await Promise.all([...committing]);
    progress();
    errors.sort((a, b) => a.line - b.line);
    if (storeLost) {
      const { line, error } = storeLost;
      throw new JpkiError(
        error.code,
        `the store could not be reached at line ${line} (${error.message}): the batch stopped after reading ${read} lines, ${issued} certificates issued (each reported), ${errors.length} lines failed; run it again once the store answers — lines with an applicationId are not issued twice`,
        { cause: error, details: { ...(error.details ?? {}), line, read, issued, alreadyIssued, failed: errors.length } },
      );
    }
    return { read, issued, alreadyIssued, failed: errors.length, errors, superseded, byCa, ...(lines.stopped ? { stopped: { lastLine } } : {}) };
  }
}

/**
 * An application id answers with the certificate already issued for it only when it is the same application:
 * the same resident, type and card key. Another key (a new card, a mix-up at the counter) would get a
 * certificate that does not certify the key on the card.
 */
/** What checkResident checks before it reads the registry: the code (its check digit) and the counter id. */
function assertApplicant(app: Pick<IssuanceApplication, "residentCode" | "counterId">): void {
  // A mistyped code is said to be one (its check digit), not "no such resident": nobody can hold it.
  assertResidentCode(app.residentCode);
  // Checked here, not only in batch lines: 'jpki issue --counter' and 'card issue --counter' put any text into the
  // subject CN (cut to 9 characters: "CN=evil,O").
  if (app.counterId !== undefined && !COUNTER_ID.test(app.counterId)) throw invalid("counterId must be 1–9 letters or digits");
}

/** What checkResident checks of the registry's answer: a record, active, and the registry not behind the CA side. */
function issuableResident(app: Pick<IssuanceApplication, "residentCode">, found: ResidentForIssuance | undefined): ResidentForIssuance {
  if (!found) {
    throw new JpkiError("ERR_RESIDENT_UNKNOWN", `no resident with code ${app.residentCode} in the registry: import the registry record first ('jpki registry import')`);
  }
  assertEligible(found.record);
  if (found.caSequence > found.registrySequence) throw registryBehind(app.residentCode, found.caSequence, found.registrySequence);
  return found;
}

function assertSameApplication(app: IssuanceApplication, existing: Pick<IssuanceRecord, "residentCode" | "type" | "der">): void {
  const clash = (what: string) => invalid(`application id ${app.applicationId} was already used for another ${what}: give each application its own id`);
  if (existing.residentCode !== app.residentCode) throw clash("resident");
  if (existing.type !== app.type) throw clash("certificate type");
  const spkiDer = app.csr ? verifyCsr(app.csr) : app.publicKey ? readSpki(app.publicKey) : undefined;
  if (!spkiDer || !Buffer.from(certificateParts(existing.der).spki).equals(spkiDer)) throw clash("public key");
}

/**
 * The certificate issued before for an application id is the answer to a re-run only while it stands. Once revoked (a
 * card reported lost, a move, a supersession) it came back as "already issued", exit 0, and went onto the card or to
 * the counter as good; and a new one under the same id would make the id name two certificates.
 */
function assertNotRevoked(app: IssuanceApplication, existing: CertificateRow): void {
  const r = existing.revocation;
  if (!r) return;
  const reason = reasonName(r.reason) ?? `reason ${r.reason}`;
  throw new JpkiError(
    "ERR_APPLICATION_CERT_REVOKED",
    `application id ${app.applicationId} was issued before as certificate ${existing.serial}, revoked since ${r.revokedAt.toISOString()} (${reason}): it is not handed out again; apply under a new application id`,
    { details: { serial: existing.serial, caId: existing.caId, reason, revokedAt: r.revokedAt.toISOString() } },
  );
}

/**
 * A key the store certified before, to someone else or for the other type (or revoked as compromised), is not
 * certified again: a signature it makes would verify under two identities. Names the certificate that holds it,
 * never whose it is (another resident's code).
 */
function keyInUse(app: IssuanceApplication, serial: string, why: "other-resident" | "other-type" | "compromised"): JpkiError {
  const what = {
    "other-resident": "is certified to another resident",
    "other-type": `is certified for the other certificate type (a card holds a separate key pair for each)`,
    compromised: "was revoked for key compromise",
  }[why];
  return new JpkiError("ERR_KEY_IN_USE", `the ${app.type} key given for resident ${app.residentCode} ${what} (certificate ${serial}): nothing was issued; generate a new key pair on the card`, {
    details: { serial, why },
  });
}

function toIssued(rec: IssuanceRecord, superseded: readonly string[]): IssuedCertificate {
  return {
    alreadyIssued: false,
    serial: rec.serial,
    caId: rec.caId,
    type: rec.type,
    residentCode: rec.residentCode,
    notBefore: rec.notBefore,
    notAfter: rec.notAfter,
    der: rec.der,
    superseded,
  };
}

const MAX_ATTEMPTS = 3;

/** Signatures in flight in a batch unless the caller says otherwise (issueBatch). */
export const DEFAULT_CONCURRENCY = 512;

function registryBehind(residentCode: string, caSequence?: number, registrySequence?: number): JpkiError {
  const where = caSequence !== undefined ? ` (CA side at notice sequence ${caSequence}, registry at ${registrySequence})` : "";
  return new JpkiError(
    "ERR_REGISTRY_BEHIND",
    `resident ${residentCode}: the CA has applied change notices the registry record does not reflect yet${where}, so its four items may be stale; nothing was issued: apply the same notices to the registry ('jpki registry apply'), then issue again`,
  );
}

function assertEligible(r: ResidentRecord): void {
  if (r.status !== "active") {
    throw new JpkiError("ERR_RESIDENT_NOT_ELIGIBLE", `resident ${r.residentCode} is ${r.status} in the registry: no certificate can be issued`);
  }
}

/** A line in the signing window: its application, its signature on the way, and whether that has settled. */
interface WindowSlot {
  readonly line: number;
  readonly app: IssuanceApplication;
  readonly p: Promise<IssuanceRecord | IssuedCertificate>;
  signed: boolean;
}

const PAUSED = Symbol("paused");

/**
 * How long a batch waits for its next line before it commits what is signed (and tells its callers: `--out-dir`
 * writes the files). Long beside a file's read queued behind the batch's signatures on libuv's pool (tens of ms),
 * short for a counter waiting on its resident's certificate.
 */
export const INPUT_PAUSE_MS = 200;

/**
 * Tells a batch's loop that its input has paused: `race(next)` is the next line, or PAUSED once the loop has waited
 * for it INPUT_PAUSE_MS. One timer for the batch, looking at whether the loop is waiting and since when: a timer per
 * line would cost more than the line's other bookkeeping.
 */
export class InputPause {
  #since: number | undefined;
  /** Settles the race in progress with PAUSED; undefined between races. */
  #fire: (() => void) | undefined;
  readonly #timer = setInterval(() => {
    if (this.#since !== undefined && Date.now() - this.#since >= INPUT_PAUSE_MS) this.#fire?.();
  }, INPUT_PAUSE_MS / 2).unref();

  /**
   * The next line, or PAUSED. A promise of its own for each wait, not Promise.race against one pause promise kept for
   * the batch: each race left a reaction on that promise (which settles only if the input pauses), and through it
   * the race's promise and the line it resolved to — so every line a batch read stayed reachable until the batch
   * ended: 1–2 KB a line promoted to the old generation and collected only by full collections (issue bench), and a
   * million-line batch would have held every line in memory. A pause that fires is this wait's only.
   */
  race<T>(next: Promise<T>): Promise<T | typeof PAUSED> {
    return new Promise<T | typeof PAUSED>((resolve, reject) => {
      const done = () => {
        if (this.#fire === fire) {
          this.#fire = undefined;
          this.#since = undefined;
        }
      };
      const fire = () => {
        done();
        resolve(PAUSED);
      };
      this.#fire = fire;
      this.#since = Date.now();
      next.then(
        (v) => {
          done();
          resolve(v);
        },
        (e: unknown) => {
          done();
          reject(e);
        },
      );
    });
  }

  stop(): void {
    clearInterval(this.#timer);
  }
}
