import { defineConfig } from "drizzle-kit";

// `npm run db:generate` writes SQL migrations for workers/src/db/schema.ts into migrations/;
// wrangler applies them (`npm run db:migrate`, and the worker tests' setup file).
export default defineConfig({
  dialect: "sqlite",
  schema: "./workers/src/db/schema.ts",
  out: "./migrations",
});
