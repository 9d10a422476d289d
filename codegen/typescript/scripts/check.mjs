#!/usr/bin/env node
// The TypeScript side's checks, run by `make test` (so by CI) after `npm run build`:
//   1. the generated operation types match schema.graphql (regenerated in memory and compared);
//   2. the packages and the demo compile (tsc, strict), and the published types hold no `any`;
//   3. bundle sizes (minified + gzipped, the app's own dependencies left out) within budget;
//   4. the API reference builds with every export documented (typedoc, warnings are errors).
//   npm run check        (from the repository root)
import { execFileSync } from "node:child_process";
import { readFileSync } from "node:fs";
import { gzipSync } from "node:zlib";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { build } from "esbuild";
import { generate } from "@graphql-codegen/cli";

const here = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const root = resolve(here, "..", "..");
const bin = (name) => join(root, "node_modules", ".bin", name);
const failures = [];

// Budgets in gzipped bytes (NFR-6.2: the client under 20 KB without yjs).
const BUDGETS = [
  { name: "@syncforge/client", entry: "client/dist/index.js", limit: 20 * 1024, external: ["yjs", "y-protocols", "y-protocols/*", "lib0", "lib0/*"] },
  { name: "@syncforge/react", entry: "react/dist/index.js", limit: 10 * 1024, external: ["react", "react/*", "@syncforge/client", "yjs", "y-protocols/*"] },
];

function step(title, run) {
  process.stdout.write(`check: ${title} ... `);
  try {
    const note = run();
    console.log(note ?? "ok");
  } catch (error) {
    console.log("FAILED");
    failures.push(`${title}: ${error.stdout?.toString() ?? ""}${error.stderr?.toString() ?? ""}${error.message}`);
  }
}

// 1. Generated code is current.
process.chdir(root);
const config = (await import(join(here, "codegen.mjs"))).default;
const outputs = await generate({ ...config, silent: true }, false);
step("generated operation types match schema.graphql", () => {
  for (const output of outputs) {
    const committed = readFileSync(output.filename, "utf8");
    if (committed !== output.content) {
      throw new Error(`${relative(root, output.filename)} is stale: run \`npm run codegen\` and commit it`);
    }
  }
  return `ok (${outputs.length} file)`;
});

// 2. Everything compiles against the generated types.
for (const project of ["codegen/typescript/client", "codegen/typescript/react", "demo"]) {
  step(`tsc --noEmit -p ${project}`, () => {
    execFileSync(bin("tsc"), ["--noEmit", "-p", project], { stdio: "pipe" });
  });
}

// 2b. No `any` in the published types (comments aside).
for (const name of ["client", "react"]) {
  step(`no \`any\` in @syncforge/${name}'s types`, () => {
    const types = readFileSync(join(here, name, "dist", "index.d.ts"), "utf8").replace(/\/\*[\s\S]*?\*\//g, "");
    const found = types.split("\n").filter((line) => /(^|[^\w$.])any([^\w$]|$)/.test(line));
    if (found.length > 0) throw new Error(`\n  ${found.join("\n  ")}`);
  });
}

// 3. Sizes.
for (const budget of BUDGETS) {
  const result = await build({
    entryPoints: [join(here, budget.entry)],
    bundle: true,
    minify: true,
    format: "esm",
    write: false,
    external: budget.external,
    logLevel: "silent",
  });
  const bytes = result.outputFiles[0].contents;
  const gzipped = gzipSync(bytes, { level: 9 }).length;
  step(`size of ${budget.name}`, () => {
    const figure = `${(gzipped / 1024).toFixed(1)} KB gzipped (${(bytes.length / 1024).toFixed(1)} KB minified), budget ${budget.limit / 1024} KB`;
    if (gzipped > budget.limit) throw new Error(figure);
    return figure;
  });
}

// 4. API reference, every export documented.
for (const name of ["client", "react"]) {
  step(`typedoc @syncforge/${name} (undocumented exports are errors)`, () => {
    execFileSync(bin("typedoc"), ["--options", `typedoc.${name}.json`, "--logLevel", "Warn"], { cwd: here, stdio: "pipe" });
    return `ok (codegen/typescript/docs/${name}/index.html)`;
  });
}

if (failures.length > 0) {
  console.error(`\n${failures.join("\n\n")}`);
  process.exit(1);
}
