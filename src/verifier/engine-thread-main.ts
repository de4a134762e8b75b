/**
 * The validation engine's thread (verifier/engine-thread.ts starts it): validateJpki on the trust anchors and
 * CRLs the service sends, with a CRL index kept warm here. Started as a worker; importing it elsewhere does
 * nothing.
 */
import { isMainThread, parentPort } from "node:worker_threads";
import { toThreadError, type ThreadError } from "../errors.js";
import { CrlIndexCache } from "../validation/crl-index-cache.js";
import { validateJpki } from "../validation/jpki.js";
import { viewedPart } from "./views.js";
import { ANSWERS_PER_MESSAGE, ENGINE_CRL_CACHE, decodeQuestions, putAnswer, type EngineRequest, type EngineThreadMessage } from "./engine-thread.js";

function main(port: NonNullable<typeof parentPort>): void {
  const index = new CrlIndexCache(ENGINE_CRL_CACHE);
  // CRL files by the service's key (inode, size, mtime): a file is sent once, so its Buffer here stays the same
  // object from one trust update to the next and the index finds it parsed.
  let files = new Map<string, Buffer>();
  let anchors: readonly Buffer[] = [];
  let crls: readonly Buffer[] = [];
  const post = (m: EngineThreadMessage) => port.postMessage(m);
  port.on("message", (m: EngineRequest) => {
    if (m.type === "trust") {
      const next = new Map<string, Buffer>();
      for (const f of m.crls) {
        const der = f.der ? Buffer.from(f.der.buffer, f.der.byteOffset, f.der.byteLength) : files.get(f.key);
        if (der) next.set(f.key, der);
      }
      files = next;
      // Frozen, so validateJpki resolves them once per trust update, not per question (validate.ts configuredAll,
      // CrlIndexCache.parseAll): against a national set of CRLs that was most of a validation.
      anchors = Object.freeze(m.anchors.map((a) => Buffer.from(a.buffer, a.byteOffset, a.byteLength)));
      crls = Object.freeze([...files.values()]);
      index.retainOnly(crls); // CRLs replaced since: let go now, not when least recently used
      return;
    }
    if (m.type === "stop") {
      port.close();
      return;
    }
    // The results as one flat list (putAnswer), the errors beside them.
    let answers: unknown[] = [];
    let errors: Array<{ id: number; error: ThreadError }> | undefined;
    let count = 0;
    const message = (partial: boolean): EngineThreadMessage => {
      const out = { answers, ...(errors ? { errors } : {}), ...(partial ? { partial: true as const } : {}) };
      answers = [];
      errors = undefined;
      count = 0;
      return out;
    };
    const questions = decodeQuestions(m.questions);
    for (const [i, q] of questions.entries()) {
      try {
        const result = validateJpki({
          certificate: q.certificate,
          purpose: q.purpose,
          trustAnchors: anchors,
          ...(q.chain?.length ? { intermediates: q.chain } : {}),
          crls,
          crlIndex: index,
          at: new Date(q.at),
        });
        putAnswer(answers, q.id, viewedPart(result));
      } catch (e) {
        (errors ??= []).push({ id: q.id, error: toThreadError(e) });
      }
      // Answered as they are ready (ANSWERS_PER_MESSAGE), the serving thread writes them while this one goes on.
      if (++count >= ANSWERS_PER_MESSAGE && i < questions.length - 1) post(message(true));
    }
    post(message(false));
  });
  post({ ready: true });
}

if (!isMainThread && parentPort) main(parentPort);
