/**
 * Where a test run keeps the card keys openssl made for it (test/integration/helpers.ts cardKey): the global setup
 * sets it inside the run's temporary directory, so the pool goes with the run. Unset (a file run by other means),
 * every key is made anew.
 */
export const CARD_KEY_POOL_ENV = "JPKI_TEST_CARD_KEYS";
