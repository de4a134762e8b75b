/**
 * The status page of `jpki serve` (issue 11 point 3) in a real browser: Debian's Chromium, headless, driven by
 * playwright-core (no browser download: the system's binary, which .ci/run installs). The server runs in this
 * process on a workspace with Tokyo's CAs, three signature certificates of which two are revoked (one
 * yesterday, one today: two bars in the chart), and published CRLs; a government body (行政機関) and a private
 * certification provider (民間認証事業者) are registered.
 *
 * The browser opens `/`, signs in with the government token, reads the CA table (CRL number and entries as the
 * store has them) and the chart (an SVG with a bar per day), then drops the valid certificate (PEM) and the
 * revoked one (DER) on the form: "valid", then "revoked" with the reason, the failing certificate and — under a
 * legal basis — the resident's four items (基本4情報); then signed files (CMS SignedData) by each: the signature
 * in words, then the signer's certificate. Signed in as the private provider, the same revoked certificate and
 * signed file read "revoked" and nothing more. Never skipped: without Chromium it fails, saying so.
 */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import type { AddressInfo } from "node:net";
import { join } from "node:path";
import type { FastifyInstance } from "fastify";
import { chromium, type Browser, type Page } from "playwright-core";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { toPem } from "../../src/pki/pem.js";
import { buildServer } from "../../src/server/app.js";
import { sh } from "./helpers.js";
import { makeVerifierWorkspace, type VerifierWorkspace } from "./verifier-workspace.js";

/** Debian's chromium (CI installs it: .ci/run); CHROMIUM overrides the path. */
const CHROMIUM = process.env.CHROMIUM ?? "/usr/bin/chromium";
/**
 * Flags that keep a headless Chromium quiet in a container: no sandbox (we run as root), and none of its own
 * network traffic (updates, sync, field trials) — without those, its connections to the test server were
 * refused in bursts here.
 */
const CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking", "--disable-component-update", "--disable-sync"];

let w: VerifierWorkspace;
let app: FastifyInstance;
let base: string;
let browser: Browser;

beforeAll(async () => {
  expect(existsSync(CHROMIUM), `${CHROMIUM} is missing: install Debian's chromium (apt-get install chromium), as .ci/run does`).toBe(true);
  w = await makeVerifierWorkspace("jpki-web-page-");
  ({ app } = await buildServer(w.ws));
  await app.listen({ host: "127.0.0.1", port: 0 });
  base = `http://127.0.0.1:${(app.server.address() as AddressInfo).port}`;
  browser = await chromium.launch({ executablePath: CHROMIUM, args: CHROMIUM_ARGS });
}, 120_000);

afterAll(async () => {
  await browser?.close();
  await app?.close();
  await w?.ws.close();
});

/** A fresh browser context (its own sessionStorage) on the page, signed in with `token`; page errors collected. */
async function signedIn(token: string): Promise<{ page: Page; errors: string[] }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors: string[] = [];
  page.on("pageerror", (e) => errors.push(e.message));
  // A CSP refusal is reported on the console: our own files must never be refused.
  page.on("console", (m) => m.type() === "error" && errors.push(m.text()));
  await page.goto(`${base}/`);
  await page.getByLabel("Verifier token").fill(token);
  await page.getByRole("button", { name: "Sign in" }).click();
  try {
    await page.locator("#ca-list table").first().waitFor({ timeout: 15_000 });
  } catch (e) {
    // Say what the page said, not only that the table never came.
    throw new Error(`no CA table after signing in: page says ${JSON.stringify(await page.locator("main").innerText())}; errors ${JSON.stringify(errors)}`, { cause: e });
  }
  return { page, errors };
}

/** Chooses a file on the form (as a drop would) and checks it; resolves with the status the page shows. */
async function check(page: Page, file: string, legalBasis = ""): Promise<string> {
  if (legalBasis) {
    // the options come from /openapi.json once signed in
    await page.locator(`#legal-basis option[value="${legalBasis}"]`).waitFor({ state: "attached" });
    await page.getByLabel(/Legal basis/).selectOption(legalBasis);
  }
  await page.getByLabel(/Certificate file/).setInputFiles(file);
  // Empty the result first, so the status waited for is this check's, not the previous one's.
  await page.locator("#result").evaluate((e) => e.replaceChildren());
  await page.getByRole("button", { name: "Check" }).click();
  const status = page.locator("#result-status");
  await status.waitFor();
  return (await status.getAttribute("data-status")) ?? "";
}

describe("the status page in Chromium", () => {
  it("shows each CA with its CRLs and a chart of revocations per day, to a signed-in verifier only", async () => {
    const context = await browser.newContext();
    const page = await context.newPage();
    await page.goto(`${base}/`);
    // Before signing in: the form, no data.
    await expect(page.getByLabel("Verifier token").isVisible()).resolves.toBe(true);
    expect(await page.locator("#ca-list").textContent()).toBe("");
    await page.getByLabel("Verifier token").fill("not-a-token");
    await page.getByRole("button", { name: "Sign in" }).click();
    await expect.poll(() => page.locator("#signin-status").textContent()).toMatch(/Not signed in: the server did not accept the credential/);
    await context.close();

    const { page: p, errors } = await signedIn(w.gov);
    const row = p.locator("section.ca", { hasText: "13-sig" }).locator("tbody tr", { hasText: "full CRL" });
    const cells = await row.locator("td").allTextContents();
    expect(cells[0]).toBe(w.fullCrlNumber);
    expect(cells.at(-1)).toBe("2"); // two revoked, neither expired
    expect(await p.locator("section.ca", { hasText: "13-sig" }).locator("tbody tr", { hasText: "municipality partition 131016" }).count()).toBe(1);
    // the chart: an SVG with one bar per day of the four weeks, two of them with one revocation each
    const chart = p.locator("section.ca", { hasText: "13-sig" }).locator("svg.bars");
    expect(await chart.getAttribute("role")).toBe("img");
    expect(await chart.getAttribute("aria-label")).toMatch(/2 revocations/);
    expect(await chart.locator("rect.bar").count()).toBe(28);
    const bars = await chart.locator("rect.bar").evaluateAll((rs) => rs.map((r) => ({ count: Number(r.getAttribute("data-count")), height: Number(r.getAttribute("height")) })));
    expect(bars.filter((b) => b.count === 1 && b.height > 0)).toHaveLength(2);
    expect(bars.filter((b) => b.count === 0).every((b) => b.height === 0)).toBe(true);
    expect(errors).toEqual([]);
    await p.context().close();
  }, 60_000);

  it("a government body reads valid, then revoked with the reason, the failing certificate and the four items", async () => {
    const { page, errors } = await signedIn(w.gov);
    expect(await page.locator("#result").getAttribute("aria-live")).toBe("polite");
    expect(await check(page, w.validPem)).toBe("valid");
    expect(await page.locator('[data-field="status"]').textContent()).toMatch(/^valid/);
    expect(await page.locator('[data-field="reason"]').count()).toBe(0);

    expect(await check(page, w.revokedDer, "pension")).toBe("revoked");
    const field = (f: string) => page.locator(`[data-field="${f}"]`).textContent();
    expect(await field("status")).toMatch(/^revoked/);
    expect(await field("view")).toMatch(/government body/);
    expect(await field("failed")).toMatch(/index 0, the end entity/);
    expect(await field("reason")).toMatch(/revoked/);
    expect(await field("revocation")).toMatch(/a certified item changed .*\(affiliationChanged\)/);
    expect(await field("item-name")).toBe(w.items.name);
    expect(await field("item-address")).toBe(w.items.address);
    expect(await field("item-birthDate")).toBe(w.items.birthDate);
    expect(await field("item-gender")).toMatch(/^female/);

    // a signed file (CMS SignedData, the document inside): the signature, then the signer's certificate
    expect(await check(page, w.signedByValid)).toBe("valid");
    expect(await page.locator("#result-status").getAttribute("data-kind")).toBe("signed-file");
    expect(await field("signature")).toMatch(/^valid .*unchanged since it was signed/);
    expect(await field("status")).toMatch(/^valid/);
    expect(await check(page, w.signedByRevoked, "pension")).toBe("revoked");
    expect(await field("signature-reason")).toMatch(/revoked/);
    expect(await field("status")).toMatch(/^revoked/);
    expect(await field("revocation")).toMatch(/\(affiliationChanged\)/);
    expect(await field("item-name")).toBe(w.items.name);
    expect(errors).toEqual([]);
    await page.context().close();
  }, 60_000);

  it("stays signed in when the overview fails for another reason than the credential: the token kept, the check form usable", async () => {
    const { page } = await signedIn(w.gov);
    // the store did not answer: a 503 of the overview says nothing of the token
    await page.route("**/v1/overview", (r) => r.fulfill({ status: 503, contentType: "application/json", body: JSON.stringify({ error: "service unavailable", code: "store-unavailable", message: "the store did not answer" }) }));
    await page.reload();
    await expect.poll(() => page.locator("#overview-status").textContent()).toMatch(/Could not load: the store did not answer/);
    expect(await page.locator("#verifier").isVisible()).toBe(true);
    expect(await page.evaluate("sessionStorage.length")).toBe(1);
    expect(await check(page, w.validPem)).toBe("valid");
    await page.context().close();
  }, 60_000);

  it("signs a client-certificate user in again after a reload, and not after signing out", async () => {
    // The browser presents a client certificate: the server knows the verifier on every request, and the page
    // sends no token. Stood in for by the credential added to each request on its way out (no TLS here).
    const context = await browser.newContext();
    await context.route(`${base}/**`, (r) => r.continue({ headers: { ...r.request().headers(), authorization: `Bearer ${w.gov}` } }));
    const page = await context.newPage();
    await page.goto(`${base}/`);
    await page.getByRole("button", { name: "Sign in" }).click(); // the token left empty
    await page.locator("#ca-list table").first().waitFor({ timeout: 15_000 });
    expect(await page.evaluate("sessionStorage.getItem('jpki.verifierToken')")).toBeNull();
    await page.reload();
    await page.locator("#ca-list table").first().waitFor({ timeout: 15_000 });
    expect(await page.locator("#verifier").isVisible()).toBe(true);
    await page.locator("#signout").click();
    await page.reload();
    await page.getByRole("button", { name: "Sign in" }).waitFor();
    expect(await page.locator("#verifier").isVisible()).toBe(false);
    await context.close();
  }, 60_000);

  it("reads certificates and signed files in the forms they come in: CA-first bundles, .p7b, S/MIME, detached signatures; sends no private key", async () => {
    const { page, errors } = await signedIn(w.gov);
    const file = (name: string, data: string | Buffer) => (writeFileSync(join(w.dir, name), data), join(w.dir, name));
    const openssl = (args: string[]) => {
      const r = sh("openssl", args);
      if (r.status !== 0) throw new Error(`openssl ${args[0]} failed: ${r.out}`);
    };
    /** A check the page refuses before asking the server: what it says. */
    const refused = async (path: string) => {
      await page.getByLabel(/Certificate file/).setInputFiles(path);
      await page.locator("#result").evaluate((e) => e.replaceChildren());
      await page.getByRole("button", { name: "Check" }).click();
      return (await page.locator("#result [data-error]").textContent()) ?? "";
    };
    const field = (f: string) => page.locator(`[data-field="${f}"]`).textContent();
    const caPem = toPem((await w.ws.store.getCa("13-sig"))!.certificateDer, "CERTIFICATE");
    const eePem = readFileSync(w.validPem, "utf8");

    // a PEM bundle with the CA certificate first: the end entity is checked, not the CA
    expect(await check(page, file("ca-first.pem", `${caPem}${eePem}`))).toBe("valid");
    expect(await page.locator("#result-status").textContent()).toMatch(/ca-first\.pem: valid/);
    // a certs-only .p7b (no signature): its certificates, end entity first
    const p7b = join(w.dir, "bundle.p7b");
    openssl(["crl2pkcs7", "-nocrl", "-certfile", file("bundle.pem", `${caPem}${eePem}`), "-outform", "DER", "-out", p7b]);
    expect(await check(page, p7b)).toBe("valid");
    expect(await field("note")).toMatch(/holds no signature, only certificates/);
    // S/MIME (opaque signed, base64 under MIME headers), and a detached .p7s with and without its document
    const smime = join(w.dir, "application.p7m");
    const detached = join(w.dir, "application-detached.p7s");
    openssl(["cms", "-sign", "-binary", "-nodetach", "-md", "sha256", "-in", w.document, "-signer", w.validPem, "-inkey", join(w.dir, "key0.pem"), "-outform", "SMIME", "-out", smime]);
    openssl(["cms", "-sign", "-binary", "-md", "sha256", "-in", w.document, "-signer", w.validPem, "-inkey", join(w.dir, "key0.pem"), "-outform", "DER", "-out", detached]);
    w.clock.set(Date.now()); // after openssl's signing times
    expect(await check(page, smime)).toBe("valid");
    expect(await page.locator("#result-status").getAttribute("data-kind")).toBe("signed-file");
    expect(await refused(detached)).toMatch(/detached signature, without the document it signs/);
    await page.getByLabel(/Signed document/).setInputFiles(w.document);
    expect(await check(page, detached)).toBe("valid");
    expect(await field("signature")).toMatch(/^valid/);
    await page.getByLabel(/Signed document/).setInputFiles(file("other.txt", "another document\n"));
    expect(await check(page, detached)).toBe("digest-mismatch");
    await page.getByLabel(/Signed document/).setInputFiles([]);
    // a private key in PEM is never sent: no request leaves the page for it
    const sent: string[] = [];
    page.on("request", (r) => sent.push(r.url()));
    expect(await refused(join(w.dir, "key0.pem"))).toMatch(/PEM without a certificate \(it holds PRIVATE KEY\).*nothing was sent/);
    expect(sent).toEqual([]);
    expect(errors).toEqual([]);
    await page.context().close();
  }, 60_000);

  it("shows bidirectional controls in names as their code points: a name cannot reorder what the page shows", async () => {
    const { page } = await signedIn(w.gov);
    // what el() puts every text through (the answer's issuer, the failing certificate's names, …): the page's module, as loaded
    // (a string: vitest would rewrite an import() in a function)
    const shown = await page.evaluate('import("./ui/app.js").then((m) => m.visibleText("CN=abc\\u202Egpj.exe\\u202C"))');
    expect(shown).toBe("CN=abc<U+202E>gpj.exe<U+202C>");
    await page.context().close();
  }, 60_000);

  it("says so where a CA's full CRL file is missing, and shows that CRL's row as one not to rely on", async () => {
    const { page } = await signedIn(w.gov);
    // the server's answer, with the problem it reports when the file is gone (verifier/overview.ts, tested there)
    await page.route("**/v1/overview", async (r) => {
      const real = await r.fetch();
      const o = (await real.json()) as { cas: Array<{ id: string; fullCrlProblem?: string }> };
      o.cas.find((c) => c.id === "13-sig")!.fullCrlProblem = "missing";
      await r.fulfill({ response: real, json: o });
    });
    await page.reload();
    const note = page.locator("section.ca", { hasText: "13-sig" }).locator('[data-problem="missing"]');
    await note.waitFor();
    expect(await note.textContent()).toMatch(/full CRL's file is missing: verifiers fetching it do not get this CRL/);
    expect(await page.locator("section.ca", { hasText: "13-sig" }).locator("tbody tr", { hasText: "full CRL" }).getAttribute("class")).toBe("stale");
    await page.context().close();
  }, 60_000);

  it("a private certification provider reads revoked and nothing else: no reason, no failing certificate, no items", async () => {
    const { page, errors } = await signedIn(w.priv);
    expect(await check(page, w.validPem)).toBe("valid");
    expect(await check(page, w.revokedDer)).toBe("revoked");
    expect(await page.locator('[data-field="view"]').textContent()).toMatch(/private certification provider/);
    for (const f of ["reason", "failed", "revocation", "item-name", "item-address", "items"]) expect(await page.locator(`[data-field="${f}"]`).count(), f).toBe(0);
    const text = (await page.locator("#result").textContent()) ?? "";
    expect(text).not.toContain(w.items.name);
    expect(text).not.toContain("affiliationChanged");
    // the revoked signer's signed file: revoked, and again nothing of why
    expect(await check(page, w.signedByRevoked)).toBe("revoked");
    for (const f of ["signature-reason", "reason", "failed", "revocation", "item-name"]) expect(await page.locator(`[data-field="${f}"]`).count(), f).toBe(0);
    expect(await page.locator("#result").textContent()).not.toContain(w.items.name);
    // a legal basis chosen anyway (the form says: government bodies only) is refused, and the page says why
    await page.locator('#legal-basis option[value="pension"]').waitFor({ state: "attached" });
    await page.getByLabel(/Legal basis/).selectOption("pension");
    await page.locator("#result").evaluate((e) => e.replaceChildren());
    const logged = errors.length;
    await page.getByRole("button", { name: "Check" }).click();
    await page.locator('[data-error="legal-basis-not-allowed"]').waitFor();
    // the browser's own console line for the 400: the only one, and no error of the page's script
    expect(errors.splice(logged)).toEqual([expect.stringMatching(/status of 400/)]);
    expect(await page.locator("#result").textContent()).toMatch(/government bodies/);
    expect(await page.locator("#result").textContent()).not.toContain(w.items.name);
    await page.getByLabel(/Legal basis/).selectOption("");
    // signing out forgets the token: a reload asks for it again
    await page.getByRole("button", { name: "Sign out" }).click();
    await page.reload();
    await expect(page.getByLabel("Verifier token").isVisible()).resolves.toBe(true);
    expect(await page.evaluate("sessionStorage.length")).toBe(0);
    expect(errors).toEqual([]);
    await page.context().close();
  }, 60_000);
});

