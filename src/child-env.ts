/**
 * The environment of a child process jpki starts that is not jpki itself (openssl for the demo, pg_dump,
 * pg_restore, psql): ours without any JPKI_* variable. Those hold the CA passphrase (JPKI_PASSPHRASE,
 * JPKI_OCSP_PASSPHRASE), the token PIN, card PINs, a verifier token and JPKI_STORE with its password; no other
 * program reads them, and a child's environment is readable in its /proc/PID/environ and by whatever it loads.
 * Every such spawn goes through here, so a new one cannot forget a variable.
 */
export function childEnv(extra: Readonly<Record<string, string>> = {}, base: NodeJS.ProcessEnv = process.env): Record<string, string> {
  const env: Record<string, string> = {};
  for (const [k, v] of Object.entries(base)) if (v !== undefined && !k.startsWith("JPKI_")) env[k] = v;
  for (const [k, v] of Object.entries(extra)) if (!k.startsWith("JPKI_")) env[k] = v;
  return env;
}
