/**
 * Card public keys for the benches: one RSA-2048 key per certificate, as every card makes its own (a store
 * certifies a key to one resident: ERR_KEY_IN_USE). Generating thousands of real key pairs would take minutes,
 * and the CA never needs the private half: each key is one real SubjectPublicKeyInfo with 16 random octets of
 * its modulus replaced — still a 2048-bit odd modulus, a well-formed RSA public key no one holds the private
 * key of.
 */
import { generateKeyPairSync, randomBytes } from "node:crypto";

/** Where the replaced octets start: inside the modulus, past its leading octets, well before its last. */
const MODULUS_MIDDLE = 100;

export function cardPublicKeys(count: number): Buffer[] {
  const template = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
  return Array.from({ length: count }, () => {
    const spki = Buffer.from(template);
    randomBytes(16).copy(spki, MODULUS_MIDDLE);
    return spki;
  });
}
