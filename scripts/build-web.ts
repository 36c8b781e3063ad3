/**
 * `npm run build:web`: builds the web app into web/dist (served by the worker as static assets).
 * `--if-stale`: only when web/src, core/src, … changed since the last build (see lib/web-build.ts).
 */
import { buildWeb, buildWebIfStale, webDistDir } from "./lib/web-build.js";

const started = Date.now();
const ifStale = process.argv.includes("--if-stale");
const built = ifStale ? await buildWebIfStale() : (await buildWeb(), true);
console.log(built ? `web: built ${webDistDir} in ${Date.now() - started} ms` : "web: up to date");
