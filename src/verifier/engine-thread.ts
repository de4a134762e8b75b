/**
 * The validation engine on a thread of its own (engine-thread-main.ts), beside the thread that answers
 * verifiers on `jpki serve`.
 *
 * Why: validateJpki is synchronous and costs about as much as everything else an answer of POST /v1/validate
 * needs together (HTTP, the body, the store lookups, the disclosure log). On the serving thread the two added
 * up; here the engine validates one request while the serving thread reads the next and writes the last, so
 * an answer costs the serving thread only the message each way (about 30 µs measured against ~100 µs).
 *
 * The service sends the trust anchors and CRLs with a key per CRL file; the thread keeps each file's Buffer
 * until its key changes, so its CRL index stays warm and a CRL of a million entries is parsed once per
 * publication, not per update. Used where the compiled thread module exists (not when the TypeScript sources
 * run directly, as in unit tests: the service then validates on its own thread). A thread that ends fails what
 * it was validating (ERR_INTERNAL: the service validates those itself) and tells onEnd; the service goes on
 * without it and starts a new one a while later (validation-service.ts #engine).
 */
import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import type { Worker } from "node:worker_threads";
import { newThread } from "../thread.js";
import { JpkiError, fromThreadError, type ThreadError } from "../errors.js";
import type { CrlIndexCacheParams } from "../validation/crl-index-cache.js";
import { checkJpkiPurpose, JPKI_PURPOSES, type JpkiPurpose } from "../validation/jpki.js";
import type { ViewedCertificate, ViewedResult } from "./views.js";

const THREAD = new URL("./engine-thread-main.js", import.meta.url);

/**
 * The engine's CrlIndexCache (on its thread, and on the service's own without one): as large as the set it is
 * given, whatever that is. A national workspace publishes for each of its 94 CAs a full CRL and a partition per
 * municipality (≈ 1,741 of them), ARLs and deltas besides, and every one is in the set each validation is given:
 * a cache smaller than the set parsed CRLs again on every answer. What bounds it instead is the set itself: the
 * engine lets go of every CRL the set no longer holds at each trust update (retainOnly), the set's DER is the
 * service's (read in place), and only the partitions a validation reads are indexed.
 */
export const ENGINE_CRL_CACHE: CrlIndexCacheParams = Object.freeze({ maxCrls: 1 << 20, maxBytes: Number.MAX_SAFE_INTEGER, boundedBySet: true });

/** The longest chain a question may carry: its certificate count goes as one byte (encodeQuestions). */
const MAX_THREAD_CHAIN = 254;

/** Messages of questions the thread may have queued before more wait to go as one (see validate). */
const BATCHES_OUT = 2;

/**
 * Answers the thread posts together at most: a message of many questions is answered in messages of this many as
 * they are ready, not in one at the end. Answered all at once, the serving thread waited idle while the thread
 * worked through a message, then had the whole lot to write while the thread waited for the next: the two took
 * turns and the machine stood ≈ 22 % idle under the bench's load. In messages of 8 it stood ≈ 14 % idle, and
 * answered 7–23 % more a second (bench api, 8 interleaved 5 s pairs, one better each). 16 since the disclosure log's
 * groups waited for the answers in flight (with messages of 8 they grew from ≈ 13 to ≈ 16 answers on PostgreSQL,
 * with messages of 16 to ≈ 18–25: bench/api-ab.js, 2026-12-07); they no longer wait (disclosure-log.ts).
 */
export const ANSWERS_PER_MESSAGE = 16;

/** One validation asked of the thread. */
export interface EngineQuestion {
  readonly id: number;
  readonly certificate: Uint8Array;
  readonly chain?: readonly Uint8Array[];
  readonly purpose: JpkiPurpose;
  readonly at: number;
}

/** One result of the thread: what the views read of it (views.ts viewedPart), so less crosses back. */
export type EngineResult = { readonly id: number; readonly result: ViewedResult };

/**
 * What the service posts. The questions gathered while the thread was busy go as one message: one ArrayBuffer
 * (encodeQuestions), transferred, not cloned — the structured clone of an object and a byte array per question
 * cost both threads ≈ 9 µs per question, the bytes ≈ 4.
 */
export type EngineRequest =
  | { readonly type: "trust"; readonly anchors: readonly Uint8Array[]; readonly crls: ReadonlyArray<{ readonly key: string; readonly der?: Uint8Array }> }
  | { readonly type: "validate"; readonly questions: ArrayBuffer }
  | { readonly type: "stop" };

/**
 * Questions as bytes: per question its id (u32), the validation time (f64, ms), the purpose (u8, its index in
 * JPKI_PURPOSES), how many certificates follow (u8: the one asked about, then its chain), and each certificate
 * as a u32 length and its DER. Little-endian.
 */
export function encodeQuestions(questions: readonly EngineQuestion[]): ArrayBuffer {
  let size = 0;
  for (const q of questions) {
    size += 14 + 4 + q.certificate.length;
    for (const c of q.chain ?? []) size += 4 + c.length;
  }
  const out = Buffer.allocUnsafeSlow(size); // its own ArrayBuffer (not node's shared pool), so it can be transferred
  let o = 0;
  const put = (der: Uint8Array) => {
    o = out.writeUInt32LE(der.length, o);
    out.set(der, o);
    o += der.length;
  };
  for (const q of questions) {
    const chain = q.chain ?? [];
    o = out.writeUInt32LE(q.id, o);
    o = out.writeDoubleLE(q.at, o);
    o = out.writeUInt8(JPKI_PURPOSES.indexOf(q.purpose), o);
    o = out.writeUInt8(1 + chain.length, o);
    put(q.certificate);
    for (const c of chain) put(c);
  }
  return out.buffer as ArrayBuffer;
}

/** The questions of encodeQuestions; the certificates are views into `bytes`. */
export function decodeQuestions(bytes: ArrayBuffer): EngineQuestion[] {
  const b = Buffer.from(bytes);
  const out: EngineQuestion[] = [];
  let o = 0;
  const take = () => {
    const n = b.readUInt32LE(o);
    const der = b.subarray(o + 4, o + 4 + n);
    o += 4 + n;
    return der;
  };
  while (o < b.length) {
    const id = b.readUInt32LE(o);
    const at = b.readDoubleLE(o + 4);
    const purpose = JPKI_PURPOSES[b[o + 12]!]!;
    const count = b[o + 13]!;
    o += 14;
    const certificate = take();
    const chain = Array.from({ length: count - 1 }, take);
    out.push({ id, certificate, ...(chain.length ? { chain } : {}), purpose, at });
  }
  return out;
}

/**
 * What the thread posts: answers to a message of questions, ANSWERS_PER_MESSAGE at a time; `partial` on all but the
 * last of them (the last says the thread is done with that message). The results as one flat list (putAnswer), the
 * engine's errors (rare) as they are.
 */
export type EngineThreadMessage =
  | { readonly ready: true }
  | { readonly answers: readonly unknown[]; readonly errors?: ReadonlyArray<{ readonly id: number; readonly error: ThreadError }>; readonly partial?: true };

/**
 * A result appended to `out` as a run of plain values rather than as its objects: its id, status, purpose, the
 * chain's length (-1: no chain) and each entry's subject, issuer and serial; for a failure then its reason, index,
 * message and revocation (the engine's object, or undefined). The structured clone of four objects and an array per
 * answer cost the serving thread ≈ 1.5 µs an answer to read back and the engine's ≈ 0.8 to write (node 20, alone),
 * a list of strings and numbers ≈ 0.4 each, the objects made again by takeAnswers included.
 */
export function putAnswer(out: unknown[], id: number, r: ViewedResult): void {
  const chain = r.chain;
  out.push(id, r.status, r.purpose, chain ? chain.length : -1);
  if (chain) for (const c of chain) out.push(c.subject, c.issuer, c.serial);
  if (r.status !== "valid") out.push(r.reason, r.index, r.message, r.revocation);
}

/** The results putAnswer wrote, made again as viewedPart makes them: the same fields, in the same order. */
export function takeAnswers(list: readonly unknown[]): EngineResult[] {
  const out: EngineResult[] = [];
  for (let i = 0; i < list.length; ) {
    const id = list[i] as number;
    const status = list[i + 1] as ViewedResult["status"];
    const purpose = list[i + 2] as JpkiPurpose;
    const n = list[i + 3] as number;
    i += 4;
    let chain: ViewedCertificate[] | undefined;
    if (n >= 0) {
      chain = [];
      for (let k = 0; k < n; k++, i += 3) chain.push({ subject: list[i] as string, issuer: list[i + 1] as string, serial: list[i + 2] as string });
    }
    let result: ViewedResult;
    if (status === "valid") result = chain ? { purpose, chain, status } : { purpose, status };
    else {
      // viewedPart's order: purpose, chain, status, reason, index, message, then the revocation when there is one
      const r: Record<string, unknown> = chain ? { purpose, chain, status } : { purpose, status };
      r.reason = list[i];
      r.index = list[i + 1];
      r.message = list[i + 2];
      if (list[i + 3] !== undefined) r.revocation = list[i + 3];
      i += 4;
      result = r as unknown as ViewedResult;
    }
    out.push({ id, result });
  }
  return out;
}

/** The trust the service validates against: anchors, and CRL files by a key that changes when the file does. */
export interface EngineTrust {
  readonly anchors: readonly Buffer[];
  readonly crlFiles: ReadonlyArray<{ readonly key: string; readonly der: Buffer }>;
}

/**
 * A copy of `bytes` in a SharedArrayBuffer: posted to the engine's thread it is shared, not copied (a structured
 * clone of a view over shared memory is a view over the same memory). For the CRL files: a million-entry CRL is
 * ≈ 49 MB, which the service holds to send and the thread holds to index; copied, the process held it twice.
 */
export function sharedBytes(bytes: Uint8Array): Buffer {
  const out = Buffer.from(new SharedArrayBuffer(bytes.length));
  out.set(bytes);
  return out;
}

/** Whether the engine can run on its own thread here (the compiled thread module exists). */
export function engineThreadAvailable(module: URL = THREAD): boolean {
  return existsSync(fileURLToPath(module));
}

export class EngineThread {
  readonly #worker: Worker;
  readonly #pending = new Map<number, { resolve: (r: ViewedResult) => void; reject: (e: Error) => void }>();
  #next = 0;
  #trust: EngineTrust | undefined;
  #sentKeys = new Set<string>();
  #ended: Error | undefined;
  /** close() was asked: the thread's end is the one wanted, not told to onEnd */
  #closing = false;

  private constructor(worker: Worker, onEnd: ((e: Error) => void) | undefined) {
    this.#worker = worker;
    worker.on("message", (m: EngineThreadMessage) => {
      if (!("answers" in m)) return;
      if (!m.partial) {
        this.#batchesOut--;
        if (this.#outbox.length) this.#flush();
      }
      for (const a of takeAnswers(m.answers)) {
        const p = this.#pending.get(a.id);
        if (!p) continue;
        this.#pending.delete(a.id);
        p.resolve(a.result);
      }
      for (const a of m.errors ?? []) {
        const p = this.#pending.get(a.id);
        if (!p) continue;
        this.#pending.delete(a.id);
        p.reject(fromThreadError(a.error));
      }
    });
    const end = (why: string) => {
      const first = !this.#ended;
      this.#ended ??= new JpkiError("ERR_INTERNAL", `the validation engine's thread ended (${why})`);
      for (const p of this.#pending.values()) p.reject(this.#ended);
      this.#pending.clear();
      // Once ('error' is followed by 'exit'), and not for the end close() asked for.
      if (first && !this.#closing) onEnd?.(this.#ended);
    };
    // The error's code or name, not its message: this message goes to serve's log, and an uncaught error's message
    // may quote what the thread was working on (a certificate's bytes, as text).
    worker.on("error", (e: Error & { code?: unknown }) => end(typeof e.code === "string" ? e.code : e.name));
    worker.on("exit", (code) => end(`exit code ${code}`));
  }

  /**
   * Starts the thread; resolves once it is ready to validate. `module` is the compiled thread module (tests).
   * `onEnd` is told, once, when the thread ends other than by close() (a crash, an out-of-memory of the thread).
   */
  static async start(module: URL = THREAD, onEnd?: (e: Error) => void): Promise<EngineThread> {
    const worker = newThread(module);
    await new Promise<void>((resolve, reject) => {
      worker.once("message", () => resolve());
      worker.once("error", reject);
      worker.once("exit", (code) => reject(new JpkiError("ERR_INTERNAL", `the validation engine's thread ended before it was ready (exit code ${code})`)));
    });
    worker.removeAllListeners("error").removeAllListeners("exit");
    return new EngineThread(worker, onEnd);
  }

  /** Set when the thread has ended: the service then validates without it. */
  get ended(): Error | undefined {
    return this.#ended;
  }

  /**
   * Validates on the thread against `trust` (sent first when it is not the trust sent last; a CRL file's bytes
   * only when the thread does not hold its key yet). Rejects with the engine's own error (ERR_DER_MALFORMED for
   * bytes that are no certificate) or ERR_INTERNAL when the thread ended.
   */
  validate(trust: EngineTrust, q: { readonly certificate: Buffer; readonly chain?: readonly Buffer[]; readonly purpose: JpkiPurpose; readonly at: Date }): Promise<ViewedResult> {
    if (this.#ended) return Promise.reject(this.#ended);
    try {
      checkJpkiPurpose(q.purpose); // the engine's own refusal, here: a purpose goes to the thread as its index
      // Refused here, not when the message is encoded: a throw there would fail the other questions it carries.
      if ((q.chain?.length ?? 0) > MAX_THREAD_CHAIN) throw new JpkiError("ERR_USAGE", `a chain of more than ${MAX_THREAD_CHAIN} certificates cannot be sent to the engine's thread`);
    } catch (e) {
      return Promise.reject(e);
    }
    if (trust !== this.#trust) this.#sendTrust(trust);
    const id = this.#next;
    this.#next = (this.#next + 1) >>> 0; // ids go as u32 (encodeQuestions); billions are never pending at once
    return new Promise<ViewedResult>((resolve, reject) => {
      this.#pending.set(id, { resolve, reject });
      this.#outbox.push({ id, certificate: q.certificate, ...(q.chain?.length ? { chain: q.chain } : {}), purpose: q.purpose, at: q.at.getTime() });
      // Sent at once while the thread has fewer than BATCHES_OUT messages of questions to work through; beyond
      // that they wait and go together when one is answered. So an idle thread starts at once, and a busy one
      // always has the next batch queued (never waiting for this thread) while the questions of a busy spell
      // go a message each way and one wake-up per batch, not per request: each cost the serving thread about
      // as much as a validation's signature check. (Batches per event-loop turn alone left the two threads
      // taking turns, each idle half the time.)
      if (this.#batchesOut < BATCHES_OUT) this.#flush();
    });
  }

  #outbox: EngineQuestion[] = [];
  #batchesOut = 0;

  #flush(): void {
    const questions = this.#outbox;
    if (!questions.length) return;
    this.#outbox = [];
    this.#batchesOut++;
    const bytes = encodeQuestions(questions);
    this.#worker.postMessage({ type: "validate", questions: bytes } satisfies EngineRequest, [bytes]);
  }

  #sendTrust(trust: EngineTrust): void {
    this.#flush(); // questions asked before the new trust are answered with the trust they were asked under
    const sent = new Set<string>();
    const crls = trust.crlFiles.map((f) => {
      sent.add(f.key);
      return this.#sentKeys.has(f.key) ? { key: f.key } : { key: f.key, der: f.der };
    });
    this.#worker.postMessage({ type: "trust", anchors: trust.anchors, crls } satisfies EngineRequest);
    this.#sentKeys = sent;
    this.#trust = trust;
  }

  /** Stops the thread once what it was asked is answered (messages are handled in order). */
  async close(): Promise<void> {
    if (this.#ended) return;
    this.#closing = true;
    const exited = new Promise<void>((resolve) => this.#worker.once("exit", () => resolve()));
    this.#flush();
    this.#worker.postMessage({ type: "stop" } satisfies EngineRequest);
    await exited;
  }
}
