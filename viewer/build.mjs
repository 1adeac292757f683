// Bundles the reader's viewer (Cornerstone3D) into the annotations app's static files:
// viewer.js (an ES module), the image decoder's web worker, and the codecs' WebAssembly files
// at the paths the decoders ask for (relative to the worker). Run by `make viewer`.
import { build } from "esbuild";
import { copyFileSync, mkdirSync, rmSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, "..", "platform", "mica", "annotations", "static", "annotations", "viewer");
const require = createRequire(import.meta.url);
const loaderDist = join(dirname(require.resolve("@cornerstonejs/dicom-image-loader/package.json")), "dist", "esm");

// The codecs' Emscripten glue and an XML writer (for export formats the viewer does not use)
// name Node's built-ins on paths the browser never takes: give them empty stand-ins.
const nodeBuiltinsEmpty = {
  name: "node-builtins-empty",
  setup(builder) {
    builder.onResolve({ filter: /^(fs|path|crypto|module|url|worker_threads|events)$/ }, (args) => ({ path: args.path, namespace: "empty" }));
    builder.onLoad({ filter: /.*/, namespace: "empty" }, () => ({
      contents: "export class EventEmitter {}\nexport default { EventEmitter };", loader: "js",
    }));
  },
};

rmSync(out, { recursive: true, force: true });
const common = { bundle: true, format: "esm", minify: true, sourcemap: false, target: "es2022", logLevel: "warning",
  platform: "browser", plugins: [nodeBuiltinsEmpty] };
await build({ ...common, entryPoints: [join(here, "src", "viewer.js")], outfile: join(out, "viewer.js") });
await build({ ...common, entryPoints: [join(loaderDist, "decodeImageFrameWorker.js")], outfile: join(out, "decodeImageFrameWorker.js") });

// The decoders fetch new URL("@cornerstonejs/codec-…/decodewasm", import.meta.url): put each file there.
const codecs = {
  "codec-charls/decodewasm": "@cornerstonejs/codec-charls/decodewasm",
  "codec-openjpeg/decodewasm": "@cornerstonejs/codec-openjpeg/decodewasm",
  "codec-libjxl/decodewasm": "@cornerstonejs/codec-libjxl/decodewasm",
  "codec-libjpeg-turbo-8bit/decodewasm": "@cornerstonejs/codec-libjpeg-turbo-8bit/decodewasm",
  "codec-openjph/wasm": "@cornerstonejs/codec-openjph/wasm",
};
for (const [target, specifier] of Object.entries(codecs)) {
  const destination = join(out, "@cornerstonejs", target);
  mkdirSync(dirname(destination), { recursive: true });
  copyFileSync(require.resolve(specifier), destination);
}
console.log(`viewer bundle written to ${out}`);
