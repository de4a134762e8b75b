/**
 * The store's CRL records as jpki serve's routes read them: every CRL by CA and scope (/metrics' gauges, /healthz)
 * and the records /crl/index.json lists. Each is several store reads, begun together rather than one after another.
 * A watched call (store/watchdog.ts) ties what a store method takes to itself only while the call's own code runs
 * synchronously (currentCall): a read begun after an await belonged to no call. On a PostgreSQL host that vanished
 * silently, such a read hung on its pooled connection until TCP gave up (≈ 15 min with a statement unanswered),
 * never cut as a late call's connection is once the pool needs it, so every scrape or index request that had its
 * first read answered could take one more connection out of the pool for that long.
 */
import type { CrlRecord, CrlScopeStatus, CrlStatus, Store } from "../store/types.js";
import { ARL_SCOPE } from "../store/types.js";
import type { StoreWatchdog } from "../store/watchdog.js";
import type { WorkspaceConfig } from "../workspace/config.js";

/** One CRL the workspace publishes: its CA, its scope ("full", "delta", a municipality code, "arl") and its latest. */
export interface ServedCrl {
  readonly caId: string;
  readonly scope: string;
  readonly latest: CrlRecord | undefined;
}

/**
 * Every CRL the workspace publishes, by CA and scope: each CA's full CRL ("full"), its delta CRL ("delta", while
 * the workspace publishes deltas: config deltaCrlIntervalMinutes), its municipality partitions (the municipality
 * code) and its ARL ("arl"), with the latest published of each (undefined: none yet). With a watchdog, bounded by it
 * (a scrape of /metrics: a hung store held the scrape as long as it hung).
 */
export async function everyCrl(ws: { readonly store: Store; readonly config: Pick<WorkspaceConfig, "deltaCrlIntervalMinutes"> }, watchdog?: StoreWatchdog): Promise<ServedCrl[]> {
  if (watchdog) return watchdog.run("the CRL records", () => everyCrl(ws));
  // A delta left from before deltas were turned off expires unreplaced, by design: not a health problem then.
  const [full, deltas, scoped] = await Promise.all([ws.store.crlStatus(), ws.config.deltaCrlIntervalMinutes > 0 ? ws.store.deltaCrlStatus() : [], ws.store.crlScopeStatus()]);
  return [
    ...full.map((s) => ({ caId: s.caId, scope: "full", latest: s.latest })),
    ...deltas.map((d) => ({ caId: d.caId, scope: "delta", latest: d.delta })),
    ...scoped.map((s) => ({ caId: s.caId, scope: s.scope === ARL_SCOPE ? "arl" : s.scope, latest: s.latest })),
  ];
}

/**
 * What /crl/index.json lists, bounded by the watchdog: each CA's full CRL (no scope), then its published delta CRL
 * (scope "delta"), its municipality partitions and its ARL; and `more(status)`, what the route reads from them
 * (which retired generations' CRLs have ended), in the same watched call: begun within it (StoreWatchdog.within),
 * so its first store read ties its connection to the call too (FinishedCrls.ended begins its later reads, after its
 * own awaits, within the call it began in).
 */
export function crlIndexRecords<T>(
  store: Store,
  watchdog: StoreWatchdog,
  more: (status: Array<CrlStatus | CrlScopeStatus | { readonly caId: string; readonly scope: "delta"; readonly latest: CrlRecord }>) => Promise<T>,
): Promise<{ status: Array<CrlStatus | CrlScopeStatus | { readonly caId: string; readonly scope: "delta"; readonly latest: CrlRecord }>; more: T }> {
  return watchdog.run("the CRL index's reads", async (_deadline, call) => {
    const [full, deltas, scoped] = await Promise.all([store.crlStatus(), store.deltaCrlStatus(), store.crlScopeStatus()]);
    const status = [...full, ...deltas.flatMap((d) => (d.delta ? [{ caId: d.caId, scope: "delta" as const, latest: d.delta }] : [])), ...scoped];
    return { status, more: await watchdog.within(call, () => more(status)) };
  });
}
