/**
 * The validation service when the engine's thread cannot be made: the Worker constructor throws
 * ERR_WORKER_INIT_FAILED at the process's thread limit (a container's pids.max, systemd's TasksMax). The service
 * validates on its own thread, as where the thread module is missing (validation-service.ts #engine). The Worker is
 * a stand-in here (test/thread-limit.ts); the module named is the compiled one, so the service does try the thread.
 */
import { cpSync, mkdtempSync } from "node:fs";
import { generateKeyPairSync } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, inject, it, vi } from "vitest";
import { TEMPLATE_PASSPHRASE } from "../../test/demo-template.js";
import { IssuanceService } from "../ca/issuance.js";
import { generateCrls } from "../crl/generate.js";
import { makeResidentCode } from "../registry/resident-code.js";
import { Workspace } from "../workspace/workspace.js";
import { engineThreadAvailable } from "./engine-thread.js";
import { registerVerifier } from "./registration.js";
import { VerifierValidationService } from "./validation-service.js";

vi.mock("node:worker_threads", async (real) => (await import("../../test/thread-limit.js")).atTheThreadLimit(await real<object>()));

const MODULE = new URL("../../dist/src/verifier/engine-thread-main.js", import.meta.url);

describe("VerifierValidationService at the process's thread limit", () => {
  it("validates on its own thread instead of failing the request", async () => {
    expect(engineThreadAvailable(MODULE)).toBe(true);
    const root = join(mkdtempSync(join(tmpdir(), "jpki-engine-limit-")), "ws");
    cpSync(inject("jpkiTokyoSqlite"), root, { recursive: true });
    const ws = Workspace.open(root);
    try {
      const verifier = (await registerVerifier(ws, { name: "thread limit", kind: "government" })).record;
      const residentCode = makeResidentCode("0000000777");
      await ws.store.upsertResidents([{ residentCode, municipalityCode: "131016", status: "active", fourItems: { name: "山田　花子", address: "東京都千代田区千代田１番１号", birthDate: "1985-01-02", gender: "female" } }]);
      const spki = generateKeyPairSync("rsa", { modulusLength: 2048 }).publicKey.export({ type: "spki", format: "der" });
      const { der: certificate } = await new IssuanceService({ store: ws.store, config: ws.config, clock: ws.clock, passphrase: TEMPLATE_PASSPHRASE }).issue({ residentCode, type: "signature", publicKey: spki });
      await generateCrls(ws, { prefecture: "13", passphrase: TEMPLATE_PASSPHRASE });
      const service = new VerifierValidationService(ws, { engineThread: MODULE });
      try {
        for (let i = 0; i < 2; i++) expect(await service.validate(verifier, { certificate, purpose: "signature" })).toMatchObject({ view: "government", status: "valid" });
      } finally {
        await service.close();
      }
    } finally {
      await ws.close();
    }
  });
});
