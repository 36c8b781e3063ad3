import path from "node:path";
import { defineConfig } from "vite";

const here = import.meta.dirname;

/**
 * The marketplace web app: Preact through Vite's built-in Oxc JSX transform (no preset plugin
 * needed: the app uses no hooks-HMR or compat aliases). `#core/*` resolves through the root
 * package.json `imports`, so the browser bundles core's own parser (not a copy).
 */
export default defineConfig({
  root: here,
  base: "/",
  publicDir: false,
  logLevel: "warn",
  oxc: { jsx: { runtime: "automatic", importSource: "preact" } },
  build: {
    outDir: path.join(here, "dist"),
    emptyOutDir: true,
    target: "es2022",
    sourcemap: false,
    chunkSizeWarningLimit: 1024,
  },
});
