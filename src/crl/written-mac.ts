/**
 * Proof that a staged file read back is, byte for byte, what was written to it: a GMAC (NIST SP 800-38D §3: GCM
 * over additional data only, no plaintext) under an AES-256 key and IV drawn for one file and never shown to
 * anyone, fed once with the bytes as written and once, by a twin under the same key, with the bytes as read.
 *
 * Why not SHA-256 of both: the publisher already takes two SHA-256 passes over a CRL (the TBS it signs, the file
 * digest the audit log records), each ≈ 30 ms for a 1,000,000-entry CRL (44 MB); a third was only there to tie
 * the bytes read back to the bytes written. GHASH does that at ≈ 6 ms per pass (carry-less multiplication). It
 * is not collision resistant to someone who knows the key, and needs not be: the key lives in this process for
 * one publication, so bytes changed on disk between the write and the read-back (a torn write, another process,
 * a faulty disk) match the written tag with probability at most (44 MB / 16 + 1) / 2^128. Both tags come from
 * one key and IV, which is safe as neither tag ever leaves the process.
 */
import { createCipheriv, randomBytes, timingSafeEqual, type CipherGCM } from "node:crypto";

export class WrittenMac {
  readonly #key: Buffer;
  readonly #iv: Buffer;
  readonly #gcm: CipherGCM;
  #bytes = 0;
  #tag: Buffer | undefined;

  constructor(key: Buffer = randomBytes(32), iv: Buffer = randomBytes(12)) {
    this.#key = key;
    this.#iv = iv;
    this.#gcm = createCipheriv("aes-256-gcm", key, iv);
  }

  /** How many bytes went in. */
  get bytes(): number {
    return this.#bytes;
  }

  update(chunk: Uint8Array): void {
    if (this.#tag) throw new Error("WrittenMac: update after tag()");
    if (!chunk.length) return;
    this.#gcm.setAAD(chunk);
    this.#bytes += chunk.length;
  }

  /** The tag of everything that went in; nothing more may go in after. */
  tag(): Buffer {
    if (!this.#tag) {
      this.#gcm.final();
      this.#tag = this.#gcm.getAuthTag();
    }
    return this.#tag;
  }

  /** A new MAC under the same key, to be fed the same bytes from elsewhere (the file as read back). */
  twin(): WrittenMac {
    return new WrittenMac(this.#key, this.#iv);
  }

  /** Whether this MAC and `other` took the same number of bytes and give the same tag. */
  matches(other: WrittenMac): boolean {
    return this.#bytes === other.bytes && timingSafeEqual(this.tag(), other.tag());
  }
}
