// The reading page's entry: a module file, so that the site's Content-Security-Policy needs no
// inline script. The page's state comes from a JSON <script> block that is never executed.
import { CornerstoneViewer } from "./viewer/viewer.js";

const state = JSON.parse(document.getElementById("reader-state").textContent);
for (const form of document.querySelectorAll("form[data-no-submit]")) {
  form.addEventListener("submit", (event) => event.preventDefault());
}
if (document.querySelector("script[data-page=adjudicate]")) {
  MicaAdjudicator(state, CornerstoneViewer);
} else {
  MicaReader(state, CornerstoneViewer);
}
