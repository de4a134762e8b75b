/**
 * A workspace holding Tokyo's two CAs (signature and authentication), made once per test file at a fixed time and
 * closed: each test opens a copy of its directory (its own store), as when each made them anew — two RSA-2048 keys
 * a test, seconds of a file's time (the suite-time helper's measure).
 */
import { cpSync, mkdtempSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { initCas } from "../src/ca/manage.js";
import { prefecture } from "../src/ca/prefectures.js";
import { FixedClock } from "../src/pki/clock.js";
import { Workspace } from "../src/workspace/workspace.js";

/** Makes the template at `at` (passphrase "pw"); returns its directory. */
export async function tokyoCasTemplate(name: string, at: string): Promise<string> {
  const template = join(mkdtempSync(join(tmpdir(), `jpki-${name}-template-`)), "ws");
  const t = Workspace.create(template, { clock: new FixedClock(at) });
  try {
    await initCas(t, { prefectures: [prefecture("13")], purposes: ["signature", "authentication"], passphrase: "pw" });
  } finally {
    await t.close();
  }
  return template;
}

const made = new Map<string, Promise<string>>();

/**
 * A closed workspace holding the CAs of `prefectures` for `purposes` (passphrase "pw", made now), made once per set
 * in the test file that asks (each file has its own module instance): for files whose tests each need CAs of a few
 * different sets, and copy the set they need (copyOfTemplate, or cpSync to a root of their own).
 */
export function casTemplate(prefectures: readonly string[], purposes: ReadonlyArray<"signature" | "authentication">): Promise<string> {
  const key = `${prefectures.join(",")}/${purposes.join(",")}`;
  let template = made.get(key);
  if (!template) {
    template = (async () => {
      const dir = join(mkdtempSync(join(tmpdir(), "jpki-cas-template-")), "ws");
      const t = Workspace.create(dir);
      try {
        await initCas(t, { prefectures: prefectures.map((p) => prefecture(p)), purposes: [...purposes], passphrase: "pw" });
      } finally {
        await t.close();
      }
      return dir;
    })();
    made.set(key, template);
  }
  return template;
}

/** A fresh copy of `template` in a directory of its own: the workspace's root. */
export function copyOfTemplate(template: string, name: string): string {
  const root = join(mkdtempSync(join(tmpdir(), `jpki-${name}-`)), "ws");
  cpSync(template, root, { recursive: true });
  return root;
}
