/**
 * A GET that carries the verifier's bearer token (署名検証者のトークン) and follows redirects itself. Left to fetch,
 * the token's fate on a redirect was the fetch's: Node's own drops `Authorization` on a hop to another origin,
 * but a library caller may hand CrlCache any fetch (a proxy agent's, a test's, a wrapper that follows redirects
 * keeping every header), and one that keeps it sent the token that opens our `jpki serve` to whatever host the
 * CRL endpoint redirected to. So with a token attached the request is made with `redirect: "manual"`, whatever
 * fetch was given, and the hops are followed here: a hop within the origin keeps the token, the first hop to
 * another origin drops it for the rest of the chain (as the Fetch standard does), and a chain that loops or runs
 * past MAX_TOKEN_REDIRECTS is given up (RedirectRefused).
 */
import { clocked, downloadClock, fetchUntilAborted, type DownloadTimeouts } from "./download-clock.js";

/** Hops followed at most: jpki serve redirects never; a CDN or a moved endpoint a few. Fetch's own bound is 20. */
export const MAX_TOKEN_REDIRECTS = 5;

const REDIRECTS: ReadonlySet<number> = new Set([301, 302, 303, 307, 308]);

/** A redirect chain not followed: a loop, too many hops, a Location that is not an http(s) URL, a fetch that followed itself. */
export class RedirectRefused extends Error {
  override readonly name = "RedirectRefused";
}

/** What the chain came to: the last answer (its body read through the download clocks) and whether the token was dropped on the way. */
export interface TokenFetch {
  readonly res: Response;
  /** the token was dropped at a hop to another origin: a 401 at the end is that origin asking for it */
  readonly tokenDropped: boolean;
  /** the URL the last answer came from */
  readonly url: string;
}

/**
 * GET `url` with `headers` (holding `authorization`), following redirects as above, all hops on one pair of
 * download clocks (the timeouts bound the whole chain, not each hop). Throws as clockedFetch does (the clock's
 * DownloadTimeout, the fetch's failure) and RedirectRefused.
 */
export async function fetchWithToken(fetch: typeof globalThis.fetch, url: string, headers: Readonly<Record<string, string>>, t: DownloadTimeouts): Promise<TokenFetch> {
  const clock = downloadClock(t);
  let at = url;
  let h: Record<string, string> = { ...headers };
  let tokenDropped = false;
  const visited = new Set<string>([url]);
  try {
    for (let hops = 0; ; hops++) {
      const res = await fetchUntilAborted(fetch(at, { headers: h, redirect: "manual", signal: clock.signal }), clock.signal);
      // a fetch that followed although told not to: the token went wherever it led, and it must be told
      if (res.redirected) {
        await res.body?.cancel().catch(() => undefined);
        throw new RedirectRefused(`the fetch given followed a redirect itself although asked not to (redirect: "manual"), with the verifier's token: give CrlCache a fetch that honours it`);
      }
      const location = REDIRECTS.has(res.status) ? res.headers.get("location") : null;
      if (location === null) return { res: clocked(res, clock), tokenDropped, url: at };
      clock.touch();
      await res.body?.cancel().catch(() => undefined);
      let next: URL;
      try {
        next = new URL(location, at);
      } catch {
        throw new RedirectRefused(`HTTP ${res.status} to ${JSON.stringify(location)}, not a URL`);
      }
      if (next.protocol !== "http:" && next.protocol !== "https:") throw new RedirectRefused(`HTTP ${res.status} to ${next.protocol} (only http and https are followed)`);
      next.hash = "";
      if (visited.has(next.href)) throw new RedirectRefused(`HTTP ${res.status} to ${next.href}, asked already: a redirect loop`);
      if (hops + 1 > MAX_TOKEN_REDIRECTS) throw new RedirectRefused(`redirected more than ${MAX_TOKEN_REDIRECTS} times`);
      visited.add(next.href);
      if (!tokenDropped && next.origin !== new URL(at).origin) {
        const { authorization: _dropped, ...rest } = h;
        h = rest;
        tokenDropped = true;
      }
      at = next.href;
    }
  } catch (e) {
    clock.stop();
    throw clock.signal.aborted ? clock.signal.reason : e;
  }
}
