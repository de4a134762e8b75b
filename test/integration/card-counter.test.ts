/**
 * Issue 12 point 6: the issuance flow at the counter. `jpki card issue` makes a card whose keys were generated on
 * it, with both certificates from the resident's prefecture CA; `jpki card sign` makes a CMS signature that
 * `openssl cms -verify` accepts; `jpki card renew` puts a new key and certificate on the card; an issuance cut
 * short finishes on a rerun without a second certificate.
 */
import { X509Certificate } from "node:crypto";
import { existsSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { IssuanceService } from "../../src/ca/issuance.js";
import { JpkiError } from "../../src/errors.js";
import { EmulatedCard } from "../../src/card/card.js";
import { fileCardStorage } from "../../src/card/card-state.js";
import { JpkiCardClient } from "../../src/card/client.js";
import { issueCard, renewCardCertificate } from "../../src/counter/card-issuance.js";
import { generateResidents } from "../../src/registry/fixtures.js";
import { changeResidentCode } from "../../src/registry/counter.js";
import { makeResidentCode } from "../../src/registry/resident-code.js";
import { cli, openWorkspace, sh, tempDir, tokyoWorkspace, writeJsonl } from "./helpers.js";

let dir: string;
let ws: string;
let env: Record<string, string>;
let resident: { residentCode: string; municipalityCode: string };
let other: { residentCode: string };
let people: Array<{ residentCode: string; municipalityCode: string }>;
let caPem: string;

beforeAll(async () => {
  dir = tempDir("jpki-card-counter-");
  ws = join(dir, "ws");
  env = { JPKI_CARD_CHIP_KEY_FILE: join(dir, "chip.key"), JPKI_CARD_SIGNATURE_PIN: "SIGN2026", JPKI_CARD_AUTH_PIN: "4321" };
  people = [...generateResidents({ count: 5, seed: 12, prefectures: ["13"] })];
  resident = people[0]!;
  other = people[1]!;
  writeJsonl(join(dir, "residents.jsonl"), people);
  await tokyoWorkspace(ws);
  expect((await cli(["--workspace", ws, "registry", "import", join(dir, "residents.jsonl")], { cwd: dir })).code).toBe(0);
  caPem = readFileSync(join(ws, "ca", "13-sig.pem"), "utf8");
}, 120_000);

describe("jpki card issue / sign / renew", () => {
  it("issues a card whose certificates certify keys made on the card, signs, and OpenSSL verifies the CMS", async () => {
    const card = join(dir, "alice.card");
    const r = await cli(["--workspace", ws, "--json", "card", "issue", "--resident", resident.residentCode, "--card", card, "--card-id", "ALICE01"], { cwd: dir, env });
    expect(r.code, r.stderr).toBe(0);
    const out = r.json();
    expect(out.signature.ca).toBe("13-sig");
    expect(out.authentication.ca).toBe("13-auth");
    // The card file and the administrative key are owner-only; no PIN in what the command printed.
    expect(statSync(card).mode & 0o077).toBe(0);
    expect(statSync(join(ws, "counter-admin.key")).mode & 0o077).toBe(0);
    expect(r.stdout + r.stderr).not.toContain("SIGN2026");

    // Through APDUs, as middleware would: the certificate on the card is the one issued, and CA 13-sig's.
    const c = EmulatedCard.open(fileCardStorage(card, { chipKeyFile: env.JPKI_CARD_CHIP_KEY_FILE! }));
    c.powerOn();
    const client = new JpkiCardClient(c);
    await client.verifyPin("signature", "SIGN2026");
    const onCard = await client.readCertificate("signature");
    expect(new X509Certificate(onCard!).serialNumber.toLowerCase().replace(/^0+/, "")).toBe(out.signature.serial.replace(/^0+/, ""));

    const doc = join(dir, "application.txt");
    writeFileSync(doc, "転居届の電子申請\n");
    const s = await cli(["--workspace", ws, "card", "sign", "--card", card, doc, "-o", join(dir, "application.p7s")], { cwd: dir, env });
    expect(s.code, s.stderr).toBe(0);
    // The signature carries the signer's certificate, four items and all: not for other users of the machine.
    expect(statSync(join(dir, "application.p7s")).mode & 0o077).toBe(0);
    writeFileSync(join(dir, "ca.pem"), caPem);
    const v = sh("openssl", ["cms", "-verify", "-inform", "DER", "-in", join(dir, "application.p7s"), "-CAfile", join(dir, "ca.pem"), "-purpose", "any", "-out", join(dir, "content.out")]);
    expect(v.out).toContain("Verification successful");
    expect(readFileSync(join(dir, "content.out"), "utf8")).toBe("転居届の電子申請\n");

    // A signature already there (the one sent with the application) is not replaced unasked, and the PIN is not
    // asked of the card for it; --force replaces it.
    const sent = readFileSync(join(dir, "application.p7s"));
    const sentInode = statSync(join(dir, "application.p7s")).ino;
    const again = await cli(["--workspace", ws, "--json", "card", "sign", "--card", card, doc, "-o", join(dir, "application.p7s")], { cwd: dir, env: { ...env, JPKI_CARD_SIGNATURE_PIN: "WRONG99" } });
    expect(again.code, again.stderr).toBe(2);
    expect(JSON.parse(again.stderr.slice(again.stderr.indexOf("{"))).error.code).toBe("ERR_OUTPUT_EXISTS");
    expect(readFileSync(join(dir, "application.p7s")).equals(sent)).toBe(true);
    const forced = await cli(["--workspace", ws, "card", "sign", "--card", card, doc, "-o", join(dir, "application.p7s"), "--force"], { cwd: dir, env });
    expect(forced.code, forced.stderr).toBe(0);
    expect(statSync(join(dir, "application.p7s")).ino).not.toBe(sentInode); // written anew (by rename)

    // A wrong PIN uses up a try and says how many are left; the card stays usable with the right one.
    const bad = await cli(["--workspace", ws, "card", "sign", "--card", card, doc, "-o", join(dir, "bad.p7s")], { cwd: dir, env: { ...env, JPKI_CARD_SIGNATURE_PIN: "WRONG99" } });
    expect(bad.code).toBe(18);
    expect(bad.stderr).toContain("ERR_CARD_PIN_WRONG");
    expect(bad.stderr).toContain("4 tries left");
    expect(bad.stderr).not.toContain("WRONG99");

    // Blocked after five wrong PINs; the counter resets it with the administrative key 'card issue' made.
    for (let i = 0; i < 4; i++) await cli(["--workspace", ws, "card", "sign", "--card", card, doc, "-o", join(dir, "bad.p7s")], { cwd: dir, env: { ...env, JPKI_CARD_SIGNATURE_PIN: "WRONG99" } });
    const blocked = await cli(["--workspace", ws, "card", "sign", "--card", card, doc, "-o", join(dir, "bad.p7s")], { cwd: dir, env });
    expect(blocked.stderr).toContain("ERR_CARD_PIN_BLOCKED");
    const unblocked = await cli(["--json", "card", "unblock", "--card", card, "--pin", "signature", "--admin-key-file", join(ws, "counter-admin.key")], { cwd: dir, env: { ...env, JPKI_CARD_NEW_PIN: "SIGN2026" } });
    expect(unblocked.code, unblocked.stderr).toBe(0);
    expect(unblocked.json().triesLeft).toBe(5);

    // The resident moves (転居): the counter's notice revokes the signature certificate on the card, and only it.
    const moved = await cli(["--workspace", ws, "--json", "counter", "relocate", "--resident", resident.residentCode, "--address", "東京都千代田区永田町１丁目７番１号", "--ingest"], { cwd: dir, env });
    expect(moved.code, moved.stderr).toBe(0);
    const status = async (serial: string) => {
      const w = await openWorkspace(ws);
      try {
        return (await w.store.getCertificate(serial))?.revocation?.reason;
      } finally {
        await w.close();
      }
    };
    expect(await status(out.signature.serial)).toBeDefined();
    expect(await status(out.authentication.serial)).toBeUndefined();

    // Renewal: a new key on the card and a certificate of the new address; the card signs with it again.
    const n = await cli(["--workspace", ws, "--json", "card", "renew", "--resident", resident.residentCode, "--card", card], { cwd: dir, env });
    expect(n.code, n.stderr).toBe(0);
    expect(n.json().certificate.superseded).toEqual([]);
    const s2 = await cli(["--workspace", ws, "card", "sign", "--card", card, doc, "-o", join(dir, "renewed.p7s")], { cwd: dir, env });
    expect(s2.code, s2.stderr).toBe(0);
    const v2 = sh("openssl", ["cms", "-verify", "-inform", "DER", "-in", join(dir, "renewed.p7s"), "-CAfile", join(dir, "ca.pem"), "-purpose", "any", "-out", "/dev/null", "-signer", join(dir, "signer.pem")]);
    expect(v2.out).toContain("Verification successful");
    const signer = new X509Certificate(readFileSync(join(dir, "signer.pem")));
    expect(signer.serialNumber.toLowerCase().replace(/^0+/, "")).toBe(n.json().certificate.serial.replace(/^0+/, ""));
  });

  it("finishes an issuance cut short after the signature certificate without issuing it twice", async () => {
    const wsp = await openWorkspace(ws);
    try {
      const real = new IssuanceService({ store: wsp.store, config: wsp.config, clock: wsp.clock, passphrase: "correct horse" });
      // The counter's process dies after the CA committed the signature certificate, before the card held both.
      let first: string | undefined;
      const dying = {
        checkIssuable: (a: Parameters<IssuanceService["checkIssuable"]>[0]) => real.checkIssuable(a),
        issue: async (app: Parameters<IssuanceService["issue"]>[0]) => {
          if (app.type === "authentication") throw new Error("killed");
          const c = await real.issue(app);
          first = c.serial;
          return c;
        },
      } as unknown as IssuanceService;
      const storage = fileCardStorage(join(dir, "bob.card"), { chipKeyFile: env.JPKI_CARD_CHIP_KEY_FILE!, createChipKey: true });
      const adminKey = Buffer.alloc(32, 7);
      const params = { store: wsp.store, adminKey, storage, cardId: "BOB01", residentCode: other.residentCode, signaturePin: "BOBPIN1", authenticationPin: "1111" };
      await expect(issueCard({ ...params, issuance: dying })).rejects.toThrow("killed");
      const done = await issueCard({ ...params, issuance: real });
      expect(done.resumed).toBe(true);
      expect(done.signature.alreadyIssued).toBe(true);
      expect(done.authentication.alreadyIssued).toBe(false);
      expect(done.signature.serial).toBe(first);
      expect(done.signature.superseded).toEqual([]);
      expect(done.card.info().certificates).toEqual({ signature: true, signatureCa: true, authentication: true, authenticationCa: true });
    } finally {
      await wsp.close();
    }
  });
  it("finishes an issuance cut short whose signature certificate was revoked meanwhile with a new key, never writing the revoked one", async () => {
    const wsp = await openWorkspace(ws);
    try {
      const real = new IssuanceService({ store: wsp.store, config: wsp.config, clock: wsp.clock, passphrase: "correct horse" });
      // Killed after the CA committed the signature certificate, before the card held it; then the card is reported
      // lost (or the resident moves) and that certificate is revoked before the counter runs the command again.
      let first: string | undefined;
      const dying = {
        checkIssuable: (a: Parameters<IssuanceService["checkIssuable"]>[0]) => real.checkIssuable(a),
        issue: async (app: Parameters<IssuanceService["issue"]>[0]) => {
          first = (await real.issue(app)).serial;
          throw new Error("killed");
        },
      } as unknown as IssuanceService;
      const storage = fileCardStorage(join(dir, "erin.card"), { chipKeyFile: env.JPKI_CARD_CHIP_KEY_FILE!, createChipKey: true });
      const params = { store: wsp.store, adminKey: Buffer.alloc(32, 9), storage, cardId: "ERIN01", residentCode: people[4]!.residentCode, signaturePin: "ERINPIN1", authenticationPin: "2222" };
      await expect(issueCard({ ...params, issuance: dying })).rejects.toThrow("killed");
      const keyBefore = EmulatedCard.open(storage).publicKey("signature")!;
      await wsp.store.revoke({ serial: first!, revokedAt: new Date(), reason: 1, source: "manual" });
      const done = await issueCard({ ...params, issuance: real });
      expect(done.resumed).toBe(true);
      expect(done.signature.serial).not.toBe(first);
      expect(done.signature.alreadyIssued).toBe(false);
      expect((await wsp.store.getCertificate(done.signature.serial))?.revocation).toBeUndefined();
      expect(done.card.publicKey("signature")!.equals(keyBefore)).toBe(false);
      // the card takes a certificate only for its own key in that slot (ERR_CARD_CERT_MISMATCH otherwise)
      expect(done.card.info().certificates).toEqual({ signature: true, signatureCa: true, authentication: true, authenticationCa: true });
    } finally {
      await wsp.close();
    }
  });

  it("finishes a 'card issue' rerun exactly as typed the first time (no --card-id): the card keeps its id", async () => {
    // The operator's bad day: the first run fails after the card file and its signature certificate were made (here
    // the store fails as the authentication certificate is issued), and the error says to run the same command
    // again. Without --card-id the id is random per run. (A wrong CA passphrase no longer cuts a run short there: it
    // is refused before the card file is made — the next test.)
    const card = join(dir, "carol.card");
    const args = ["--workspace", ws, "--json", "card", "issue", "--resident", people[2]!.residentCode, "--card", card];
    const wsp = await openWorkspace(ws);
    let first: Error;
    try {
      const real = new IssuanceService({ store: wsp.store, config: wsp.config, clock: wsp.clock, passphrase: "correct horse" });
      const failing = {
        checkIssuable: (a: Parameters<IssuanceService["checkIssuable"]>[0]) => real.checkIssuable(a),
        issue: (app: Parameters<IssuanceService["issue"]>[0]) => (app.type === "authentication" ? Promise.reject(new JpkiError("ERR_STORE", "disk I/O error")) : real.issue(app)),
      } as unknown as IssuanceService;
      // as 'card issue' runs it: the workspace's administrative key, the chip secret of the environment, no card id
      const adminKey = Buffer.from(readFileSync(join(ws, "counter-admin.key"), "utf8").trim(), "hex");
      const storage = fileCardStorage(card, { chipKeyFile: env.JPKI_CARD_CHIP_KEY_FILE! });
      first = await issueCard({ issuance: failing, store: wsp.store, adminKey, storage, residentCode: people[2]!.residentCode, signaturePin: "SIGN2026", authenticationPin: "4321" }).then(
        () => new Error("issued"),
        (e: unknown) => e as Error,
      );
    } finally {
      await wsp.close();
    }
    expect(first).toMatchObject({ code: "ERR_STORE" });
    // the error says the card file was made and how to finish it (nothing said it was there)
    expect(first.message).toContain(`${card} now holds card`);
    expect(first.message).toContain("the same command run again finishes it");
    const made = EmulatedCard.open(fileCardStorage(card, { chipKeyFile: env.JPKI_CARD_CHIP_KEY_FILE! })).info();
    // The same half-made card for someone else (a clerk's wrong resident code): refused, the card left as it was.
    // Its keys were made under the first resident's PINs.
    const wrong = await cli(["--workspace", ws, "--json", "card", "issue", "--resident", people[3]!.residentCode, "--card", card], { cwd: dir, env });
    expect(wrong.code).toBe(2);
    expect(wrong.stderr).toMatch(/ERR_USAGE.*begun for another resident/s);
    expect(wrong.stderr).not.toContain(people[2]!.residentCode);
    expect(EmulatedCard.open(fileCardStorage(card, { chipKeyFile: env.JPKI_CARD_CHIP_KEY_FILE! })).info()).toEqual(made);
    const again = await cli(args, { cwd: dir, env });
    expect(again.code, again.stderr).toBe(0);
    expect(again.json()).toMatchObject({ resumed: true, alreadyComplete: false, cardId: made.cardId });
    // Run once more on the finished card: nothing was interrupted, and nothing is issued (the same certificates).
    const third = await cli(args.filter((a) => a !== "--json"), { cwd: dir, env });
    expect(third.code, third.stderr).toBe(0);
    expect(third.stdout).toContain(`card ${made.cardId} in ${card} already held both certificates: nothing was issued`);
    expect(third.stdout).toContain(`serial ${again.json().signature.serial}`);
  });

  it("refuses a new card with a wrong CA passphrase before anything is made: no card file, no administrative key", async () => {
    const fresh = join(dir, "ws-fresh");
    expect((await cli(["--workspace", fresh, "ca", "init", "--prefecture", "13"], { cwd: dir })).code).toBe(0);
    expect((await cli(["--workspace", fresh, "registry", "import", join(dir, "residents.jsonl")], { cwd: dir })).code).toBe(0);
    const card = join(dir, "refused.card");
    const args = ["--workspace", fresh, "card", "issue", "--resident", people[3]!.residentCode, "--card", card];
    const r = await cli(args, { cwd: dir, env: { ...env, JPKI_PASSPHRASE: "wrong passphrase" } });
    expect(r.code).toBe(5);
    expect(r.stderr).toContain("ERR_PASSPHRASE_WRONG");
    expect(r.stderr).not.toContain("now holds card");
    expect(existsSync(card)).toBe(false);
    expect(existsSync(join(fresh, "counter-admin.key"))).toBe(false);
    // the library refuses alike, for a caller that is not the CLI
    const wsp = await openWorkspace(fresh);
    try {
      const wrong = new IssuanceService({ store: wsp.store, config: wsp.config, clock: wsp.clock, passphrase: "wrong passphrase" });
      const storage = fileCardStorage(card, { chipKeyFile: env.JPKI_CARD_CHIP_KEY_FILE!, createChipKey: true });
      await expect(issueCard({ issuance: wrong, store: wsp.store, adminKey: Buffer.alloc(32, 4), storage, residentCode: people[3]!.residentCode, signaturePin: "DAVEPIN1", authenticationPin: "5555" })).rejects.toMatchObject({ code: "ERR_PASSPHRASE_WRONG" });
      expect(existsSync(card)).toBe(false);
    } finally {
      await wsp.close();
    }
    const ok = await cli(args, { cwd: dir, env });
    expect(ok.code, ok.stderr).toBe(0);
  });

  it("runs one counter procedure on a card at a time: two renewals at once never leave a superseded certificate on the card", async () => {
    const wsp = await openWorkspace(ws);
    try {
      const real = new IssuanceService({ store: wsp.store, config: wsp.config, clock: wsp.clock, passphrase: "correct horse" });
      const chipKeyFile = env.JPKI_CARD_CHIP_KEY_FILE!;
      const path = join(dir, "dave.card");
      const adminKey = Buffer.alloc(32, 5);
      const holder = people[3]!.residentCode;
      await issueCard({ issuance: real, store: wsp.store, adminKey, storage: fileCardStorage(path, { chipKeyFile, createChipKey: true }), cardId: "DAVE01", residentCode: holder, signaturePin: "DAVEPIN1", authenticationPin: "3333" });
      // Two clerks renew the card at once (each process opens the card file). The first to reach the CA is held
      // there until the second's certificate is committed: the first then commits last and supersedes the second's,
      // whose key is the one on the card (made last). Unserialised, the second wrote its superseded certificate to
      // the card and reported success, and the first's valid certificate certified a key the card no longer held.
      let release!: () => void;
      const gate = new Promise<void>((r) => (release = r));
      let calls = 0;
      const slow = {
        checkIssuable: (a: Parameters<IssuanceService["checkIssuable"]>[0]) => real.checkIssuable(a),
        issue: async (app: Parameters<IssuanceService["issue"]>[0]) => {
          const n = ++calls;
          if (n === 1) await gate;
          try {
            return await real.issue(app);
          } finally {
            if (n === 2) release();
          }
        },
      } as unknown as IssuanceService;
      const open = () => EmulatedCard.open(fileCardStorage(path, { chipKeyFile }));
      const settled = await Promise.allSettled(
        [open(), open()].map((card) => renewCardCertificate({ card, issuance: slow, store: wsp.store, adminKey, residentCode: holder }).finally(release)),
      );
      const c = open();
      c.powerOn();
      const client = new JpkiCardClient(c);
      await client.verifyPin("signature", "DAVEPIN1");
      const onCard = new X509Certificate((await client.readCertificate("signature"))!).serialNumber.toLowerCase().replace(/^0+/, "");
      const row = (await wsp.store.findCertificates({ residentCode: holder, type: "signature" })).find((r) => r.serial.replace(/^0+/, "") === onCard);
      expect(row).toBeDefined();
      expect(row!.revocation).toBeUndefined();
      const done = settled.flatMap((s) => (s.status === "fulfilled" ? [s.value] : []));
      expect(done.length).toBeGreaterThan(0);
      // what a command reports done is the certificate the card holds, and a valid one
      for (const d of done) expect(d.serial.replace(/^0+/, "")).toBe(onCard);
      // the other clerk is told the card is busy, not handed an error from the middle of a procedure
      for (const s of settled) if (s.status === "rejected") expect(s.reason).toMatchObject({ code: "ERR_WORKSPACE_LOCKED" });
    } finally {
      await wsp.close();
    }
  });

  it("renews nothing when the new certificate would be refused (wrong passphrase): the card keeps its valid key and certificate", async () => {
    const wsp = await openWorkspace(ws);
    try {
      const chipKeyFile = env.JPKI_CARD_CHIP_KEY_FILE!;
      const card = EmulatedCard.open(fileCardStorage(join(dir, "dave.card"), { chipKeyFile }));
      const before = { info: card.info(), key: card.publicKey("authentication")! };
      expect(before.info.certificates.authentication).toBe(true);
      const wrong = new IssuanceService({ store: wsp.store, config: wsp.config, clock: wsp.clock, passphrase: "wrong horse" });
      await expect(renewCardCertificate({ card, issuance: wrong, store: wsp.store, adminKey: Buffer.alloc(32, 5), residentCode: people[3]!.residentCode, type: "authentication" })).rejects.toMatchObject({ code: "ERR_PASSPHRASE_WRONG" });
      const after = EmulatedCard.open(fileCardStorage(join(dir, "dave.card"), { chipKeyFile }));
      expect(after.info()).toEqual(before.info);
      expect(after.publicKey("authentication")!.equals(before.key)).toBe(true);
    } finally {
      await wsp.close();
    }
  });

  // A PIN variable set from a file with its newline (a mounted secret, an env file) was refused as a PIN of the
  // wrong form (ERR_CARD_PIN_FORMAT): one final line break is dropped, as --pins-stdin's lines and JPKI_PKCS11_PIN lose theirs.
  it("card issue and card sign take JPKI_CARD_SIGNATURE_PIN / JPKI_CARD_AUTH_PIN ending with a line break as the PIN without it", async () => {
    const card = join(dir, "frank.card");
    const nl = { ...env, JPKI_CARD_SIGNATURE_PIN: "SIGN2026\n", JPKI_CARD_AUTH_PIN: "4321\r\n" };
    const r = await cli(["--workspace", ws, "--json", "card", "issue", "--resident", people[4]!.residentCode, "--card", card], { cwd: dir, env: nl });
    expect(r.code, r.stderr).toBe(0);
    const doc = join(dir, "frank.txt");
    writeFileSync(doc, "application\n");
    const signed = await cli(["--workspace", ws, "card", "sign", "--card", card, doc], { cwd: dir, env: { ...nl, JPKI_CARD_SIGNATURE_PIN: "SIGN2026\r\n" } });
    expect(signed.code, signed.stderr).toBe(0);
    // the PINs set are those without the line break, and no try was used
    const c = EmulatedCard.open(fileCardStorage(card, { chipKeyFile: env.JPKI_CARD_CHIP_KEY_FILE! }));
    c.powerOn();
    const client = new JpkiCardClient(c);
    await client.verifyPin("signature", "SIGN2026");
    await client.verifyPin("authentication", "4321");
    expect(c.info().triesLeft).toMatchObject({ signature: 5, authentication: 3 });
  });

  it("refuses to renew a card for a resident other than its holder, leaving the holder's key and certificate", async () => {
    // Bob's card from the test above: a clerk types Alice's resident code by mistake (or on purpose).
    const wsp = await openWorkspace(ws);
    try {
      const issuance = new IssuanceService({ store: wsp.store, config: wsp.config, clock: wsp.clock, passphrase: "correct horse" });
      const card = EmulatedCard.open(fileCardStorage(join(dir, "bob.card"), { chipKeyFile: env.JPKI_CARD_CHIP_KEY_FILE! }));
      const before = card.publicKey("signature");
      await expect(renewCardCertificate({ card, issuance, store: wsp.store, adminKey: Buffer.alloc(32, 7), residentCode: resident.residentCode })).rejects.toMatchObject({ code: "ERR_CARD_RESIDENT_MISMATCH" });
      expect(card.publicKey("signature")!.equals(before!)).toBe(true);
      expect(card.info().certificates.signature).toBe(true);
      expect(await wsp.store.findCertificates({ residentCode: resident.residentCode, type: "signature", status: "valid" })).toHaveLength(1);
      // Bob's resident code changes at the counter (the notice not yet ingested by the CA side): still Bob's card.
      const newCode = makeResidentCode(other.residentCode.slice(0, 9) === "999999999" ? "8888888888" : "9999999999");
      await changeResidentCode(wsp.store, other.residentCode, newCode, { now: wsp.clock.now() });
      const renewed = await renewCardCertificate({ card, issuance, store: wsp.store, adminKey: Buffer.alloc(32, 7), residentCode: newCode });
      expect(renewed.residentCode).toBe(newCode);
    } finally {
      await wsp.close();
    }
  });

  it("a resident who dies between the check and the issuance: the card left is said to be finished by no rerun", async () => {
    const wsp = await openWorkspace(ws);
    try {
      const real = new IssuanceService({ store: wsp.store, config: wsp.config, clock: wsp.clock, passphrase: "correct horse" });
      const holder = people[0]!.residentCode;
      // the death is recorded after issueCard checked the resident, before the CA signs
      const dies = {
        checkIssuable: (a: Parameters<IssuanceService["checkIssuable"]>[0]) => real.checkIssuable(a),
        issue: () => Promise.reject(new JpkiError("ERR_RESIDENT_NOT_ELIGIBLE", `resident ${holder} is deceased in the registry: no certificate can be issued`)),
      } as unknown as IssuanceService;
      const storage = fileCardStorage(join(dir, "late.card"), { chipKeyFile: env.JPKI_CARD_CHIP_KEY_FILE!, createChipKey: true });
      const err = await issueCard({ issuance: dies, store: wsp.store, adminKey: Buffer.alloc(32, 3), storage, residentCode: holder, signaturePin: "LATEPIN1", authenticationPin: "4444" }).catch((e: unknown) => e);
      expect(err).toMatchObject({ code: "ERR_RESIDENT_NOT_ELIGIBLE" });
      expect((err as Error).message).toContain("no rerun finishes it: delete the file");
      expect((err as Error).message).not.toContain("the same command run again finishes it");
    } finally {
      await wsp.close();
    }
  });

  it("makes no card for a resident no certificate can be issued to (unknown, dead): nothing left that no rerun finishes", async () => {
    const unknown = makeResidentCode("1111111111");
    const dead = people[2]!.residentCode;
    const died = await cli(["--workspace", ws, "counter", "death", "--resident", dead], { cwd: dir, env });
    expect(died.code, died.stderr).toBe(0);
    for (const [code, error] of [[unknown, "ERR_RESIDENT_UNKNOWN"], [dead, "ERR_RESIDENT_NOT_ELIGIBLE"]] as const) {
      const card = join(dir, `never-${code}.card`);
      const r = await cli(["--workspace", ws, "card", "issue", "--resident", code, "--card", card], { cwd: dir, env });
      expect(r.code).toBe(7);
      expect(r.stderr).toContain(error);
      expect(r.stderr).not.toContain("run again finishes it");
      expect(existsSync(card)).toBe(false);
    }
  });
});
