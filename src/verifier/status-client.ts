/**
 * The client side of liveness checks (現況確認): reads a verifier's list of certificates and asks a
 * `jpki serve`'s `POST /v1/status` in batches (`jpki verify --status-of FILE`).
 *
 * The list file (ours), one of:
 * - a PEM bundle: every CERTIFICATE block is asked about by its certificate id (hex SHA-256 of its DER);
 * - text lines: `<caId>:<serial>` (e.g. `13-sig:5f0c…`, serial in hex) or a 64-digit certificate id; blank lines
 *   and lines starting with `#` are skipped.
 * A line that is neither fails the whole list (ERR_USAGE, naming the line): nothing is sent.
 */
import { JpkiError } from "../errors.js";
import { fetchFailureReason } from "../validation/download-clock.js";
import { parsePemBlocks } from "../pki/pem.js";
import { certificateId, MAX_STATUS_ITEMS, parseStatusItem, type StatusAnswer, type StatusItemAnswer, type StatusItemRef } from "./liveness.js";

/** The certificates a list file names, in order. */
export function parseStatusList(text: string, where = "the list"): StatusItemRef[] {
  if (text.includes("-----BEGIN ")) {
    const ders = parsePemBlocks(text).filter((b) => b.label === "CERTIFICATE").map((b) => b.der);
    if (!ders.length) throw new JpkiError("ERR_USAGE", `${where} holds no PEM CERTIFICATE block`);
    return ders.map((der) => ({ certificateId: certificateId(der) }));
  }
  const out: StatusItemRef[] = [];
  const lines = text.split(/\r?\n/);
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!.trim();
    if (!line || line.startsWith("#")) continue;
    const colon = line.indexOf(":");
    const ref = parseStatusItem(colon < 0 ? { certificateId: line } : { caId: line.slice(0, colon), serial: line.slice(colon + 1) });
    if ("error" in ref) {
      throw new JpkiError("ERR_USAGE", `line ${i + 1} of ${where} is neither <caId>:<serial> (e.g. 13-sig:0a1b…) nor a certificate id (64 hex digits, the SHA-256 of the certificate's DER)`);
    }
    out.push(ref);
  }
  if (!out.length) throw new JpkiError("ERR_USAGE", `${where} names no certificate`);
  return out;
}

export interface StatusClientOptions {
  /** the base URL of jpki serve (its baseUrl): /v1/status is asked below it */
  readonly url: string;
  readonly bearerToken?: string;
  readonly link?: boolean;
  /** items per request (default and at most MAX_STATUS_ITEMS) */
  readonly batchSize?: number;
  readonly timeoutMs?: number;
  /** injectable for tests (default globalThis.fetch) */
  readonly fetch?: typeof fetch;
  /** how a 429's Retry-After is waited out (default a timer); injectable for tests */
  readonly sleep?: (ms: number) => Promise<void>;
  /** how many times one batch is asked again after a 429 (default 5) */
  readonly retries?: number;
}

/** The longest Retry-After the client waits, seconds: a longer one is an error, not a hang. */
const MAX_RETRY_AFTER_S = 120;

/**
 * Asks about every item, a batch at a time, and returns one answer per item in list order (`index` counts
 * over the whole list). ERR_SERVICE_FAILED when the server cannot be reached or answers an error (its typed code
 * in the message); the answers of earlier batches are then not returned (they are in the server's history).
 */
export async function fetchStatus(items: readonly StatusItemRef[], o: StatusClientOptions): Promise<StatusAnswer> {
  const size = o.batchSize ?? MAX_STATUS_ITEMS;
  if (!Number.isInteger(size) || size < 1 || size > MAX_STATUS_ITEMS) throw new JpkiError("ERR_USAGE", `a batch is 1 to ${MAX_STATUS_ITEMS} items`);
  const doFetch = o.fetch ?? fetch;
  const sleep = o.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const url = `${o.url.replace(/\/+$/, "")}/v1/status`;
  const answers: StatusItemAnswer[] = [];
  let view: StatusAnswer["view"] = "private";
  let checkedAt = "";
  for (let start = 0; start < items.length; start += size) {
    const batch = items.slice(start, start + size);
    let res: Response;
    // The server charges a batch one request per item against the verifier's rate (access.ts charge): after a
    // full batch the next may be told 429 with Retry-After, which is waited out rather than failing the list.
    for (let attempt = 0; ; attempt++) {
      try {
        res = await doFetch(url, {
          method: "POST",
          headers: { "content-type": "application/json", ...(o.bearerToken ? { authorization: `Bearer ${o.bearerToken}` } : {}) },
          body: JSON.stringify({ items: batch, ...(o.link ? { link: true } : {}) }),
          signal: AbortSignal.timeout(o.timeoutMs ?? 30_000),
        });
      } catch (e) {
        throw new JpkiError("ERR_SERVICE_FAILED", `${url} could not be reached (${fetchFailureReason(e)}): check --url and that jpki serve runs`, { cause: e });
      }
      if (res.status !== 429 || attempt >= (o.retries ?? 5)) break;
      const wait = Number(res.headers.get("retry-after") ?? "1");
      if (!(wait >= 0 && wait <= MAX_RETRY_AFTER_S)) break;
      await res.arrayBuffer();
      await sleep(Math.max(1, wait) * 1000);
    }
    const text = await res.text();
    let body: unknown;
    try {
      body = JSON.parse(text);
    } catch {
      body = undefined;
    }
    if (res.status !== 200) {
      const code = (body as { code?: unknown } | undefined)?.code;
      const hint = res.status === 401 ? ": give a registered verifier's token with --token-file or $JPKI_VERIFIER_TOKEN" : "";
      throw new JpkiError("ERR_SERVICE_FAILED", `${url} answered ${res.status}${typeof code === "string" ? ` (${code})` : ""}${hint}`, { details: { status: res.status, ...(typeof code === "string" ? { code } : {}) } });
    }
    const a = body as StatusAnswer | undefined;
    if (!a || !Array.isArray(a.items) || a.items.length !== batch.length) throw new JpkiError("ERR_SERVICE_FAILED", `${url} answered something that is not a liveness-check answer for the ${batch.length} items sent`);
    view = a.view;
    checkedAt = a.checkedAt;
    for (const item of a.items) answers.push({ ...item, index: start + item.index });
  }
  return { view, checkedAt, items: answers };
}
