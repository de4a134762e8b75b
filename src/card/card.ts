/**
 * The emulated IC card (住基カード): an ISO/IEC 7816-4 card OS whose file system holds the JPKI application
 * (jpki-app.ts) and a municipal library application (library-app.ts), reached only through APDUs
 * (`CardTerminal`), plus the personalisation API the municipal counter (市町村窓口) uses at issuance, every call
 * gated by the municipality's administrative key.
 *
 * Inside the card status words are the only error channel: `transmit` answers every byte string with a
 * response APDU and never rejects. Instructions are dispatched through one table keyed by CLA and INS.
 *
 * The session (current DF and EF, PINs verified) lives in memory and is forgotten at power-off and reset;
 * everything else is in a `CardStorage` and written there, durably, before the card answers — so pulling the
 * power during a VERIFY cannot win back a try. Before each VERIFY the retry counters are re-read from storage,
 * under the card file's lock (CardStorage.exclusive) until the new counter is written, so two processes driving
 * the same card file share one counter and never both count from the same value; the whole state is re-read before every change
 * and on SELECT of an application, so one process never writes back a stale copy over another's write.
 *
 * A card with no power turned on powers itself on at the first command, as a contactless card entering a
 * reader's field does.
 */
import { createHash, createHmac, createPrivateKey, createPublicKey, generateKeyPair, privateEncrypt, constants, randomBytes, timingSafeEqual, X509Certificate, type KeyObject } from "node:crypto";
import { JpkiError } from "../errors.js";
import { encodeResponse, parseCommandApdu, type CommandApdu } from "./apdu.js";
import { checkCardId, stateStoreOf, type CardState, type CardStateStore, type CardStorage } from "./card-state.js";
import { checkAccess, fileKey, findDfByAid, findEf, readSlice, writeSlice, type Df, type Ef, type KeyId } from "./file-system.js";
import { CERTIFICATE_SLOTS, certificatesPresent, digestInfoHash, JPKI_DF, JPKI_EF, JPKI_TOKEN_LABEL, tokenInfo, tokenLabelOf, type CertificateSlot } from "./jpki-app.js";
import { LIBRARY_DF } from "./library-app.js";
import { attemptPin, newPinRecord, pinFormatOk, PIN_IDS, PIN_POLICIES, triesStatus, type PinId, type PinRecord } from "./pin.js";
import { SW, type StatusWord } from "./status-words.js";
import type { CardTerminal } from "./terminal.js";

/** The ATR OpenSC's JPKI driver matches (shared/spec/JPKI.md): T=1, no historical bytes, TCK 14. */
export const JPKI_ATR: Uint8Array = Uint8Array.from([0x3b, 0xe0, 0x00, 0xff, 0x81, 0x31, 0xfe, 0x45, 0x14]);

/** The applications on every card, in the MF. */
export const CARD_APPLICATIONS: readonly Df[] = Object.freeze([JPKI_DF, LIBRARY_DF]);

/** RSA-2048 with e = 65537: the JPKI key size (the profile refuses anything else). */
const KEY_BITS = 2048;
const SIGNATURE_BYTES = KEY_BITS / 8;
/** The administrative key is a secret of at least 128 bits (we suggest 32 random bytes: `newAdminKey`). */
const ADMIN_KEY_MIN = 16;

export interface CreateCardParams {
  /** where the card's state goes (`fileCardStorage(path)` or `memoryCardStorage()`); must hold no card yet */
  readonly storage: CardStorage;
  /** the card's id (its serial, 1–64 of letters, digits, . _ -); bound into the state file's encryption */
  readonly cardId: string;
  /** the municipality's administrative key (≥ 16 bytes): every personalisation call needs it */
  readonly adminKey: Uint8Array;
  /** 署名用電子証明書のパスワード: 6–16 of A–Z, 0–9 */
  readonly signaturePin: string;
  /** 利用者証明用電子証明書の暗証番号: 4 digits */
  readonly authenticationPin: string;
  /** the library application's PIN (4 digits); without it that PIN stays unset (every VERIFY 69 84) */
  readonly libraryPin?: string;
  /** EF 0006's label; JPKIAPICCTOKEN (a 住基カード) by default */
  readonly tokenLabel?: string;
  /** the resident the counter makes the card for (kept as holderTag's hash only: see CardState.holder) */
  readonly holderResidentCode?: string;
}

/** What a card keeps of its holder's resident code: a hash bound to the card id (CardState.holder). */
function holderTag(cardId: string, residentCode: string): string {
  return createHash("sha256").update(`jpki card holder\n${cardId}\n${residentCode}`).digest("hex");
}

/** What the counter (and `jpki card info`) may know about a card without any PIN. */
export interface CardInfo {
  readonly cardId: string;
  readonly tokenLabel: string;
  readonly certificates: Readonly<Record<CertificateSlot, boolean>>;
  readonly keys: Readonly<Record<KeyId, boolean>>;
  /** tries left per PIN (0: blocked); undefined for a PIN never set */
  readonly triesLeft: Readonly<Record<PinId, number | undefined>>;
}

/** A fresh administrative key: 32 random bytes, held by the municipality, never stored on the card. */
export function newAdminKey(): Buffer {
  return randomBytes(32);
}

function adminRecord(adminKey: Uint8Array): CardState["admin"] {
  if (adminKey.length < ADMIN_KEY_MIN) throw new JpkiError("ERR_USAGE", `an administrative key is at least ${ADMIN_KEY_MIN} bytes`);
  const salt = randomBytes(16);
  return { salt: salt.toString("base64"), hash: createHmac("sha256", salt).update(adminKey).digest("base64") };
}

function adminMatches(rec: CardState["admin"], adminKey: Uint8Array): boolean {
  const want = Buffer.from(rec.hash, "base64");
  const got = createHmac("sha256", Buffer.from(rec.salt, "base64")).update(adminKey).digest();
  return want.length === got.length && timingSafeEqual(want, got);
}

type Answer = { readonly data?: Uint8Array; readonly sw: StatusWord };
const sw = (s: StatusWord): Answer => ({ sw: s });

/** The card's working memory: persistent state (mirrored in storage) and the session. */
class Core {
  state: CardState;
  readonly keys = new Map<KeyId, KeyObject>();
  /** the current DF (undefined: the MF) and EF */
  df: Df | undefined;
  ef: Ef | undefined;
  /**
   * The PINs verified in this session, each with the hash of the record it matched: another process on the same
   * card file may block the PIN with wrong tries, or the counter set a new one, and then this session's
   * verification no longer counts (isVerified).
   */
  readonly verified = new Map<PinId, string>();
  powered = false;
  /** set by a fault: every later command answers 6F 00 until the card is opened again */
  mute = false;

  constructor(
    readonly storage: CardStateStore,
    state: CardState,
    readonly onMute?: (why: string) => void,
  ) {
    this.state = state;
    this.loadKeys();
  }

  loadKeys(): void {
    this.keys.clear();
    for (const [id, der] of Object.entries(this.state.keys) as Array<[KeyId, string]>) {
      this.keys.set(id, createPrivateKey({ key: Buffer.from(der, "base64"), format: "der", type: "pkcs8" }));
    }
  }

  /**
   * Adopts what storage holds now: another process (the counter renewing a certificate while `jpki card serve`
   * holds the card) may have written since we loaded. Called before every change, so a commit never writes back
   * a stale copy over someone else's write, and on SELECT of an application and before signing, so reads and
   * signatures use the current files and keys.
   *
   * A card whose storage is gone (its file removed or moved away while this process serves it) is missing, not
   * kept going from memory: the state held here may be older than what another process wrote last (a PIN it
   * blocked), and the next commit would make a new card file of it — tries won back past the rollback record,
   * and a second file for one card. The load's ERR_CARD_MISSING makes the card mute.
   */
  refresh(): void {
    const disk = this.storage.load();
    const keysChanged = JSON.stringify(disk.keys) !== JSON.stringify(this.state.keys);
    this.state = disk;
    if (keysChanged) this.loadKeys();
  }

  /** Verified in this session and still the card's PIN, not blocked since; call after refresh(). */
  isVerified(id: PinId): boolean {
    const rec = this.state.pins[id];
    return rec !== undefined && rec.tries > 0 && this.verified.get(id) === rec.hash;
  }

  /** The PINs that open access conditions now. */
  sessionPins(): { has(id: PinId): boolean } {
    return { has: (id) => this.isVerified(id) };
  }

  resetSession(): void {
    this.df = undefined;
    this.ef = undefined;
    this.verified.clear();
  }

  /** Runs a refresh-decide-commit with no other process writing this card in between (see CardStorage.exclusive). */
  exclusive<T>(fn: () => T): T {
    return this.storage.exclusive ? this.storage.exclusive(fn) : fn();
  }

  /** Writes the new state durably, then adopts it. */
  commit(next: CardState): void {
    this.storage.save(next);
    this.state = next;
  }

  file(df: Df, fid: number): Uint8Array {
    const b64 = this.state.files[fileKey(df, fid)];
    return b64 === undefined ? new Uint8Array(0) : Buffer.from(b64, "base64");
  }

  withFile(df: Df, fid: number, content: Uint8Array): CardState {
    return { ...this.state, files: { ...this.state.files, [fileKey(df, fid)]: Buffer.from(content).toString("base64") } };
  }

  withPin(id: PinId, rec: PinRecord): CardState {
    return { ...this.state, pins: { ...this.state.pins, [id]: rec } };
  }
}

type Handler = (core: Core, apdu: CommandApdu) => Answer;

// ---- instruction handlers (ISO 7816-4 §11 and the JPKI sign instruction) ----

/**
 * The control parameters SELECT answers with (ISO 7816-4 §7.4, table 12): the DF name, or the EF's FID, descriptor
 * and size, as the FCI template (tag 6F, P2 = 00) or the FCP template (tag 62, P2 = 04).
 */
function fileControl(target: Df | Ef | "mf", core: Core, tag: 0x6f | 0x62): Uint8Array {
  const tlv = (t: number, v: Uint8Array) => Uint8Array.from([t, v.length, ...v]);
  if (target === "mf") return tlv(tag, tlv(0x83, Uint8Array.from([0x3f, 0x00])));
  if (!("kind" in target)) return tlv(tag, tlv(0x84, target.aid));
  const fid = Uint8Array.from([target.fid >> 8, target.fid & 0xff]);
  const parts = [tlv(0x83, fid), tlv(0x82, Uint8Array.from([target.kind === "binary" ? 0x01 : 0x11]))];
  if (target.kind === "binary" && core.df) {
    const n = core.file(core.df, target.fid).length;
    parts.push(tlv(0x80, Uint8Array.from([n >> 8, n & 0xff])));
  }
  return tlv(tag, Uint8Array.from(parts.flatMap((p) => [...p])));
}

/**
 * What SELECT answers once the file is selected (ISO 7816-4 §11.1.1, P2 b4–b3): 0C no data; 00 the FCI, 04 the FCP —
 * only when the command has an Le. A case-3 SELECT (no Le: Ne = 0) expects no response data, whatever P2 says: the
 * card answered it with the FCI, which a strict reader or a T=0 transport takes as a protocol error (found by a
 * helper). An Le too short for the template is refused as a wrong length (the file stays selected).
 */
function selectAnswer(target: Df | Ef | "mf", core: Core, apdu: CommandApdu): Answer {
  if (apdu.p2 === 0x0c || apdu.ne === 0) return sw(SW.OK);
  const data = fileControl(target, core, apdu.p2 === 0x00 ? 0x6f : 0x62);
  return data.length > apdu.ne ? sw(SW.WRONG_LENGTH) : { data, sw: SW.OK };
}

const select: Handler = (core, apdu) => {
  const { p1, p2 } = apdu;
  if (p2 !== 0x0c && p2 !== 0x00 && p2 !== 0x04) return sw(SW.WRONG_P1P2);
  const data = apdu.dataView();
  const answer = (target: Df | Ef | "mf"): Answer => selectAnswer(target, core, apdu);
  switch (p1) {
    case 0x04: {
      // by DF name (AID, 5–16 bytes, ISO 7816-5)
      if (data.length < 1 || data.length > 16) return sw(SW.WRONG_LENGTH);
      const df = findDfByAid(CARD_APPLICATIONS, data);
      if (!df) return sw(SW.FILE_NOT_FOUND);
      core.refresh();
      // Another application's security status does not carry over (each DF has its own PINs).
      if (df !== core.df) core.verified.clear();
      core.df = df;
      core.ef = undefined;
      return answer(df);
    }
    case 0x00:
    case 0x02: {
      // 00: MF, DF or EF by FID; 02: EF under the current DF. Only the current DF's EFs can be named, so no
      // application reaches another's files.
      if (p1 === 0x00 && data.length === 0) return selectMf(core, answer);
      if (data.length !== 2) return sw(SW.WRONG_LENGTH);
      const fid = (data[0]! << 8) | data[1]!;
      if (p1 === 0x00 && fid === 0x3f00) return selectMf(core, answer);
      const ef = core.df ? findEf(core.df, fid) : undefined;
      if (!ef) return sw(SW.FILE_NOT_FOUND);
      core.ef = ef;
      return answer(ef);
    }
    case 0x08:
    case 0x09: {
      // by path: other drivers probe with these before OpenSC's JPKI driver gets a turn; we hold nothing
      // reachable by path except the MF itself.
      if (data.length === 0 || data.length % 2 !== 0) return sw(SW.WRONG_LENGTH);
      if (p1 === 0x08 && data.length === 2 && data[0] === 0x3f && data[1] === 0x00) return selectMf(core, answer);
      return sw(SW.FILE_NOT_FOUND);
    }
    default:
      return sw(SW.WRONG_P1P2);
  }
};

function selectMf(core: Core, answer: (target: "mf") => Answer): Answer {
  if (core.df !== undefined) core.verified.clear();
  core.df = undefined;
  core.ef = undefined;
  return answer("mf");
}

/** The current binary EF for READ/UPDATE BINARY, or the word that refuses. */
function currentBinary(core: Core): { df: Df; ef: Extract<Ef, { kind: "binary" }> } | StatusWord {
  const { df, ef } = core;
  if (!df || !ef) return SW.COMMAND_NOT_ALLOWED;
  if (ef.kind !== "binary") return SW.SECURITY_NOT_SATISFIED; // key and PIN EFs are never readable
  return { df, ef };
}

const readBinary: Handler = (core, apdu) => {
  if (apdu.p1 & 0x80) return sw(SW.WRONG_P1P2); // short EF identifiers are not supported
  if (apdu.nc !== 0 || apdu.ne === 0) return sw(SW.WRONG_LENGTH);
  const cur = currentBinary(core);
  if (typeof cur === "number") return sw(cur);
  if (cur.ef.read.kind === "pin") core.refresh(); // the PIN may have been blocked or reset since it was verified
  const ac = checkAccess(cur.ef.read, core.sessionPins());
  if (ac !== SW.OK) return sw(ac);
  return readSlice(core.file(cur.df, cur.ef.fid), (apdu.p1 << 8) | apdu.p2, apdu.ne);
};

const updateBinary: Handler = (core, apdu) => {
  if (apdu.p1 & 0x80) return sw(SW.WRONG_P1P2);
  if (apdu.nc === 0 || apdu.ne !== 0) return sw(SW.WRONG_LENGTH);
  const cur = currentBinary(core);
  if (typeof cur === "number") return sw(cur);
  return core.exclusive(() => {
    core.refresh();
    const ac = checkAccess(cur.ef.update, core.sessionPins());
    if (ac !== SW.OK) return sw(ac);
    const w = writeSlice(core.file(cur.df, cur.ef.fid), (apdu.p1 << 8) | apdu.p2, apdu.dataView(), cur.ef.maxSize);
    if (!w.content) return sw(w.sw);
    core.commit(core.withFile(cur.df, cur.ef.fid, w.content));
    return sw(SW.OK);
  });
};

/** The current PIN EF for VERIFY and CHANGE REFERENCE DATA. */
function currentPin(core: Core): PinId | StatusWord {
  if (!core.ef) return SW.COMMAND_NOT_ALLOWED;
  if (core.ef.kind !== "pin") return SW.COMMAND_NOT_ALLOWED;
  return core.ef.pin;
}

const verify: Handler = (core, apdu) => {
  // P2 80: the specific reference data of the current DF, i.e. the PIN EF just selected (JPKI).
  if (apdu.p1 !== 0x00 || apdu.p2 !== 0x80) return sw(SW.WRONG_P1P2);
  const id = currentPin(core);
  if (typeof id === "number") return sw(id);
  // Another process may have used a try on this card since we loaded it; under the card's lock, so none uses
  // one between our read of the counter and our write of it.
  return core.exclusive(() => {
    core.refresh();
    const rec = core.state.pins[id];
    if (!rec) return sw(SW.REFERENCE_DATA_NOT_USABLE);
    if (apdu.nc === 0) return sw(triesStatus(rec));
    core.verified.delete(id);
    // The try is spent — written — before the candidate is even compared, as a card's EEPROM counter is: a write
    // that fails (a full disk) makes the card mute (see #process) before it has judged anything, so no answer,
    // right or wrong, ever leaves without its try recorded. (Comparing first would answer the right PIN without a
    // write, and 6F 00 only to wrong ones: an oracle at no cost on a full disk.)
    if (rec.tries > 0) core.commit(core.withPin(id, Object.freeze({ ...rec, tries: rec.tries - 1 })));
    const attempt = attemptPin(id, rec, apdu.dataView());
    // Right: the counter full again (a crash before this write costs the resident one try, never gives one).
    if (attempt.verified) {
      core.commit(core.withPin(id, attempt.record));
      core.verified.set(id, attempt.record.hash);
    }
    return sw(attempt.sw);
  });
};

const changeReferenceData: Handler = (core, apdu) => {
  // P1 01: the data is the new PIN only, allowed after the current one was verified in this session.
  if (apdu.p1 !== 0x01 || apdu.p2 !== 0x80) return sw(SW.WRONG_P1P2);
  if (apdu.nc === 0) return sw(SW.WRONG_LENGTH);
  const id = currentPin(core);
  if (typeof id === "number") return sw(id);
  const pin = Buffer.from(apdu.dataView()).toString("latin1");
  return core.exclusive(() => {
    core.refresh();
    // Checked under the lock: a PIN blocked elsewhere since this session verified it must not be reset from here.
    if (!core.isVerified(id)) return sw(SW.SECURITY_NOT_SATISFIED);
    if (!pinFormatOk(id, pin)) return sw(SW.WRONG_DATA);
    const rec = newPinRecord(id, pin);
    core.commit(core.withPin(id, rec));
    core.verified.set(id, rec.hash);
    return sw(SW.OK);
  });
};

const sign: Handler = (core, apdu) => {
  // 80 2A 00 80 Lc <DER DigestInfo> 00: the JPKI "compute digital signature", after selecting the key EF.
  if (apdu.p1 !== 0x00 || apdu.p2 !== 0x80) return sw(SW.WRONG_P1P2);
  if (apdu.nc === 0 || apdu.ne < SIGNATURE_BYTES) return sw(SW.WRONG_LENGTH);
  const ef = core.ef;
  if (!ef || ef.kind !== "key") return sw(SW.CONDITIONS_NOT_SATISFIED);
  core.refresh(); // a key renewed by the counter, or the PIN blocked or reset, since this card was loaded
  if (!core.isVerified(ef.pin)) return sw(SW.SECURITY_NOT_SATISFIED);
  const key = core.keys.get(ef.key);
  if (!key) return sw(SW.CONDITIONS_NOT_SATISFIED);
  const di = apdu.dataView();
  if (digestInfoHash(di) === undefined) return sw(SW.WRONG_DATA);
  return { data: privateEncrypt({ key, padding: constants.RSA_PKCS1_PADDING }, di), sw: SW.OK };
};

/** The instruction table: CLA and INS → handler. A CLA in no key answers 6E 00, an INS 6D 00. */
const INSTRUCTIONS: ReadonlyMap<number, ReadonlyMap<number, Handler>> = new Map([
  [0x00, new Map<number, Handler>([
    [0xa4, select],
    [0xb0, readBinary],
    [0xd6, updateBinary],
    [0x20, verify],
    [0x24, changeReferenceData],
  ])],
  [0x80, new Map<number, Handler>([[0x2a, sign]])],
]);

/** The emulated card. Implements `CardTerminal`: what a reader sees. */
export class EmulatedCard implements CardTerminal {
  readonly #core: Core;

  private constructor(core: Core) {
    this.#core = core;
  }

  /** Issues a new card into empty storage: PINs set, files initialised, no keys yet (ERR_CARD_EXISTS if any). */
  static create(p: CreateCardParams): EmulatedCard {
    checkCardId(p.cardId);
    const store = stateStoreOf(p.storage);
    if (store.exists()) throw new JpkiError("ERR_CARD_EXISTS", `a card already exists at ${store.where}`);
    const pins: Partial<Record<PinId, PinRecord>> = {
      signature: newPinRecord("signature", p.signaturePin),
      authentication: newPinRecord("authentication", p.authenticationPin),
      ...(p.libraryPin !== undefined ? { library: newPinRecord("library", p.libraryPin) } : {}),
    };
    const files = {
      [fileKey(JPKI_DF, JPKI_EF.tokenInfo)]: Buffer.from(tokenInfo(p.tokenLabel ?? JPKI_TOKEN_LABEL)).toString("base64"),
      [fileKey(JPKI_DF, JPKI_EF.certificatesPresent)]: Buffer.from(certificatesPresent(new Set())).toString("base64"),
    };
    const state: CardState = {
      v: 1,
      cardId: p.cardId,
      admin: adminRecord(p.adminKey),
      pins,
      keys: {},
      files,
      ...(p.holderResidentCode !== undefined ? { holder: holderTag(p.cardId, p.holderResidentCode) } : {}),
    };
    // Checked again under the card file's lock: of two counters issuing onto one path at once, the second is
    // refused instead of replacing the first one's card.
    const create = () => {
      if (store.exists()) throw new JpkiError("ERR_CARD_EXISTS", `a card already exists at ${store.where}`);
      store.save(state);
    };
    if (store.exclusive) store.exclusive(create);
    else create();
    return new EmulatedCard(new Core(store, state));
  }

  /**
   * Opens an issued card (ERR_CARD_MISSING, ERR_CARD_STATE_CORRUPT). `onMute` hears once, with the error's code,
   * that a fault made the card mute: a reader (`jpki card serve`) otherwise sees only 6F 00 to every command from
   * then on, and nothing says that the card must be opened again once the cause (a full disk) is mended.
   */
  static open(storage: CardStorage, options: { readonly onMute?: (why: string) => void } = {}): EmulatedCard {
    const store = stateStoreOf(storage);
    return new EmulatedCard(new Core(store, store.load(), options.onMute));
  }

  // ---- CardTerminal ----

  atr(): Uint8Array {
    return Uint8Array.from(JPKI_ATR);
  }

  powerOff(): void {
    this.#core.resetSession();
    this.#core.powered = false;
  }

  powerOn(): void {
    this.#core.resetSession();
    this.#core.powered = true;
  }

  reset(): void {
    this.powerOn();
  }

  transmit(command: Uint8Array): Promise<Uint8Array> {
    return Promise.resolve(this.#process(command));
  }

  #process(command: Uint8Array): Uint8Array {
    const core = this.#core;
    if (core.mute) return encodeResponse(new Uint8Array(0), SW.NO_DIAGNOSIS);
    if (!core.powered) this.powerOn();
    try {
      const parsed = parseCommandApdu(command);
      if (!parsed.ok) return encodeResponse(new Uint8Array(0), parsed.sw);
      const { apdu } = parsed;
      const byIns = INSTRUCTIONS.get(apdu.cla);
      if (!byIns) return encodeResponse(new Uint8Array(0), SW.CLA_NOT_SUPPORTED);
      const handler = byIns.get(apdu.ins);
      if (!handler) return encodeResponse(new Uint8Array(0), SW.INS_NOT_SUPPORTED);
      const a = handler(core, apdu);
      return encodeResponse(a.data ?? new Uint8Array(0), a.sw);
    } catch (e) {
      // Another process held the card file's lock for the whole wait: nothing was read or written, so this
      // command simply failed; the card stays usable (jpki card serve must not go mute for good over it).
      if (e instanceof JpkiError && e.code === "ERR_WORKSPACE_LOCKED") return encodeResponse(new Uint8Array(0), SW.NO_DIAGNOSIS);
      // A fault (storage unwritable, state unreadable, a bug): like a chip whose EEPROM write failed, the card
      // answers 6F 00 to everything from now on. Carrying on could answer from state that was never persisted
      // — and re-reading storage at the next VERIFY would then hand back a try the failed write lost.
      core.mute = true;
      core.resetSession();
      try {
        // The code only: a message may name paths, and nothing that passed through the card belongs in a log.
        const code = (e as { code?: unknown } | null)?.code;
        core.onMute?.(typeof code === "string" ? code : "ERR_INTERNAL");
      } catch {
        // a listener that throws must not change the answer
      }
      return encodeResponse(new Uint8Array(0), SW.NO_DIAGNOSIS);
    }
  }

  // ---- what anyone holding the card can see ----

  info(): CardInfo {
    const s = this.#core.state;
    const present = this.#core.file(JPKI_DF, JPKI_EF.certificatesPresent)[0] ?? 0;
    const certificates = Object.fromEntries(
      (Object.keys(CERTIFICATE_SLOTS) as CertificateSlot[]).map((k) => [k, (present & CERTIFICATE_SLOTS[k].bit) !== 0]),
    ) as Record<CertificateSlot, boolean>;
    return {
      cardId: s.cardId,
      tokenLabel: tokenLabelOf(this.#core.file(JPKI_DF, JPKI_EF.tokenInfo)),
      certificates,
      keys: { authentication: s.keys.authentication !== undefined, signature: s.keys.signature !== undefined },
      triesLeft: Object.fromEntries(PIN_IDS.map((id) => [id, s.pins[id]?.tries])) as Record<PinId, number | undefined>,
    };
  }

  /** Whether the counter began this card for `residentCode`; undefined when the card does not say (made before it was recorded). */
  begunFor(residentCode: string): boolean | undefined {
    const h = this.#core.state.holder;
    return h === undefined ? undefined : h === holderTag(this.#core.state.cardId, residentCode);
  }

  /** The DER SubjectPublicKeyInfo of a key on the card, or undefined before it was generated. */
  publicKey(key: KeyId): Buffer | undefined {
    const k = this.#core.keys.get(key);
    return k ? createPublicKey(k).export({ type: "spki", format: "der" }) : undefined;
  }

  // ---- personalisation at the counter (administrative key) ----

  /**
   * Runs a counter procedure on this card (counter/card-issuance.ts: renew) with no other one on the card at the
   * same time (CardStateStore.procedure; ERR_WORKSPACE_LOCKED when one runs), from the card's state as stored once
   * the procedure has the card: another process's procedure may have changed its keys since this card was opened.
   */
  procedure<T>(fn: () => Promise<T>): Promise<T> {
    const core = this.#core;
    const run = async () => {
      core.refresh();
      return fn();
    };
    return core.storage.procedure ? core.storage.procedure(run) : run();
  }

  #admin(adminKey: Uint8Array): void {
    this.#core.refresh();
    if (!adminMatches(this.#core.state.admin, adminKey)) {
      throw new JpkiError("ERR_CARD_ADMIN_KEY_WRONG", "the administrative key does not open this card: use the issuing municipality's key");
    }
  }

  /**
   * Generates an RSA-2048 key pair inside the card for one use and returns its SubjectPublicKeyInfo (DER). A key
   * that was there is replaced, and its certificate removed with it (it certifies the old key): renewal.
   */
  async generateKeyPair(adminKey: Uint8Array, key: KeyId): Promise<Buffer> {
    this.#admin(adminKey);
    const priv = await new Promise<KeyObject>((resolve, reject) =>
      generateKeyPair("rsa", { modulusLength: KEY_BITS, publicExponent: 0x10001 }, (err, _pub, pk) => (err ? reject(err) : resolve(pk))),
    );
    const core = this.#core;
    core.exclusive(() => {
      core.refresh(); // the key generation took a while: start from what is stored now
      const slot = (Object.keys(CERTIFICATE_SLOTS) as CertificateSlot[]).find((s) => CERTIFICATE_SLOTS[s].key === key)!;
      const pkcs8 = priv.export({ type: "pkcs8", format: "der" }).toString("base64");
      let next: CardState = { ...core.state, keys: { ...core.state.keys, [key]: pkcs8 } };
      next = this.#withCertificate(next, slot, undefined);
      core.commit(next);
      core.keys.set(key, priv);
    });
    return createPublicKey(priv).export({ type: "spki", format: "der" });
  }

  /** Writes a certificate EF (and EF 0008); a certificate for a card key must certify that key. */
  writeCertificate(adminKey: Uint8Array, slot: CertificateSlot, der: Uint8Array): void {
    // Under the card's lock from the refresh to the commit: a VERIFY in another process between the two would
    // otherwise have its used-up try written back over.
    this.#core.exclusive(() => this.#writeCertificate(adminKey, slot, der));
  }

  #writeCertificate(adminKey: Uint8Array, slot: CertificateSlot, der: Uint8Array): void {
    this.#admin(adminKey);
    const s = CERTIFICATE_SLOTS[slot];
    if (der.length > 4096) throw new JpkiError("ERR_CARD_CERT_MISMATCH", "a certificate for the card is at most 4096 bytes");
    let cert: X509Certificate;
    try {
      cert = new X509Certificate(Buffer.from(der));
    } catch (e) {
      throw new JpkiError("ERR_CARD_CERT_MISMATCH", "not a DER X.509 certificate", { cause: e });
    }
    if (s.key) {
      const spki = this.publicKey(s.key);
      if (!spki) throw new JpkiError("ERR_CARD_KEY_MISSING", `the card has no ${s.key} key yet: generate it first`);
      if (!cert.publicKey.export({ type: "spki", format: "der" }).equals(spki)) {
        throw new JpkiError("ERR_CARD_CERT_MISMATCH", `the certificate does not certify the card's ${s.key} key`);
      }
    }
    this.#core.commit(this.#withCertificate(this.#core.state, slot, Buffer.from(der)));
  }

  #withCertificate(state: CardState, slot: CertificateSlot, der: Buffer | undefined): CardState {
    const files: Record<string, string> = { ...state.files };
    const k = fileKey(JPKI_DF, CERTIFICATE_SLOTS[slot].fid);
    if (der) files[k] = der.toString("base64");
    else delete files[k];
    const present = new Set(
      (Object.keys(CERTIFICATE_SLOTS) as CertificateSlot[]).filter((c) => files[fileKey(JPKI_DF, CERTIFICATE_SLOTS[c].fid)] !== undefined),
    );
    files[fileKey(JPKI_DF, JPKI_EF.certificatesPresent)] = Buffer.from(certificatesPresent(present)).toString("base64");
    return { ...state, files };
  }

  /** Writes a municipal application's EF (not JPKI's: certificates go through `writeCertificate`). */
  writeApplicationFile(adminKey: Uint8Array, p: { readonly application: "library"; readonly fid: number; readonly data: Uint8Array }): void {
    this.#core.exclusive(() => this.#writeApplicationFile(adminKey, p));
  }

  #writeApplicationFile(adminKey: Uint8Array, p: { readonly application: "library"; readonly fid: number; readonly data: Uint8Array }): void {
    this.#admin(adminKey);
    const df = CARD_APPLICATIONS.find((d) => d.name === p.application && d !== JPKI_DF);
    const ef = df ? findEf(df, p.fid) : undefined;
    if (!df || !ef || ef.kind !== "binary") throw new JpkiError("ERR_USAGE", `no binary EF ${p.fid.toString(16)} in the ${p.application} application`);
    if (p.data.length > ef.maxSize) throw new JpkiError("ERR_USAGE", `EF ${p.fid.toString(16)} holds at most ${ef.maxSize} bytes`);
    this.#core.commit(this.#core.withFile(df, p.fid, p.data));
  }

  /** Sets a new PIN with a full counter: unblocking (or first setting) at the counter. */
  unblockPin(adminKey: Uint8Array, pin: PinId, newPin: string): void {
    const core = this.#core;
    core.exclusive(() => {
      this.#admin(adminKey);
      if (!PIN_POLICIES[pin]) throw new JpkiError("ERR_USAGE", `no PIN called ${String(pin)}`);
      core.commit(core.withPin(pin, newPinRecord(pin, newPin)));
    });
    core.verified.delete(pin);
  }
}

/** Unblocks a PIN with the municipality's administrative key (the function form of `card.unblockPin`). */
export function unblockPin(card: EmulatedCard, which: PinId, newPin: string, adminKey: Uint8Array): void {
  card.unblockPin(adminKey, which, newPin);
}
