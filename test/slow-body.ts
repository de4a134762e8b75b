/**
 * An HTTP handler that sends a body slowly, for the download-timeout tests (provider follow, the validation
 * engine's CRL cache): the inactivity timeout must let a steady trickle through and stop a stalled one.
 */
import type { createServer } from "node:http";

/**
 * Sends `body` in `pieces` pieces, one every `everyMs`; with `stallAfter`, no more after that many, the connection left
 * open. `onPiece` is told the number of pieces written so far, after each: a test waits on it for "some of the body has
 * gone out" (a fixed pause stood for it; on a loaded host none had yet).
 */
export const slowly =
  (body: Buffer, o: { pieces: number; everyMs: number; stallAfter?: number; onPiece?: (sent: number) => void }, contentType = "application/pkix-crl"): Parameters<typeof createServer>[1] =>
  (_q, res) => {
    res.writeHead(200, { "content-type": contentType, "content-length": String(body.length) });
    const size = Math.ceil(body.length / o.pieces);
    let sent = 0;
    const i = setInterval(() => {
      if (o.stallAfter !== undefined && sent >= o.stallAfter) return;
      res.write(body.subarray(sent * size, ++sent * size));
      o.onPiece?.(sent);
      if (sent * size >= body.length) (clearInterval(i), res.end());
    }, o.everyMs);
    res.on("close", () => clearInterval(i));
  };
