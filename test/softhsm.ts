/**
 * A SoftHSM2 token in a temporary directory, for the tests of CA keys in a PKCS#11 token: its own softhsm2.conf
 * (SOFTHSM2_CONF) whose tokendir is a fresh directory, and a token initialised there with softhsm2-util.
 *
 * SoftHSM2 reads SOFTHSM2_CONF when the module is initialised (once per process), so a test file makes its
 * tokens before the first module load and puts SOFTHSM2_CONF into the environment of any CLI it spawns.
 * softhsm2-util missing is a failure with the fix in the message, not a skip: CI (.ci/run) installs it.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** Where Debian's softhsm2 package puts the module. */
export const SOFTHSM_MODULE = "/usr/lib/softhsm/libsofthsm2.so";

export interface SoftHsm {
  /** the temporary directory holding softhsm2.conf and the tokens */
  readonly dir: string;
  /** the path to put in SOFTHSM2_CONF */
  readonly conf: string;
  readonly modulePath: string;
}

export interface TestToken {
  readonly label: string;
  readonly pin: string;
  readonly soPin: string;
}

export function softHsmInstalled(): boolean {
  return existsSync(SOFTHSM_MODULE) && spawnSync("softhsm2-util", ["--version"]).status === 0;
}

/**
 * A fresh SoftHSM2 configuration in a temporary directory, with SOFTHSM2_CONF pointing at it in this process
 * (for the in-process module). Throws with the fix when softhsm2 is not installed.
 */
export function makeSoftHsm(): SoftHsm {
  if (!softHsmInstalled()) {
    throw new Error(`SoftHSM2 is not installed (no softhsm2-util or ${SOFTHSM_MODULE}): apt-get install softhsm2 (.ci/run does)`);
  }
  const dir = mkdtempSync(join(tmpdir(), "jpki-softhsm-"));
  const tokens = join(dir, "tokens");
  mkdirSync(tokens, { mode: 0o700 });
  const conf = join(dir, "softhsm2.conf");
  writeFileSync(conf, `directories.tokendir = ${tokens}\nobjectstore.backend = file\nlog.level = ERROR\nslots.removable = false\n`, { mode: 0o600 });
  process.env.SOFTHSM2_CONF = conf;
  return { dir, conf, modulePath: SOFTHSM_MODULE };
}

/** Initialises a token labelled `label` in the first free slot (before the module is loaded in this process). */
export function initToken(hsm: SoftHsm, label: string, pin = "246810", soPin = "13579111"): TestToken {
  execFileSync("softhsm2-util", ["--init-token", "--free", "--label", label, "--pin", pin, "--so-pin", soPin], {
    env: { ...process.env, SOFTHSM2_CONF: hsm.conf },
    stdio: ["ignore", "ignore", "pipe"],
  });
  return { label, pin, soPin };
}
