/** `jpki card info` and `jpki card unblock`, driven in-process on a card file. */
import { chmodSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { fileCardStorage } from "../../card/card-state.js";
import { EmulatedCard, newAdminKey } from "../../card/card.js";
import { parseResponse } from "../../card/apdu.js";
import { runInProcess } from "../../../test/cli-in-process.js";
import { Workspace } from "../../workspace/workspace.js";

const ADMIN = newAdminKey();
let dir: string;
let env: Record<string, string>;
const cardFile = () => join(dir, "card-0001.card");

function jpki(args: string[], opts: { stdin?: string; env?: Record<string, string> } = {}) {
  return runInProcess(args, { env: { ...env, ...opts.env }, cwd: dir, ...(opts.stdin !== undefined ? { stdin: opts.stdin } : {}) });
}

beforeAll(async () => {
  dir = mkdtempSync(join(tmpdir(), "jpki-card-cli-"));
  env = { JPKI_CARD_CHIP_KEY_FILE: join(dir, "chip.key") };
  const card = EmulatedCard.create({
    storage: fileCardStorage(cardFile(), { chipKeyFile: env.JPKI_CARD_CHIP_KEY_FILE, createChipKey: true }),
    cardId: "card-0001",
    adminKey: ADMIN,
    signaturePin: "SIGPIN2026",
    authenticationPin: "4321",
  });
  // block the authentication PIN through the card itself
  const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
  await card.transmit(hex("00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01"));
  await card.transmit(hex("00 A4 02 0C 02 00 18"));
  for (let i = 0; i < 3; i++) parseResponse(await card.transmit(hex("00 20 00 80 04 30 30 30 30")));
});

describe("jpki card", () => {
  it("info shows the label, certificates, keys and tries left", async () => {
    const r = await jpki(["--json", "card", "info", "--card", "card-0001.card"]);
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({
      cardId: "card-0001",
      tokenLabel: "JPKIAPICCTOKEN",
      certificates: { signature: false, authentication: false },
      triesLeft: { signature: 5, authentication: 0 },
    });
    const text = await jpki(["card", "info", "--card", "card-0001.card"]);
    expect(text.stdout).toContain("authentication 0 (blocked)");
  });

  it("info without the chip secret exits 18 with ERR_CARD_CHIP_KEY_MISSING", async () => {
    const r = await jpki(["--json", "card", "info", "--card", "card-0001.card"], { env: { JPKI_CARD_CHIP_KEY_FILE: join(dir, "none.key") } });
    expect(r.code).toBe(18);
    expect(r.stderr).toContain("ERR_CARD_CHIP_KEY_MISSING");
  });

  it("unblock takes the admin key and the new PIN from stdin, refuses a wrong key", async () => {
    const wrong = await jpki(["card", "unblock", "--card", "card-0001.card", "--pin", "authentication"], { stdin: `${newAdminKey().toString("hex")}\n1357\n` });
    expect(wrong.code).toBe(18);
    expect(wrong.stderr).toContain("ERR_CARD_ADMIN_KEY_WRONG");
    const badPin = await jpki(["card", "unblock", "--card", "card-0001.card", "--pin", "authentication"], { stdin: `${ADMIN.toString("hex")}\n13579\n` });
    expect(badPin.stderr).toContain("ERR_CARD_PIN_FORMAT");
    expect(badPin.stderr).not.toContain("13579");
    const ok = await jpki(["--json", "card", "unblock", "--card", "card-0001.card", "--pin", "authentication"], { stdin: `${ADMIN.toString("hex")}\n1357\n` });
    expect(ok.code).toBe(0);
    expect(JSON.parse(ok.stdout)).toEqual({ cardId: "card-0001", pin: "authentication", triesLeft: 3 });
    // the new PIN works on the card
    const card = EmulatedCard.open(fileCardStorage(cardFile(), { chipKeyFile: env.JPKI_CARD_CHIP_KEY_FILE }));
    const hex = (s: string) => Uint8Array.from(Buffer.from(s.replace(/\s+/g, ""), "hex"));
    await card.transmit(hex("00 A4 04 0C 0A D3 92 F0 00 26 01 00 00 00 01"));
    await card.transmit(hex("00 A4 02 0C 02 00 18"));
    expect(parseResponse(await card.transmit(hex("00 20 00 80 04 31 33 35 37")))!.sw).toBe(0x9000);
  });

  it("unblock refuses an administrative key file other users can read, and changes nothing", async () => {
    const loose = join(dir, "loose-admin.key");
    writeFileSync(loose, ADMIN.toString("hex") + "\n", { mode: 0o644 });
    chmodSync(loose, 0o644);
    const r = await jpki(["card", "unblock", "--card", "card-0001.card", "--pin", "authentication", "--admin-key-file", loose], { env: { JPKI_CARD_NEW_PIN: "2468" } });
    expect(r.code).toBe(18);
    expect(r.stderr).toContain("ERR_CARD_ADMIN_KEY_UNSAFE");
    chmodSync(loose, 0o600);
    const ok = await jpki(["card", "unblock", "--card", "card-0001.card", "--pin", "authentication", "--admin-key-file", loose], { env: { JPKI_CARD_NEW_PIN: "2468" } });
    expect(ok.code, ok.stderr).toBe(0);
  });

  it("unblock with the new PIN typed where the PIN's name goes does not repeat it", async () => {
    // An operator's slip: --pin takes which PIN, not its value; the error must not copy the value into logs.
    const r = await jpki(["card", "unblock", "--card", "card-0001.card", "--pin", "NEWSIG42"], { env: { JPKI_CARD_ADMIN_KEY: ADMIN.toString("hex"), JPKI_CARD_NEW_PIN: "NEWSIG99" } });
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("ERR_USAGE");
    expect(r.stderr).not.toContain("NEWSIG42");
  });

  it("unblock run with a workspace records it in the workspace's audit log (which card, which PIN: never a secret)", async () => {
    const ws = join(dir, "counter-ws");
    await Workspace.create(ws).close();
    const adminHex = ADMIN.toString("hex");
    const wrong = await jpki(["--workspace", ws, "card", "unblock", "--card", "card-0001.card", "--pin", "authentication"], { env: { JPKI_CARD_ADMIN_KEY: newAdminKey().toString("hex"), JPKI_CARD_NEW_PIN: "8642" } });
    expect(wrong.stderr).toContain("ERR_CARD_ADMIN_KEY_WRONG");
    const ok = await jpki(["--workspace", ws, "card", "unblock", "--card", "card-0001.card", "--pin", "authentication"], { env: { JPKI_CARD_ADMIN_KEY: adminHex, JPKI_CARD_NEW_PIN: "8642" } });
    expect(ok.code, ok.stderr).toBe(0);
    const w = Workspace.open(ws);
    const records = [];
    try {
      for await (const r of w.store.auditRecords()) records.push(r);
    } finally {
      await w.close();
    }
    expect(records.map((r) => [r.action, r.subject, JSON.parse(r.detail)])).toEqual([
      ["auth.failure", "", { code: "ERR_CARD_ADMIN_KEY_WRONG" }],
      ["card.unblock", "card-0001", { pin: "authentication", triesLeft: 3 }],
    ]);
    expect(JSON.stringify(records)).not.toContain("8642");
    expect(JSON.stringify(records)).not.toContain(adminHex);
    // a workspace named but missing is refused before the card is touched
    const missing = await jpki(["--workspace", join(dir, "none"), "card", "unblock", "--card", "card-0001.card", "--pin", "authentication"], { env: { JPKI_CARD_ADMIN_KEY: adminHex, JPKI_CARD_NEW_PIN: "9753" } });
    expect(missing.code).toBe(3);
    expect(missing.stderr).toContain("ERR_WORKSPACE_MISSING");
  });

  it("unblock also reads the secrets from the environment", async () => {
    const r = await jpki(["card", "unblock", "--card", "card-0001.card", "--pin", "signature"], { env: { JPKI_CARD_ADMIN_KEY: ADMIN.toString("hex"), JPKI_CARD_NEW_PIN: "NEWSIG99" } });
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("the signature PIN is set, 5 tries");
  });
});
