#!/usr/bin/env node
// Builds the demo into app/demo/static/ (build output, .gitignore'd), which the app serves at
// /demo-assets when the demo is on. Everything is bundled from node_modules: no CDN.
//   npm ci && npm run build   (from the repository root; the SDK packages build first)
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const root = resolve(here, "..");
const outDir = join(root, "app", "demo", "static");

rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
await build({
  entryPoints: [join(here, "src", "main.tsx")],
  outfile: join(outDir, "demo.js"),
  bundle: true,
  format: "esm",
  minify: true,
  sourcemap: true,
  target: "es2020",
  jsx: "automatic",
  define: { "process.env.NODE_ENV": '"production"' },
  logLevel: "warning",
});
copyFileSync(join(here, "src", "demo.css"), join(outDir, "demo.css"));
for (const name of ["demo.js", "demo.css"]) {
  console.log(`demo: ${relative(root, join(outDir, name))} (${statSync(join(outDir, name)).size} bytes)`);
}
