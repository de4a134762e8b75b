/**
 * An HTTP handler that sends a body slowly, for the download-timeout tests (provider follow, the validation
 * engine's CRL cache): the inactivity timeout must let a steady trickle through and stop a stalled one.
 */
import type { createServer } from "node:http";

/** Sends `body` in `pieces` pieces, one every `everyMs`; with `stallAfter`, no more after that many, the connection left open. */
export const slowly =
  (body: Buffer, o: { pieces: number; everyMs: number; stallAfter?: number }, contentType = "application/pkix-crl"): Parameters<typeof createServer>[1] =>
  (_q, res) => {
    res.writeHead(200, { "content-type": contentType, "content-length": String(body.length) });
    const size = Math.ceil(body.length / o.pieces);
    let sent = 0;
    const i = setInterval(() => {
      if (o.stallAfter !== undefined && sent >= o.stallAfter) return;
      res.write(body.subarray(sent * size, ++sent * size));
      if (sent * size >= body.length) (clearInterval(i), res.end());
    }, o.everyMs);
    res.on("close", () => clearInterval(i));
  };
