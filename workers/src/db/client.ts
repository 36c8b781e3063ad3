import { drizzle, type DrizzleD1Database } from "drizzle-orm/d1";
import * as schema from "./schema.js";

export type Db = DrizzleD1Database<typeof schema>;

/** A drizzle handle over the D1 binding (cheap; one per request). */
export function createDb(d1: D1Database): Db {
  return drizzle(d1, { schema });
}
