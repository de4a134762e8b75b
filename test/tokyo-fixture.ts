/**
 * A copy of the run's Tokyo workspace template (`ca init -p 13`, test/global-setup.ts) with a government verifier
 * registered and one resident's signature certificate issued, its full CRL published: what the validation
 * service's tests validate against (the engine thread's limit and restart tests each built it alike).
 */
import { generateKeyPairSync } from "node:crypto";
import { cpSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { inject } from "vitest";
import { IssuanceService } from "../src/ca/issuance.js";
import { generateCrls } from "../src/crl/generate.js";
import { makeResidentCode } from "../src/registry/resident-code.js";
import { registerVerifier } from "../src/verifier/registration.js";
import { Workspace } from "../src/workspace/workspace.js";
import { TEMPLATE_PASSPHRASE } from "./demo-template.js";

/** `label` names the verifier and the temporary directory; `residentNumber` (ten digits) the resident's code. */
export async function tokyoWithCertificate(label: string, residentNumber: string) {
  const root = join(mkdtempSync(join(tmpdir(), `jpki-${label.replace(/\W+/g, "-")}-`)), "ws");
  cpSync(inject("jpkiTokyoSqlite"), root, { recursive: true });
  const ws = Workspace.open(root);
  try {
    const verifier = (await registerVerifier(ws, { name: label, kind: "government" })).record;
    const residentCode = makeResidentCode(residentNumber);
    await ws.store.upsertResidents([{ residentCode, municipalityCode: "131016", status: "active", fourItems: { name: "山田　花子", address: "東京都千代田区千代田１番１号", birthDate: "1985-01-02", gender: "female" } }]);
    const spki = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
    const { der: certificate } = await new IssuanceService({ store: ws.store, config: ws.config, clock: ws.clock, passphrase: TEMPLATE_PASSPHRASE }).issue({ residentCode, type: "signature", publicKey: spki });
    await generateCrls(ws, { prefecture: "13", passphrase: TEMPLATE_PASSPHRASE });
    return { ws, verifier, certificate };
  } catch (e) {
    await ws.close();
    throw e;
  }
}
