// Bundles the Mini App (and the TypeScript client it imports) into dist/, with its page and
// styles: what `surge dev` serves.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";

rmSync("dist", { recursive: true, force: true });
mkdirSync("dist");
await build({
  entryPoints: ["src/main.ts"],
  bundle: true,
  format: "esm",
  target: "es2022",
  minify: true,
  sourcemap: true,
  outfile: "dist/app.js",
});
for (const file of ["index.html", "style.css"]) copyFileSync(`src/${file}`, `dist/${file}`);
