/**
 * The store contract (contract.ts, audit-contract.ts) on PostgreSQL: each test on a database of its own, a copy
 * of a migrated template. The PostgreSQL specifics are in postgres.test.ts, postgres-schema.test.ts and
 * postgres-log.test.ts (test/postgres-store-kit.ts says why four files).
 */
import { migratedTemplate as templateOf } from "../../test/postgres-store-kit.js";
import { usePostgres } from "../../test/use-postgres.js";
import { storeContract } from "./contract.js";
import { auditContract } from "./audit-contract.js";
import { PostgresStore } from "./postgres.js";
import type { Store } from "./types.js";

const server = usePostgres();

const migratedTemplate = (): Promise<string> => templateOf(server);

/** A new database per store, each a copy of the migrated template: the contract's tests share nothing. */
const fresh = async (): Promise<Store> => PostgresStore.open(await server.createDatabase(await migratedTemplate()), { create: true });

storeContract("postgres", fresh);
auditContract("postgres", fresh);
