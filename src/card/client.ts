/**
 * The host side (middleware): drives any `CardTerminal` with the APDUs a real JPKI client sends (shared/spec/
 * JPKI.md "The card"; OpenSC's card-jpki.c does the same), and a `Signer` backed by the card so `jpki card
 * sign` can make CMS with a key that never leaves it. Speaks only APDUs: it works the same against the emulator
 * in process or a physical card behind a transport.
 */
import { createHash, publicDecrypt, constants, X509Certificate } from "node:crypto";
import { JpkiError } from "../errors.js";
import { head as derHead, headAt } from "../pki/der.js";
import { SHA256_WITH_RSA, type Signer } from "../pki/signer.js";
import { CommandApdu, parseResponse, type CommandApduParams, type ResponseApdu } from "./apdu.js";
import { CERTIFICATE_SLOTS, digestInfo, JPKI_AID, JPKI_EF, tokenLabelOf, type CertificateSlot } from "./jpki-app.js";
import { checkPinFormat } from "./pin.js";
import { describeSw, SW, triesLeftOf } from "./status-words.js";
import type { CardTerminal } from "./terminal.js";

/** The PINs of the JPKI application. */
export type JpkiPin = "signature" | "authentication";
const PIN_EF: Record<JpkiPin, number> = { signature: JPKI_EF.signaturePin, authentication: JPKI_EF.authenticationPin };
const KEY_EF: Record<JpkiPin, number> = { signature: JPKI_EF.signatureKey, authentication: JPKI_EF.authenticationKey };
/** READ BINARY chunk: a short Le asks for at most 256 bytes. */
const CHUNK = 256;

function statusError(what: string, r: ResponseApdu): JpkiError {
  return new JpkiError("ERR_CARD_STATUS", `${what}: the card answered ${describeSw(r.sw)}`, { details: { sw: r.sw } });
}

/** A JPKI client over one terminal. Methods select what they need, so they can be called in any order. */
export class JpkiCardClient {
  constructor(readonly terminal: CardTerminal) {}

  /** Sends one command and splits the answer. */
  async send(p: CommandApduParams): Promise<ResponseApdu> {
    const raw = await this.terminal.transmit(new CommandApdu(p).encode());
    const r = parseResponse(raw);
    if (!r) throw new JpkiError("ERR_CARD_STATUS", "the card answered fewer than the two status bytes");
    return r;
  }

  async #ok(what: string, p: CommandApduParams): Promise<ResponseApdu> {
    const r = await this.send(p);
    if (r.sw !== SW.OK) throw statusError(what, r);
    return r;
  }

  /** SELECT the JPKI application: 00 A4 04 0C 0A <AID>. */
  async selectJpki(): Promise<void> {
    await this.#ok("selecting the JPKI application", { cla: 0x00, ins: 0xa4, p1: 0x04, p2: 0x0c, data: JPKI_AID });
  }

  /** SELECT an EF of the current application: 00 A4 02 0C 02 <FID>. */
  async selectEf(fid: number): Promise<void> {
    await this.#ok(`selecting EF ${fid.toString(16).padStart(4, "0")}`, { cla: 0x00, ins: 0xa4, p1: 0x02, p2: 0x0c, data: Uint8Array.from([fid >> 8, fid & 0xff]) });
  }

  /** READ BINARY at an offset (up to 0x7FFF), at most `n` bytes (≤ 256). Returns the response as the card gave it. */
  readBinary(offset: number, n: number): Promise<ResponseApdu> {
    return this.send({ cla: 0x00, ins: 0xb0, p1: (offset >> 8) & 0x7f, p2: offset & 0xff, ne: n });
  }

  /**
   * Reads a certificate EF as real clients do: 4 bytes, the DER length from them, then ≤ 256-byte chunks.
   * Undefined when the EF is empty (no certificate written). The signature certificate needs the signature PIN
   * verified first.
   */
  async readCertificate(slot: CertificateSlot): Promise<Buffer | undefined> {
    await this.selectJpki();
    await this.selectEf(CERTIFICATE_SLOTS[slot].fid);
    const head = await this.readBinary(0, 4);
    if (head.sw === SW.OFFSET_OUTSIDE_EF) return undefined;
    if (head.sw === SW.SECURITY_NOT_SATISFIED) {
      throw new JpkiError("ERR_CARD_STATUS", `reading the ${slot} certificate needs its PIN verified first (the card answered 6982)`, { details: { sw: head.sw } });
    }
    if (head.sw !== SW.OK || head.data.length !== 4) throw statusError(`reading the ${slot} certificate`, head);
    const total = derLength(head.data);
    if (total === undefined) throw new JpkiError("ERR_CARD_STATUS", `the ${slot} certificate EF does not start with a DER SEQUENCE`);
    const out = Buffer.alloc(total);
    out.set(head.data.subarray(0, Math.min(4, total)), 0);
    for (let off = 4; off < total; ) {
      const r = await this.readBinary(off, Math.min(CHUNK, total - off));
      if ((r.sw !== SW.OK && r.sw !== SW.END_OF_FILE) || r.data.length === 0) throw statusError(`reading the ${slot} certificate at ${off}`, r);
      out.set(r.data.subarray(0, total - off), off);
      off += r.data.length;
    }
    return out;
  }

  /** The token label in EF 0006 (JPKIAPICCTOKEN on a 住基カード). */
  async tokenLabel(): Promise<string> {
    await this.selectJpki();
    await this.selectEf(JPKI_EF.tokenInfo);
    const r = await this.readBinary(0, 160);
    if (r.sw !== SW.OK && r.sw !== SW.END_OF_FILE) throw statusError("reading the token info", r);
    return tokenLabelOf(r.data);
  }

  /** Tries left for a PIN (0 when blocked), by the empty VERIFY. */
  async triesLeft(pin: JpkiPin): Promise<number> {
    await this.selectJpki();
    await this.selectEf(PIN_EF[pin]);
    const r = await this.send({ cla: 0x00, ins: 0x20, p1: 0x00, p2: 0x80 });
    if (r.sw === SW.REFERENCE_DATA_NOT_USABLE || r.sw === SW.AUTH_BLOCKED) return 0;
    const n = triesLeftOf(r.sw);
    if (n === undefined) throw statusError(`asking the ${pin} PIN's tries`, r);
    return n;
  }

  /** VERIFY a PIN: ERR_CARD_PIN_WRONG with the tries left, ERR_CARD_PIN_BLOCKED when blocked. */
  async verifyPin(pin: JpkiPin, value: string): Promise<void> {
    // The card counts a malformed PIN as a wrong one (it must not tell format from value); the host knows the
    // rule, so a typo (lowercase, a fifth digit) is refused here instead of costing one of the resident's tries.
    checkPinFormat(pin, value);
    await this.selectJpki();
    await this.selectEf(PIN_EF[pin]);
    const r = await this.send({ cla: 0x00, ins: 0x20, p1: 0x00, p2: 0x80, data: Buffer.from(value, "latin1") });
    if (r.sw === SW.OK) return;
    const n = triesLeftOf(r.sw);
    if (r.sw === SW.REFERENCE_DATA_NOT_USABLE || r.sw === SW.AUTH_BLOCKED || n === 0) {
      throw new JpkiError("ERR_CARD_PIN_BLOCKED", `the ${pin} PIN is blocked: the municipal counter can unblock it`, { details: { pin, triesLeft: 0 } });
    }
    if (n !== undefined) {
      throw new JpkiError("ERR_CARD_PIN_WRONG", `wrong ${pin} PIN: ${n} ${n === 1 ? "try" : "tries"} left before it blocks`, { details: { pin, triesLeft: n } });
    }
    throw statusError(`verifying the ${pin} PIN`, r);
  }

  /** CHANGE REFERENCE DATA after the current PIN was verified: 00 24 01 80 <new PIN>. */
  async changePin(pin: JpkiPin, current: string, next: string): Promise<void> {
    await this.verifyPin(pin, current);
    await this.#ok(`changing the ${pin} PIN`, { cla: 0x00, ins: 0x24, p1: 0x01, p2: 0x80, data: Buffer.from(next, "latin1") });
  }

  /** The sign instruction: select the key EF, 80 2A 00 80 <DigestInfo> 00 → 256 bytes. Its PIN verified first. */
  async signDigestInfo(key: JpkiPin, di: Uint8Array): Promise<Buffer> {
    await this.selectJpki();
    await this.selectEf(KEY_EF[key]);
    const r = await this.send({ cla: 0x80, ins: 0x2a, p1: 0x00, p2: 0x80, data: di, ne: 256 });
    if (r.sw !== SW.OK) throw statusError(`signing with the ${key} key`, r);
    return Buffer.from(r.data);
  }
}

/** The length of the DER element starting in these bytes (from its first 2–4 bytes), if it is a SEQUENCE. */
function derLength(b: Uint8Array): number | undefined {
  return b[0] === 0x30 && !headAt(b, 0, b.length) ? derHead.headerLength + derHead.length : undefined;
}

export interface CardSignerParams {
  readonly terminal: CardTerminal;
  /** which key signs: "signature" (署名用, for documents) or "authentication" (利用者証明用) */
  readonly key: JpkiPin;
  /** the key's PIN: held by the signer to verify again after a power cycle; never logged */
  readonly pin: string;
}

/**
 * A `Signer` whose private key is on the card: verifies the PIN, reads the key's certificate for its public key,
 * and signs SHA-256 DigestInfos with the sign instruction. Every signature is checked against the public key
 * before it is returned (a card is a device that can fail), so it is self-verifying.
 */
export async function openCardSigner(p: CardSignerParams): Promise<Signer & { readonly certificate: Buffer }> {
  const client = new JpkiCardClient(p.terminal);
  await client.verifyPin(p.key, p.pin);
  const certificate = await client.readCertificate(p.key);
  if (!certificate) throw new JpkiError("ERR_CARD_KEY_MISSING", `the card holds no ${p.key} certificate`);
  const pub = new X509Certificate(certificate).publicKey;
  const spki = pub.export({ type: "spki", format: "der" });

  async function signDigest(sha256: Uint8Array): Promise<Buffer> {
    if (sha256.length !== 32) throw new RangeError("a SHA-256 digest is 32 bytes");
    const di = digestInfo("sha256", sha256);
    let sig: Buffer;
    try {
      sig = await client.signDigestInfo(p.key, di);
    } catch (e) {
      // The session was lost (power cycle, reset): verify again, once.
      if (!(e instanceof JpkiError && e.details?.sw === SW.SECURITY_NOT_SATISFIED)) throw e;
      await client.verifyPin(p.key, p.pin);
      sig = await client.signDigestInfo(p.key, di);
    }
    let recovered: Buffer | undefined;
    try {
      recovered = publicDecrypt({ key: pub, padding: constants.RSA_PKCS1_PADDING }, sig);
    } catch {
      recovered = undefined;
    }
    if (!recovered || !recovered.equals(Buffer.from(di))) {
      throw new JpkiError("ERR_CARD_STATUS", "the card's signature does not verify with its certificate's key");
    }
    return sig;
  }

  return {
    algorithmIdentifier: SHA256_WITH_RSA,
    spki,
    selfVerifying: true,
    certificate,
    sign(data: Uint8Array | readonly Uint8Array[]): Promise<Buffer> {
      const h = createHash("sha256");
      for (const c of data instanceof Uint8Array ? [data] : data) h.update(c);
      return signDigest(h.digest());
    },
    signDigest,
  };
}
