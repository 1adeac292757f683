// Turns every <form data-tus-purpose> into a resumable upload: its file input is sent with
// tus.js, its other fields go as metadata, a <progress> shows how far it got, and the page
// goes to what the file became once it is received.
import { TusUpload, UploadRefused } from "./tus.js";

function human(bytes) {
  const units = ["bytes", "KiB", "MiB", "GiB"];
  let value = bytes, unit = 0;
  while (value >= 1024 && unit < units.length - 1) { value /= 1024; unit += 1; }
  return `${unit ? value.toFixed(1) : value} ${units[unit]}`;
}

function wire(form) {
  const input = form.querySelector("input[type=file]");
  const progress = form.querySelector("progress");
  const status = form.querySelector("[data-upload-status]");
  const problems = form.querySelector("[data-upload-problems]");
  const button = form.querySelector("button[type=submit]");
  const say = (text, state) => { status.textContent = text; status.dataset.state = state; };
  let sentSoFar = "";

  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const file = input.files[0];
    if (!file) { say("Choose a file first.", "error"); return; }
    const metadata = { purpose: form.dataset.tusPurpose };
    for (const [name, value] of new FormData(form)) {
      if (name !== input.name && name !== "csrfmiddlewaretoken" && typeof value === "string") metadata[name] = value;
    }
    const upload = new TusUpload(file, {
      endpoint: form.dataset.tusEndpoint, metadata,
      headers: { "X-CSRFToken": form.querySelector("[name=csrfmiddlewaretoken]").value },
      chunkSize: Number(form.dataset.tusChunkBytes) || undefined,
      onProgress: (sent, total) => {
        progress.max = total;
        progress.value = sent;
        progress.hidden = false;
        sentSoFar = `${human(sent)} of ${human(total)} sent (${Math.floor((100 * sent) / total)}%)`;
        say(sentSoFar, "sending");
      },
      onRetry: (error, attempt) => say(`${sentSoFar}. Connection lost; resuming (attempt ${attempt})…`, "retrying"),
    });
    problems.replaceChildren();
    button.disabled = true;
    if (upload.url) say("Resuming the upload you started earlier…", "sending");
    try {
      const result = await upload.start();
      say("Received.", "done");
      window.location.assign(result);
    } catch (error) {
      button.disabled = false;
      if (error instanceof UploadRefused) {
        say("The upload was refused:", "error");
        for (const text of error.problems) {
          const item = document.createElement("li");
          item.textContent = text;
          problems.append(item);
        }
      } else {
        say("The connection is down; choose the same file and press the button again to resume.", "error");
      }
    }
  });
}

document.querySelectorAll("form[data-tus-purpose]").forEach(wire);
