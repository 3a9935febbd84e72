// Builds the /play page into server/assets/play/ (checked in, so the server needs no Node):
// index.html and play.css are copied, play.ts is bundled with @ludus/client into play.js.
import { build } from "esbuild";
import { copyFileSync, mkdirSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "../../server/assets/play");
mkdirSync(out, { recursive: true });
await build({
  entryPoints: [join(here, "src/play.ts")],
  outfile: join(out, "play.js"),
  bundle: true,
  format: "esm",
  target: ["es2020"],
  platform: "browser",
  legalComments: "none",
  logLevel: "info",
});
for (const file of ["index.html", "play.css"]) copyFileSync(join(here, "src", file), join(out, file));
console.log(`built ${out}`);
