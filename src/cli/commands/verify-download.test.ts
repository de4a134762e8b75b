/**
 * `jpki verify --crl-url` with --total-timeout and --max-crl-mib: the options reach the CRL download (the CrlCache's
 * clocks and size bound), and bad values are ERR_USAGE naming the option. Driven in-process against a real socket;
 * the certificate is a J-LIS root trusted as itself (the verdict does not matter, only what the fetch came to).
 */
import { createServer, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { runInProcess } from "../../../test/cli-in-process.js";
import { slowly } from "../../../test/slow-body.js";

const ROOT = join(import.meta.dirname, "../../../fixtures/jlis/sign-ca-2023.pem");
const servers: Server[] = [];
afterEach(async () => {
  for (const s of servers.splice(0)) await new Promise((r) => (s.closeAllConnections(), s.close(r)));
});
async function serve(handler: Parameters<typeof createServer>[1]): Promise<string> {
  const s = createServer(handler);
  servers.push(s);
  await new Promise<void>((r) => s.listen(0, "127.0.0.1", r));
  return `http://127.0.0.1:${(s.address() as AddressInfo).port}/crl/13-sig.crl`;
}
const verify = (...args: string[]) => runInProcess(["--json", "verify", ROOT, "--trust", ROOT, ...args], { env: {}, cwd: tmpdir() });
const fetchOf = (stdout: string) => (JSON.parse(stdout) as { crlFetches: Array<{ status: string; error?: string; message?: string }> }).crlFetches[0];

describe("jpki verify: the CRL download's total time and size, from the command line", () => {
  it("--total-timeout ends a download that keeps coming, well within the default 10 min", async () => {
    // a byte every 50 ms for over three minutes: never idle for the 10 s --timeout, and far past any late turn of the
    // total's timer, so only the total can end it; its message says it did (no bound on the time taken: vitest's
    // timeout ends a hang, and a loaded host's CLI load can pass any bound)
    const url = await serve(slowly(Buffer.alloc(4000, 0x30), { pieces: 4000, everyMs: 50 }));
    const r = await verify("--crl-url", url, "--total-timeout", "0.5");
    expect(JSON.stringify(fetchOf(r.stdout))).toContain("not complete within 500 ms");
    expect(fetchOf(r.stdout)!.status).toBe("failed");
  });

  it("--max-crl-mib refuses a CRL larger than it, one the default 256 MiB takes in", async () => {
    const body = Buffer.alloc(2 ** 20 + 1, 0x30);
    const url = await serve((_q, res) => res.writeHead(200, { "content-type": "application/pkix-crl", "content-length": String(body.length) }).end(body));
    const r = await verify("--crl-url", url, "--max-crl-mib", "1");
    expect(fetchOf(r.stdout)!.status).toBe("failed");
    expect(JSON.stringify(fetchOf(r.stdout))).toContain(`more than the ${2 ** 20} bytes accepted`);
    const taken = await verify("--crl-url", url);
    expect(JSON.stringify(fetchOf(taken.stdout))).not.toContain("bytes accepted");
  });

  it("the verdict in words names a --crl-url that failed and why (a 401 without the verifier's token)", async () => {
    const url = await serve((_q, res) => res.writeHead(401, { "www-authenticate": "Bearer" }).end());
    const r = await runInProcess(["verify", ROOT, "--trust", ROOT, "--crl-url", url], { env: {}, cwd: tmpdir() });
    expect(r.stdout).toMatch(new RegExp(`fetch: ${url.replace(/[.]/g, "\\.")}: failed \\(.*401`));
  });

  it("a bad value is ERR_USAGE naming the option, before anything is fetched", async () => {
    let hits = 0;
    const url = await serve((_q, res) => (hits++, res.end()));
    for (const [option, value] of [["--total-timeout", "0"], ["--total-timeout", "soon"], ["--total-timeout", "86401"], ["--max-crl-mib", "0"], ["--max-crl-mib", "1.5"], ["--max-crl-mib", "1025"], ["--timeout", "601"]] as const) {
      const r = await verify("--crl-url", url, option, value);
      expect(r.code, `${option} ${value}`).toBe(2);
      const { error } = JSON.parse(r.stderr) as { error: { code: string; message: string } };
      expect(error.code).toBe("ERR_USAGE");
      expect(error.message).toContain(`${option} "${value}"`);
    }
    expect(hits).toBe(0);
  });

  it("--help names both options", async () => {
    const r = await runInProcess(["verify", "--help"], { env: {}, cwd: tmpdir() });
    expect(r.stdout).toMatch(/--total-timeout <seconds>/);
    expect(r.stdout).toMatch(/--max-crl-mib <MiB>/);
  });
});
