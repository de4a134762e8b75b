/**
 * The overview's counting thread (verifier/overview.ts CrlRevocationDays starts it on `jpki serve`): reads a
 * published full CRL, checks it against the store's record and counts its revocations per JST day, off the serving
 * thread. Started as a worker; importing it elsewhere does nothing.
 */
import { isMainThread, parentPort } from "node:worker_threads";
import { countCrlDays, type CrlDaysJob } from "./overview.js";

if (!isMainThread && parentPort) {
  const port = parentPort;
  // One at a time, in order: a national server's 94 CAs after a publication are 94 parses, not 94 at once in memory.
  let queue = Promise.resolve();
  port.on("message", (m: { id: number; job: CrlDaysJob }) => {
    queue = queue.then(async () => port.postMessage({ id: m.id, result: await countCrlDays(m.job) }));
  });
}
