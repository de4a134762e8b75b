/**
 * The status page of `jpki serve` (issue 11 point 3): `GET /` answers a small web page for verifiers
 * (署名検証者) and operators — each CA with its CRLs and a chart of revocations per day, and a form where a
 * verifier drops a certificate and reads the validation result in words. The files are `public/` of the
 * package (index.html, app.js, app.css): plain HTML, CSS and browser JavaScript, no framework and no build
 * step, read once when the server starts and answered from memory under `/` and `/ui/<file>`.
 *
 * Who may load it: anyone (access.ts ALWAYS_OPEN). The files are the same for every caller and hold neither
 * data nor secrets; a browser cannot attach a bearer token to the navigation that loads a page, so requiring
 * one here would make the page unreachable for token holders. What the page shows comes from
 * `GET /v1/overview` and `POST /v1/validate`, which need a registered verifier's credential: the script asks
 * for the token, keeps it in sessionStorage (gone when the tab closes, never sent by the browser on its own —
 * so, unlike a cookie, no other site can make the browser use it: no CSRF) and sends it as
 * `Authorization: Bearer`. Over HTTPS a browser holding a verifier client certificate needs no token: it
 * presents the certificate on every request, the page's included.
 *
 * Headers: a Content-Security-Policy that allows only same-origin script, style and fetches — no inline
 * script, no external resource, no framing, no form posting elsewhere — so a value the server returns could
 * not run as script even if the page's own escaping failed (it builds every element with textContent, never
 * innerHTML); nosniff; no referrer; strong ETags and no-cache, so a new release is picked up at once.
 */
import { createHash } from "node:crypto";
import { existsSync } from "node:fs";
import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import type { FastifyInstance, FastifyReply, FastifyRequest } from "fastify";
import { JpkiError } from "../errors.js";

/** The page's files and their types: only these are served (a fixed table, no path from the request touches the disk). */
export const PAGE_FILES = Object.freeze({
  "index.html": "text/html; charset=utf-8",
  "app.js": "text/javascript; charset=utf-8",
  "app.css": "text/css; charset=utf-8",
  // Without an icon of its own the browser asks for /favicon.ico, which is not open: a 401 on every visit.
  "icon.svg": "image/svg+xml",
} as const);
export type PageFile = keyof typeof PAGE_FILES;

export const PAGE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self'",
  "connect-src 'self'",
  "form-action 'none'",
  "base-uri 'none'",
  "frame-ancestors 'none'",
].join("; ");

interface Asset {
  readonly body: Buffer;
  readonly type: string;
  readonly etag: string;
}

/**
 * The package's public/ directory: the nearest directory above this module holding package.json (the
 * repository when run from src/ by the tests, the installed package when run from dist/src/).
 */
export function publicDir(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (existsSync(join(dir, "package.json"))) return join(dir, "public");
    const up = dirname(dir);
    if (up === dir) throw new JpkiError("ERR_INSTALLATION_INCOMPLETE", `no package.json above ${fileURLToPath(import.meta.url)}, so no public/ directory for the web page: reinstall jpki`);
    dir = up;
  }
}

/**
 * Reads the page's files (a missing one fails the server's start, not the first visitor): as the installation's
 * fault, named, not as a bug (a build copied without public/ is the likely cause).
 */
export async function loadPage(dir = publicDir()): Promise<ReadonlyMap<PageFile, Asset>> {
  const out = new Map<PageFile, Asset>();
  for (const [name, type] of Object.entries(PAGE_FILES) as Array<[PageFile, string]>) {
    const path = join(dir, name);
    const body = await readFile(path).catch((e: NodeJS.ErrnoException) => {
      throw new JpkiError("ERR_INSTALLATION_INCOMPLETE", `the web page's file ${path} cannot be read (${e.code ?? e.message}): jpki serve needs the package's public/ directory beside dist/; reinstall jpki`);
    });
    out.set(name, { body, type, etag: `"${createHash("sha256").update(body).digest("base64url").slice(0, 27)}"` });
  }
  return out;
}

export interface PageRouteOptions {
  readonly prefix: string;
  readonly assets: ReadonlyMap<PageFile, Asset>;
  readonly onResponse: (req: FastifyRequest, reply: FastifyReply, done: () => void) => void;
}

/** Registers GET/HEAD `${prefix}/` (the page), `${prefix}/ui/<file>`, and a redirect from `${prefix}` to `${prefix}/`. */
export function registerPage(app: FastifyInstance, o: PageRouteOptions): void {
  const send = (name: PageFile) => (req: FastifyRequest, reply: FastifyReply) => {
    const a = o.assets.get(name)!;
    reply
      .header("Content-Type", a.type)
      .header("ETag", a.etag)
      .header("Cache-Control", "no-cache")
      .header("X-Content-Type-Options", "nosniff")
      .header("Referrer-Policy", "no-referrer");
    if (name === "index.html") reply.header("Content-Security-Policy", PAGE_CSP).header("X-Frame-Options", "DENY");
    if (req.headers["if-none-match"] === a.etag) return reply.code(304).send();
    return reply.send(req.method === "HEAD" ? undefined : a.body);
  };
  app.route({ method: ["GET", "HEAD"], url: `${o.prefix}/`, onResponse: o.onResponse, handler: send("index.html") });
  // With a prefix, "/jpki" must become "/jpki/" so the page's relative URLs (ui/app.js, v1/overview) resolve under it.
  if (o.prefix) app.route({ method: ["GET", "HEAD"], url: o.prefix, onResponse: o.onResponse, handler: (_req, reply) => reply.redirect(`${o.prefix}/`, 308) });
  for (const name of Object.keys(PAGE_FILES) as PageFile[]) {
    if (name !== "index.html") app.route({ method: ["GET", "HEAD"], url: `${o.prefix}/ui/${name}`, onResponse: o.onResponse, handler: send(name) });
  }
}
