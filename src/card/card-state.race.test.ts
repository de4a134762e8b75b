/**
 * A reader of a card file racing a writer in another process (`jpki card serve` selecting the application while
 * the counter renews a certificate, `jpki card info` during a VERIFY). Readers take no lock, so the load must not
 * mistake the writer's progress for a rollback. node:fs is wrapped so the writer's save lands at the worst moment:
 * after the reader has read the card file's bytes, before it reads the generation record.
 */
import { mkdtempSync } from "node:fs";
import * as fs from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it, vi } from "vitest";

let betweenReads: ((path: string) => void) | undefined;
vi.mock("node:fs", async (importOriginal) => {
  const real = await importOriginal<typeof fs>();
  const readFileSync = ((...args: Parameters<typeof real.readFileSync>) => {
    const out = real.readFileSync(...args);
    const hook = betweenReads;
    if (hook && typeof args[0] === "string" && args[0].endsWith(".card")) {
      betweenReads = undefined;
      hook(args[0]);
    }
    return out;
  }) as typeof real.readFileSync;
  return { ...real, default: { ...real, readFileSync }, readFileSync };
});

const { fileCardStorage } = await import("./card-state.js");
const { EmulatedCard, newAdminKey } = await import("./card.js");

it("a load racing another process's save sees the old state or the new one, never a 'rollback'", () => {
  const dir = mkdtempSync(join(tmpdir(), "jpki-card-race-"));
  const chipKeyFile = join(dir, "chip.key");
  const file = join(dir, "c.card");
  const admin = newAdminKey();
  EmulatedCard.create({ storage: fileCardStorage(file, { chipKeyFile, createChipKey: true }), cardId: "card-race", adminKey: admin, signaturePin: "SIGPIN2026", authenticationPin: "4321" });
  const reader = fileCardStorage(file, { chipKeyFile });
  const writer = fileCardStorage(file, { chipKeyFile });
  betweenReads = () => writer.save(writer.load());
  const st = reader.load();
  expect(betweenReads).toBeUndefined(); // the writer did run in the middle of the load
  expect(st.cardId).toBe("card-race");
  // and the card file is still the newest: a fresh open works
  expect(EmulatedCard.open(fileCardStorage(file, { chipKeyFile })).info().cardId).toBe("card-race");
});
