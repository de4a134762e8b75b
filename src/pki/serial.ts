/**
 * Certificate serial numbers, RFC 5280 §4.1.2.2: positive, at most 20 octets. Ours: 128 random bits
 * (the spec asks ≥ 64), so collisions are negligible; the store's unique key still refuses a repeat.
 */
import { randomBytes } from "node:crypto";

/** 16 octets, first octet 0x01–0x7f: positive and already minimal in DER (no padding byte, no leading zero). */
// Random bytes are drawn in blocks: one CSPRNG call per 256 serials instead of one per serial.
let pool = Buffer.alloc(0);
let poolOffset = 0;

export function randomSerial(): Buffer {
  if (poolOffset + 16 > pool.length) {
    pool = randomBytes(4096);
    poolOffset = 0;
  }
  const b = Buffer.from(pool.subarray(poolOffset, poolOffset + 16));
  pool.fill(0, poolOffset, poolOffset + 16);
  poolOffset += 16;
  b[0] = (b[0]! & 0x7f) || 0x01;
  return b;
}

/** Lower-case hex without separators, the form the store and CLI use. */
export function serialHex(serial: Uint8Array): string {
  return Buffer.from(serial).toString("hex");
}

/** Normalises user input: accepts hex with optional 0x, colons or spaces; strips leading zero octets. */
export function normaliseSerial(input: string): string | undefined {
  const s = input.trim().replace(/^0x/i, "").replace(/[:\s]/g, "").toLowerCase();
  if (!/^[0-9a-f]+$/.test(s)) return undefined;
  let h = s.length % 2 ? "0" + s : s;
  while (h.length > 2 && h.startsWith("00")) h = h.slice(2);
  return h;
}
