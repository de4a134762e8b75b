/**
 * A StoreWatchdog's clock (store/watchdog.ts `now`) for tests: the wall's, but held where it is from the moment the
 * first stall begins (its onStalled) until `release()`. A test that expects the call right after a stall to be
 * refused at once held on the wall clock only if its process ran again within the bound; a loaded host that took
 * it off the CPU longer let that call through as the stall's probe. What follows — probes a bound apart, the store
 * back — runs on the wall clock again.
 */
export function firstStallHeld(): { now: () => number; onStalled: () => void; release: () => void } {
  let held: number | undefined;
  let armed = true;
  return {
    now: () => held ?? performance.now(),
    onStalled: () => {
      if (armed) held = performance.now();
      armed = false;
    },
    release: () => {
      held = undefined;
    },
  };
}
