/**
 * Whether an answer given on bare node:http (published files, OCSP GETs) reached its client whole: the routes there
 * report each answer once, with `aborted` when it was not (its status was decided, the body cut or never sent).
 */
import type { IncomingMessage, ServerResponse } from "node:http";

/** What a route reports an answer with (app.ts: metrics, access log, fetch record). */
export type AnswerReport = (req: IncomingMessage, status: number, startedAt: number, aborted: boolean) => void;

/**
 * Reports an answer once it is written, or cut. Every 304 and small body is whole in the socket's hands as end()
 * returns (writableFinished): reported at once, nothing allocated. One whose client is gone already (reset while the
 * answer was being made: a slow store, an OCSP signature) is destroyed: cut. A body the socket still holds (a large
 * one, a slow client) is reported when the response closes, cut unless it finished with its connection still up: node
 * emits "finish" too when the connection is destroyed with the body unsent (a reset, the idle bound), so
 * "finish" alone does not say the body went out. The connection is the request's (`req.socket`), not
 * `res.socket`: an answer pipelined behind another still being written has no socket yet (node attaches it when
 * the one before finishes, and detaches it at "finish" before this listener runs), so every such answer, written
 * whole, was logged `"aborted":true` and counted in jpki_http_requests_aborted_total.
 */
export function reportWhenSent(req: IncomingMessage, res: ServerResponse, status: number, startedAt: number, report: AnswerReport): void {
  if (res.destroyed) return report(req, status, startedAt, true);
  if (res.writableFinished) return report(req, status, startedAt, false);
  const socket = req.socket;
  let cut = true;
  res.once("finish", () => (cut = !socket || socket.destroyed));
  res.once("close", () => report(req, status, startedAt, cut));
}
