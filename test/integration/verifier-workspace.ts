/**
 * A workspace for the status page and the signed-file route, built in-process (seconds, where `jpki demo` takes
 * longer): Tokyo's signature CA, three residents with a signature certificate each — one valid, one revoked
 * today (a certified item changed), one revoked yesterday (death) — published CRLs, a government body and a
 * private provider registered, and the files a verifier would hold: the valid certificate (PEM), the revoked one
 * (DER), and attached CMS signatures by each (openssl cms -sign, as an electronic application makes them).
 */
import { generateKeyPairSync } from "node:crypto";
import { mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { IssuanceService } from "../../src/ca/issuance.js";
import { initCas } from "../../src/ca/manage.js";
import { prefecture } from "../../src/ca/prefectures.js";
import { revokeCertificate } from "../../src/ca/revocation.js";
import { generateCrls } from "../../src/crl/generate.js";
import { FixedClock } from "../../src/pki/clock.js";
import { toPem } from "../../src/pki/pem.js";
import type { FourItems } from "../../src/profile/types.js";
import { makeResidentCode } from "../../src/registry/resident-code.js";
import { registerVerifier } from "../../src/verifier/registration.js";
import { Workspace } from "../../src/workspace/workspace.js";
import { sh } from "./helpers.js";

const DAY = 86_400_000;

export interface VerifierWorkspace {
  readonly dir: string;
  readonly ws: Workspace;
  readonly clock: FixedClock;
  readonly items: FourItems;
  /** bearer tokens */
  readonly gov: string;
  readonly priv: string;
  readonly validPem: string;
  readonly revokedDer: string;
  /** attached CMS SignedData (DER) over `document`, by the valid and by the revoked certificate's key */
  readonly signedByValid: string;
  readonly signedByRevoked: string;
  readonly document: string;
  readonly fullCrlNumber: string;
}

export async function makeVerifierWorkspace(prefix: string): Promise<VerifierWorkspace> {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const clock = new FixedClock(new Date());
  const items: FourItems = { name: "山田　花子", address: "東京都千代田区千代田１番１号", birthDate: "1985-04-01", gender: "female" };
  const ws = Workspace.create(join(dir, "ws"), { clock });
  const gov = (await registerVerifier(ws, { name: "デジタル庁", kind: "government" })).token!;
  const priv = (await registerVerifier(ws, { name: "Example Trust K.K.", kind: "private" })).token!;
  await initCas(ws, { prefectures: [prefecture("13")], purposes: ["signature"], passphrase: "pw" });
  const codes = ["0000000101", "0000000102", "0000000103"].map(makeResidentCode);
  await ws.store.upsertResidents(codes.map((residentCode) => ({ residentCode, municipalityCode: "131016", status: "active" as const, fourItems: items })));
  const issuer = new IssuanceService({ store: ws.store, config: ws.config, clock, passphrase: "pw" });
  const issued = [];
  for (const [i, residentCode] of codes.entries()) {
    const { publicKey, privateKey } = generateKeyPairSync("rsa", { modulusLength: 2048 });
    writeFileSync(join(dir, `key${i}.pem`), privateKey.export({ type: "pkcs8", format: "pem" }));
    issued.push(await issuer.issue({ residentCode, type: "signature", publicKey: publicKey.export({ type: "spki", format: "der" }) }));
  }
  const [valid, revoked, other] = issued as [(typeof issued)[0], (typeof issued)[0], (typeof issued)[0]];
  // Revoked after issuance (validation asks about "now": the fixed clock), a day apart: two bars in the chart.
  await revokeCertificate(ws.store, { serial: other.serial, reason: "death", at: new Date(clock.now().getTime() - DAY) });
  await revokeCertificate(ws.store, { serial: revoked.serial, reason: "item-changed", at: clock.now() });
  await generateCrls(ws, { prefecture: "13", passphrase: "pw", partitions: "all" });
  const fullCrlNumber = (await ws.store.crlStatus()).find((s) => s.caId === "13-sig")!.latest!.number.toString();
  const validPem = join(dir, "valid.pem");
  writeFileSync(validPem, toPem(valid.der, "CERTIFICATE"));
  writeFileSync(join(dir, "revoked.pem"), toPem(revoked.der, "CERTIFICATE"));
  const revokedDer = join(dir, "revoked.der");
  writeFileSync(revokedDer, revoked.der);
  const document = join(dir, "application.txt");
  writeFileSync(document, "電子申請: 転出届\n");
  const sign = (cert: string, key: string, out: string) => {
    const r = sh("openssl", ["cms", "-sign", "-binary", "-nodetach", "-md", "sha256", "-in", document, "-signer", cert, "-inkey", key, "-outform", "DER", "-out", out]);
    if (r.status !== 0) throw new Error(`openssl cms -sign failed: ${r.out}`);
    return out;
  };
  const signedByValid = sign(validPem, join(dir, "key0.pem"), join(dir, "application-valid.p7s"));
  const signedByRevoked = sign(join(dir, "revoked.pem"), join(dir, "key1.pem"), join(dir, "application-revoked.p7s"));
  // openssl stamps its own (wall-clock) signing time: the verification time moves to after it, as a verifier's
  // clock is after the signatures it checks (a signing time past the verification time is not-yet-valid).
  clock.set(Math.max(clock.now().getTime(), Date.now()));
  return { dir, ws, clock, items, gov, priv, validPem, revokedDer, signedByValid, signedByRevoked, document, fullCrlNumber };
}
