/**
 * The DER the notice bench stores for each of its certificates (JPKI_BENCH_NOTICE_DER). Signing two million real
 * certificates would take many minutes, so by default every row gets one 64-octet placeholder. Nothing on the notice
 * or CRL path reads a certificate's DER (the notice batch reads the certified columns, the CRL the revocation log),
 * but its size decides how rows lie on pages: on PostgreSQL how many rows share a heap page, and so whether a
 * revocation stays a HOT update (README "Scaling out": with ≈ 1.45 KB DERs 84 % do at fillfactor 80, not all);
 * on SQLite the size of the `certificates` table, of the file, and with it the page cache a connection is given.
 *
 * `real`: each certificate is built by its CA's own `certify()` (the issuance code's TBS, profile and extensions,
 * the resident's four items in the signature certificate's subjectAltName), over a fresh RSA-2048 public key with
 * a random modulus, and "signed" by a stand-in signer that returns random octets of the CA key's signature length.
 * So the size is the one issuance produces for that resident, the bytes are as random where a real certificate's
 * are (modulus, signature, key identifier), and what the stores parse out of a DER at issuance works as for a real
 * one: each row gets its own certified key (its own entry in that index; the key-in-use check runs for it) and
 * its own digest prefix. Only the signature does not verify. The serial in the DER is the row's serial.
 */
import { randomFillSync } from "node:crypto";
import { caId, CertificationAuthority } from "../src/ca/authority.js";
import { activeGeneration } from "../src/ca/ids.js";
import { certificateParts } from "../src/pki/der.js";
import { signatureShape, type Signer } from "../src/pki/signer.js";
import type { CertificateType, FourItems } from "../src/profile/types.js";
import { municipality } from "../src/registry/municipality.js";
import type { Store } from "../src/store/types.js";
import type { WorkspaceConfig } from "../src/workspace/config.js";

/** What JPKI_BENCH_NOTICE_DER selects: the 64-octet placeholder (default) or certificates of real size and shape. */
export type NoticeDerKind = "placeholder" | "real";

/** JPKI_BENCH_NOTICE_DER's value as a kind; anything else is a mistake worth stopping the bench for. */
export function noticeDerKind(value: string | undefined): NoticeDerKind {
  if (value === undefined || value === "" || value === "placeholder") return "placeholder";
  if (value === "real") return "real";
  throw new Error(`JPKI_BENCH_NOTICE_DER=${value}: "real" (certificates of real size and shape) or "placeholder" (64 octets, the default)`);
}

/** The placeholder every row shares by default: 64 octets, no certificate (no key to read: certified_key ''). */
export const PLACEHOLDER_DER: Buffer = Buffer.alloc(64, 0x30);

/** Random octets for moduli and signatures, filled a few hundred certificates' worth at a time. */
class RandomPool {
  #pool = Buffer.alloc(0);
  #at = 0;
  take(n: number): Buffer {
    if (this.#at + n > this.#pool.length) {
      this.#pool = randomFillSync(Buffer.allocUnsafe(Math.max(n, 256 * 1024)));
      this.#at = 0;
    }
    const b = this.#pool.subarray(this.#at, this.#at + n);
    this.#at += n;
    return b;
  }
}

/** A Signer with a CA's public key whose "signatures" are random octets of that key's signature length. */
class StandInSigner implements Signer {
  readonly algorithmIdentifier: Buffer;
  readonly spki: Buffer;
  readonly selfVerifying = true;
  readonly #length: number;
  readonly #random: RandomPool;
  constructor(spki: Buffer, random: RandomPool) {
    const shape = signatureShape(spki);
    this.spki = spki;
    this.algorithmIdentifier = shape.algorithmIdentifier;
    this.#length = shape.length;
    this.#random = random;
  }
  async sign(): Promise<Buffer> {
    return Buffer.from(this.#random.take(this.#length));
  }
  async signDigest(): Promise<Buffer> {
    return Buffer.from(this.#random.take(this.#length));
  }
}

/** Where the modulus lies in an RSA-2048 SubjectPublicKeyInfo (30 82 01 22 … 02 82 01 01 00 <256 octets> 02 03 01 00 01). */
const MODULUS_START = 33;
const MODULUS_END = 289;

/**
 * An RSA-2048 SubjectPublicKeyInfo of a random odd 2048-bit modulus (exponent 65537): the shape every card key has,
 * a key no one holds the private half of. The header is fixed; the template's bytes are written out here so no key
 * pair need be generated.
 */
const SPKI_HEAD = Buffer.from("30820122300d06092a864886f70d01010105000382010f003082010a0282010100", "hex");
const SPKI_TAIL = Buffer.from("0203010001", "hex");

function randomRsa2048Spki(random: RandomPool): Buffer {
  const spki = Buffer.concat([SPKI_HEAD, random.take(MODULUS_END - MODULUS_START), SPKI_TAIL]);
  spki[MODULUS_START] = spki[MODULUS_START]! | 0x80; // 2048 bits exactly
  spki[MODULUS_END - 1] = spki[MODULUS_END - 1]! | 1; // odd, as an RSA modulus is
  return spki;
}

/** What one bench certificate certifies (the fields of its issuance record the DER carries). */
export interface BenchCertificate {
  readonly serial: string;
  readonly type: CertificateType;
  readonly municipalityCode: string;
  readonly fourItems: FourItems;
  readonly notAfter: Date;
}

/** Certificates of real size and shape for the notice bench's rows, made by each CA's own certify() (see the file's head). */
export class BenchCertificates {
  readonly #cas = new Map<string, CertificationAuthority>();
  readonly #random = new RandomPool();
  readonly #config: WorkspaceConfig;
  readonly #records: Awaited<ReturnType<Store["listCas"]>>;

  private constructor(records: Awaited<ReturnType<Store["listCas"]>>, config: WorkspaceConfig) {
    this.#records = records;
    this.#config = config;
  }

  /** For the CAs `store` holds (their active generations), under the workspace's `config`. No passphrase: nothing is signed. */
  static async open(store: Store, config: WorkspaceConfig): Promise<BenchCertificates> {
    return new BenchCertificates(await store.listCas(), config);
  }

  #ca(prefectureCode: string, type: CertificateType): CertificationAuthority {
    const id = caId(prefectureCode, type);
    let ca = this.#cas.get(id);
    if (!ca) {
      const rec = activeGeneration(this.#records, prefectureCode, type);
      if (!rec) throw new Error(`bench notices: no CA ${id} to make certificates with`);
      ca = CertificationAuthority.withSigner(rec, new StandInSigner(Buffer.from(certificateParts(rec.certificateDer).spki), this.#random), this.#config);
      this.#cas.set(id, ca);
    }
    return ca;
  }

  /**
   * The DER of `c` as its CA would issue it at `issuedAt` (the counter the municipality's default, as issuance
   * names it), carrying `c.serial` (32 hexadecimal digits, first octet 01–7f: the length of the serials issuance
   * makes) in place of the one certify() drew.
   */
  async der(c: BenchCertificate, issuedAt: Date): Promise<Buffer> {
    const ca = this.#ca(c.municipalityCode.slice(0, 2), c.type);
    const made = await ca.certify({
      type: c.type,
      municipalityCode: c.municipalityCode,
      municipalityRomaji: municipality(c.municipalityCode).romaji,
      fourItems: c.fourItems,
      spki: randomRsa2048Spki(this.#random),
      requestedAt: issuedAt,
      counterId: `${c.municipalityCode}000`,
      notAfter: c.notAfter,
    });
    const serial = Buffer.from(c.serial, "hex");
    const tlv = certificateParts(made.der).serial;
    // certify()'s serial is 16 octets with a first octet of 01–7f (pki/serial.ts): INTEGER 02 10 <16 octets>
    if (serial.length !== 16 || serial[0]! === 0 || serial[0]! > 0x7f || tlv.length !== 18) {
      throw new Error(`bench notices: serial ${c.serial} is not 16 octets of 01–7f first, as issuance's are`);
    }
    serial.copy(tlv, 2);
    return made.der;
  }
}
