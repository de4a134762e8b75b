/**
 * A throwaway TLS server certificate for 127.0.0.1 (P-256, two days, self-signed by openssl; its files removed once
 * read), for tests that start
 * `jpki serve`'s server over HTTPS on loopback. openssl runs synchronously: nothing outlives the call, so a unit
 * file importing this still shares its worker (test/isolation.ts).
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

export interface LoopbackTls {
  readonly cert: Buffer;
  readonly key: Buffer;
}

export function loopbackTls(prefix: string): LoopbackTls {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  const key = join(dir, "srv.key");
  const crt = join(dir, "srv.crt");
  execFileSync(
    "openssl",
    ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-keyout", key, "-out", crt, "-days", "2", "-subj", "/CN=localhost", "-addext", "subjectAltName=IP:127.0.0.1"],
    { stdio: "pipe" },
  );
  try {
    return { cert: readFileSync(crt), key: readFileSync(key) };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
