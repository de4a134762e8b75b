/**
 * The card's private keys never leave the card (README "Security notes", STYLE.md §8): nothing the public API
 * hands a caller — the storage handles, the card object, what their methods return — and nothing `jpki card …`
 * writes (JSON, text, errors) holds any of a card key's private numbers or its PKCS#8 encoding. Only the card's
 * own modules reach the state (stateStoreOf, not exported from src/index.ts); this test uses it to learn the key
 * it then looks for everywhere else.
 */
import { copyFileSync, mkdtempSync, readFileSync, writeFileSync } from "node:fs";
import { createPrivateKey } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inspect } from "node:util";
import { beforeAll, describe, expect, it } from "vitest";
import { certificateFor, rsaKey } from "../../test/card-fixtures.js";
import * as api from "../index.js";
import { runInProcess } from "../../test/cli-in-process.js";
import { stateStoreOf } from "./card-state.js";

const ADMIN = api.newAdminKey();
let dir: string;
let env: Record<string, string>;
let cardFile: string;
/** every form in which a card key's private part could show up in a string */
let secrets: Array<{ what: string; text: string }>;

function formsOf(what: string, bytes: Buffer): Array<{ what: string; text: string }> {
  const head = bytes.subarray(0, 30); // 30 bytes: a whole number of base64 groups, so a prefix encodes as a prefix
  return [
    { what: `${what} hex`, text: head.toString("hex") },
    { what: `${what} HEX`, text: head.toString("hex").toUpperCase() },
    { what: `${what} base64`, text: head.toString("base64") },
    { what: `${what} base64url`, text: head.toString("base64url") },
    { what: `${what} bytes`, text: [...head.subarray(0, 12)].join(",") },
  ];
}

function leaks(out: string): string[] {
  return secrets.filter((s) => out.includes(s.text)).map((s) => s.what);
}

const show = (v: unknown) => inspect(v, { showHidden: true, depth: Infinity, getters: true, maxArrayLength: Infinity, maxStringLength: Infinity });

async function jpki(args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}) {
  const r = await runInProcess(args, { env: { ...env, ...opts.env }, cwd: dir, ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}) });
  return { code: r.code, out: r.stdout + r.stderr };
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "jpki-card-secrecy-"));
  env = { JPKI_CARD_CHIP_KEY_FILE: join(dir, "chip.key") };
  cardFile = join(dir, "card-0001.card");
  const storage = api.fileCardStorage(cardFile, { chipKeyFile: env.JPKI_CARD_CHIP_KEY_FILE!, createChipKey: true });
  const card = api.EmulatedCard.create({ storage, cardId: "card-0001", adminKey: ADMIN, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
  const spki = await card.generateKeyPair(ADMIN, "signature");
  await card.generateKeyPair(ADMIN, "authentication");
  const ca = rsaKey();
  card.writeCertificate(ADMIN, "signature", await certificateFor({ spki, caKey: ca, subject: "resident", issuer: "CA", serial: 2 }));
  secrets = [{ what: "PEM marker", text: "PRIVATE KEY" }];
  const keys = stateStoreOf(storage).load().keys;
  for (const id of ["signature", "authentication"] as const) {
    const pkcs8 = Buffer.from(keys[id]!, "base64");
    const jwk = createPrivateKey({ key: pkcs8, format: "der", type: "pkcs8" }).export({ format: "jwk" });
    secrets.push({ what: `${id} PKCS#8 (base64)`, text: keys[id]!.slice(200, 260) });
    for (const part of ["d", "p", "q", "dp", "dq", "qi"] as const) secrets.push(...formsOf(`${id} ${part}`, Buffer.from(jwk[part]!, "base64url")));
  }
  writeFileSync(join(dir, "doc.txt"), "申請書\n");
});

describe("the public API", () => {
  it("exports no way to the card's state", () => {
    expect(Object.keys(api)).not.toContain("stateStoreOf");
    expect(Object.keys(api)).not.toContain("cardStorageOf");
    expect(Object.keys(api)).not.toContain("decryptCardState");
  });

  it("a storage handle holds and returns nothing of the keys: no load, no save, nothing printable", () => {
    for (const storage of [api.fileCardStorage(cardFile, { chipKeyFile: env.JPKI_CARD_CHIP_KEY_FILE! }), api.memoryCardStorage()]) {
      const seen: string[] = [show(storage), JSON.stringify(storage) ?? ""];
      for (const k of [...Object.getOwnPropertyNames(storage), ...Object.getOwnPropertySymbols(storage)]) {
        const v = (storage as unknown as Record<string | symbol, unknown>)[k];
        // every method that needs no argument, called: load() was one and returned the whole state
        if (typeof v === "function" && v.length === 0) seen.push(show((v as () => unknown).call(storage)));
      }
      expect(Object.keys(storage).sort()).toEqual(["exists", "where"]);
      expect(leaks(seen.join("\n")), storage.where).toEqual([]);
    }
  });

  it("a card object shows nothing of its keys: printed, serialised, or through any method", async () => {
    const card = api.EmulatedCard.open(api.fileCardStorage(cardFile, { chipKeyFile: env.JPKI_CARD_CHIP_KEY_FILE! }));
    const seen: string[] = [show(card), JSON.stringify(card) ?? "", show(card.info())];
    for (const k of Object.getOwnPropertyNames(api.EmulatedCard.prototype)) {
      const v = (card as unknown as Record<string, unknown>)[k];
      if (typeof v === "function" && v.length === 0 && k !== "constructor") seen.push(show((v as () => unknown).call(card)));
    }
    seen.push(show(card.publicKey("signature")), show(card.publicKey("authentication")));
    // and what a signer built on the card exposes
    const signer = await api.openCardSigner({ terminal: card, key: "signature", pin: "SIGPIN2026" });
    seen.push(show(signer), show(await signer.sign(Buffer.from("x"))));
    expect(leaks(seen.join("\n"))).toEqual([]);
  });
});

describe("jpki card … (text and --json, results and errors)", () => {
  it("writes nothing of the keys", async () => {
    const adminHex = ADMIN.toString("hex");
    const damaged = join(dir, "damaged.card");
    copyFileSync(cardFile, damaged);
    const bytes = readFileSync(damaged);
    bytes[bytes.length - 1]! ^= 1;
    writeFileSync(damaged, bytes);
    const runs = [
      await jpki(["--json", "card", "info", "--card", "card-0001.card"]),
      await jpki(["card", "info", "--card", "card-0001.card"]),
      await jpki(["--json", "card", "sign", "--card", "card-0001.card", "doc.txt"], { env: { JPKI_CARD_SIGNATURE_PIN: "SIGPIN2026" } }),
      await jpki(["--json", "card", "sign", "--card", "card-0001.card", "-o", "wrong.p7s", "doc.txt"], { env: { JPKI_CARD_SIGNATURE_PIN: "WRONG2026" } }),
      await jpki(["--json", "card", "unblock", "--card", "card-0001.card", "--pin", "signature"], { env: { JPKI_CARD_ADMIN_KEY: adminHex, JPKI_CARD_NEW_PIN: "SIGPIN2026" } }),
      await jpki(["--json", "card", "unblock", "--card", "card-0001.card", "--pin", "signature"], { env: { JPKI_CARD_ADMIN_KEY: "00".repeat(32), JPKI_CARD_NEW_PIN: "SIGPIN2026" } }),
      await jpki(["--json", "card", "info", "--card", "damaged.card"]),
    ];
    expect(runs.map((r) => r.code)).toEqual([0, 0, 0, 18, 0, 18, 18]);
    // the signature file the card made: a signature, a certificate, the document — no key
    const p7s = readFileSync(join(dir, "doc.txt.p7s"));
    expect(leaks(runs.map((r) => r.out).join("\n") + p7s.toString("latin1") + p7s.toString("hex") + p7s.toString("base64"))).toEqual([]);
  });
});
