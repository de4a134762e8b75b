/**
 * The municipality's administrative key file that the first `jpki card issue` of a workspace makes: two counters
 * issuing at once must end up with one key. node:fs is wrapped so the second counter looked for the file before
 * the first one made it.
 */
import * as fs from "node:fs";
import { mkdtempSync, readFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { expect, it, vi } from "vitest";

let missingOnce: string | undefined;
vi.mock("node:fs", async (importOriginal) => {
  const real = await importOriginal<typeof fs>();
  const existsSync = ((p: fs.PathLike) => {
    if (missingOnce !== undefined && p === missingOnce) {
      missingOnce = undefined;
      return false;
    }
    return real.existsSync(p);
  }) as typeof real.existsSync;
  return { ...real, default: { ...real, existsSync }, existsSync };
});

const { readAdminKeyFile } = await import("./card-secrets.js");

it("two counters making the administrative key at once both get the one key the file keeps", async () => {
  const dir = mkdtempSync(join(tmpdir(), "jpki-admin-key-"));
  const path = join(dir, "ws", "counter-admin.key");
  const first = await readAdminKeyFile(path, true); // the first counter's card is personalised under this key
  missingOnce = path; // the second counter looked before the first one had written the file
  const second = await readAdminKeyFile(path, true);
  expect(missingOnce).toBeUndefined();
  expect(second.equals(first)).toBe(true);
  expect(Buffer.from(readFileSync(path, "utf8").trim(), "hex").equals(first)).toBe(true);
  expect(fs.readdirSync(join(dir, "ws"))).toEqual(["counter-admin.key"]);
});
