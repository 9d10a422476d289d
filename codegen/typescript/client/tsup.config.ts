import { defineConfig } from "tsup";

// ESM + types; yjs and y-protocols are the app's (peer dependencies), graphql-ws is bundled in.
export default defineConfig({
  entry: ["src/index.ts"],
  format: ["esm"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "es2020",
  external: ["yjs", "y-protocols", /^y-protocols\//, "lib0", /^lib0\//],
  noExternal: ["graphql-ws"],
});
