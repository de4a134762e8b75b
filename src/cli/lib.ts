/**
 * The library as the CLI reaches it: light parts now, the rest when a command runs.
 *
 * Building the command tree (names, options, help texts, exit codes) needs only the light modules re-exported
 * below, which import nothing but node: built-ins and errors.ts. A command's action loads what it uses when it
 * runs: `await library()` for the whole public API (pkijs, @peculiar/*, better-sqlite3 …, ~0.5 s), or a
 * narrower piece such as `inspectLibrary()`. So `jpki --version` and `jpki --help` load none of those
 * (issue 8 point 9; test/integration/cli-startup.test.ts checks which packages a run loads).
 * Every name here is part of the public API in index.ts, with its types: the CLI stays a thin shell over it.
 */
import type * as Api from "../index.js";
import type * as Describe from "../profile/describe.js";
import type * as Generate from "../crl/generate.js";
import type * as WorkspaceModule from "../workspace/workspace.js";
import type * as ServeModule from "../server/serve.js";

// Light: keep these modules free of heavy imports (the startup test fails otherwise).
export { JpkiError, ERROR_CODES, isJpkiError } from "../errors.js";
export { checkInputFile, checkInputDir, readInputFile, checkOutputFile, checkNewOutputFile, checkOutputDir, checkWorkspaceDir, outputExists } from "../workspace/paths.js";
export { REVOCATION_CAUSES } from "../crl/reason.js";
// graphene-pk11 loads only when a token is opened (pki/pkcs11.ts), so the PIN source is light to set up.
export { envPinValue, readPinFile, setPkcs11PinSource } from "../pki/pkcs11.js";
export { NOT_REGULAR, readRegularFile } from "../pki/regular-file.js";
export { readIsoTime } from "../pki/iso-time.js";
export { childEnv } from "../child-env.js";

export type Library = typeof Api;

/** The whole public API, loaded on the first call (the module loader keeps it for the next). */
export function library(): Promise<Library> {
  return import("../index.js");
}

/**
 * What `jpki inspect` decodes with: every public name of the profile reader (profile/describe.ts), without the
 * signing, storage and WebCrypto stack.
 */
export type InspectLibrary = Pick<Library, keyof typeof Describe & keyof Library>;

/** What `jpki crl generate` runs: the CRL path alone (store, builder, key unwrap, signer), without the profile stack. */
export type CrlLibrary = Pick<Library, keyof typeof Generate & keyof Library>;

export function crlLibrary(): Promise<CrlLibrary> {
  return import("../crl/generate.js");
}

/** The workspace module alone: opening a store needs none of the signing or profile code. */
export type WorkspaceLibrary = Pick<Library, keyof typeof WorkspaceModule & keyof Library>;

export function workspaceLibrary(): Promise<WorkspaceLibrary> {
  return import("../workspace/workspace.js");
}

/** What `jpki serve` runs: the HTTP publication point and the CRL schedule. */
export type ServerLibrary = Pick<Library, keyof typeof ServeModule & keyof Library> & WorkspaceLibrary;

export async function serverLibrary(): Promise<ServerLibrary> {
  const [serve, workspace] = await Promise.all([import("../server/serve.js"), import("../workspace/workspace.js")]);
  return { ...serve, ...workspace };
}

export function inspectLibrary(): Promise<InspectLibrary> {
  return import("../profile/describe.js");
}
