/**
 * Reading a PostgreSQL connection string without loading the store (pg and the PostgreSQL store load only when a
 * store opens): `jpki store copy` and backups print and check them.
 */

/**
 * A postgres:// connection string as node-postgres reads it (pg-connection-string), or undefined when it is no URL.
 * The WHATWG parser refuses credentials without a host (`postgres://jpki@/jpki?host=/run/postgresql`, the usual
 * way to name a role over a Unix socket), which node-postgres accepts by putting a placeholder host in; so does
 * this, and says the host was empty: a backup refusing the string every other command connected with was the result.
 */
export function parsePostgresUrl(connectionString: string): { readonly url: URL; readonly hostless: boolean } | undefined {
  try {
    return { url: new URL(connectionString), hostless: false };
  } catch {
    // below
  }
  if (!connectionString.includes("@/")) return undefined;
  try {
    return { url: new URL(connectionString.replace("@/", "@placeholder.invalid/")), hostless: true };
  } catch {
    return undefined;
  }
}
