#!/usr/bin/env node
// Copies the self-hosted GraphiQL assets out of node_modules into app/graphql/static/graphiql/,
// which app/main.py serves at /graphiql-assets and app/graphql/templates/graphiql.html loads.
// No bundling: every file is a prebuilt UMD/CSS file shipped in the npm package.
//
//   npm ci && npm run build
//
// Fails (exit 1) if node_modules is missing, stale (a version differs from package.json's pin),
// or lacks any source file; the output directory is only touched once every source is present.

import { copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const nodeModules = join(root, "node_modules");
const outDir = join(root, "app", "graphql", "static", "graphiql");

// [npm package, file inside the package, name written to outDir]
const ASSETS = [
  ["react", "umd/react.production.min.js", "react.production.min.js"],
  ["react-dom", "umd/react-dom.production.min.js", "react-dom.production.min.js"],
  // graphiql's UMD bundle includes graphql (GraphiQL.GraphQL), @graphiql/react (GraphiQL.React)
  // and the graphql-ws client used by createFetcher({ subscriptionUrl }).
  ["graphiql", "graphiql.min.js", "graphiql.min.js"],
  ["graphiql", "graphiql.min.css", "graphiql.min.css"],
  ["@graphiql/plugin-explorer", "dist/index.umd.js", "plugin-explorer.umd.js"],
  ["@graphiql/plugin-explorer", "dist/style.css", "plugin-explorer.css"],
];

function fail(message) {
  console.error(`build-graphiql: error: ${message}`);
  process.exit(1);
}

const manifest = JSON.parse(readFileSync(join(root, "package.json"), "utf8"));
const pinned = manifest.dependencies ?? {};

if (!existsSync(nodeModules)) {
  fail(`${relative(root, nodeModules)}/ does not exist: run \`npm ci\` first`);
}

const problems = [];
for (const pkg of new Set(ASSETS.map(([name]) => name))) {
  const pkgJson = join(nodeModules, pkg, "package.json");
  if (!existsSync(pkgJson)) {
    problems.push(`package ${pkg} is not installed (${relative(root, pkgJson)} missing)`);
    continue;
  }
  const installed = JSON.parse(readFileSync(pkgJson, "utf8")).version;
  if (pinned[pkg] !== undefined && pinned[pkg] !== installed) {
    problems.push(`package ${pkg} is ${installed} in node_modules but package.json pins ${pinned[pkg]}`);
  }
}
for (const [pkg, file] of ASSETS) {
  const src = join(nodeModules, pkg, file);
  if (!existsSync(src) || !statSync(src).isFile() || statSync(src).size === 0) {
    problems.push(`source file ${relative(root, src)} is missing or empty`);
  }
}
if (problems.length > 0) {
  fail(`${problems.join("\n  ")}\nrun \`npm ci\` (from package-lock.json) and try again`);
}

// Start clean so nothing stale survives an upgrade; the directory is build output (.gitignore'd).
rmSync(outDir, { recursive: true, force: true });
mkdirSync(outDir, { recursive: true });
for (const [pkg, file, name] of ASSETS) {
  const dest = join(outDir, name);
  copyFileSync(join(nodeModules, pkg, file), dest);
  console.log(`${pkg}/${file} -> ${relative(root, dest)} (${statSync(dest).size} bytes)`);
}
console.log(`build-graphiql: ${ASSETS.length} files in ${relative(root, outDir)}/`);
