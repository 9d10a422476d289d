import { defineConfig } from "tsup";

// A thin layer: react, the client and yjs are the app's.
export default defineConfig({
  entry: ["src/index.ts"],
  format: ["esm"],
  dts: true,
  sourcemap: true,
  clean: true,
  target: "es2020",
  external: ["react", "react/jsx-runtime", "@syncforge/client", "yjs", "y-protocols", /^y-protocols\//],
});
