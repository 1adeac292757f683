// The reading and adjudication pages around the viewer (viewer/, Cornerstone3D, bundled into
// static/annotations/viewer/): the answer form, autosave with retry, "next case", decisions.
"use strict";

// The colours of the marks: the user's own first, then each reader's on the adjudication page
// (the same list as the viewer's, in viewer/src/viewer.js).
const COLORS = ["#ffb000", "#29b6f6", "#ef5350", "#66bb6a", "#ab47bc"];

function csrfToken() {
  const match = document.cookie.match(/csrftoken=([^;]+)/);
  return match ? match[1] : "";
}

// Saves the whole answer set (PUT is idempotent): the latest state wins, failures are retried.
class Autosave {
  constructor(url, indicator) { this.url = url; this.indicator = indicator; this.pending = null; this.retryDelay = 1000; }

  schedule(body, delay = 600) {
    this.pending = body;
    this.show("Unsaved changes…", "unsaved");
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.flush(), delay);
  }

  async flush() {
    if (!this.pending) return true;
    const body = this.pending;
    try {
      const response = await fetch(this.url, {
        method: "PUT", credentials: "same-origin",
        headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
        body: JSON.stringify(body),
      });
      if (response.status === 400) { this.show("Not saved: " + JSON.stringify(await response.json()), "error"); this.pending = null; return false; }
      if (!response.ok) throw new Error(response.status);
      if (this.pending === body) this.pending = null;
      this.retryDelay = 1000;
      this.show("All changes saved", "saved");
      return true;
    } catch (error) {
      this.show(`Offline, retrying in ${this.retryDelay / 1000} s…`, "retrying");
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.flush(), this.retryDelay);
      this.retryDelay = Math.min(this.retryDelay * 2, 30000);
      return false;
    }
  }

  show(text, state) { this.indicator.textContent = text; this.indicator.dataset.state = state; }
}

function answerField(label, value, onChange) {
  const wrapper = document.createElement("fieldset");
  wrapper.className = "label-field";
  wrapper.dataset.label = label.key;
  const legend = Object.assign(document.createElement("legend"), { textContent: label.title });
  const definition = Object.assign(document.createElement("div"), { className: "definition" });
  definition.innerHTML = label.definition_html;  // sanitized by the server's Markdown renderer
  wrapper.append(legend, definition);
  if (label.kind === "choice" || label.kind === "multiple_choice") {
    const type = label.kind === "choice" ? "radio" : "checkbox";
    for (const option of label.options) {
      const id = `${label.key}-${option}`;
      const input = Object.assign(document.createElement("input"), { type, name: label.key, value: option, id });
      input.checked = type === "radio" ? value === option : (value || []).includes(option);
      input.addEventListener("change", onChange);
      const text = Object.assign(document.createElement("label"), { htmlFor: id, textContent: option });
      wrapper.append(input, text);
    }
  } else if (label.kind === "number" || label.kind === "text") {
    const input = document.createElement(label.kind === "text" ? "textarea" : "input");
    if (label.kind === "number") { input.type = "number"; input.step = "any"; }
    input.name = label.key;
    input.value = value ?? "";
    input.addEventListener("input", onChange);
    wrapper.append(input);
  } else {
    const how = { boxes: "b: drag a box", points: "p: click", masks: "m: paint, f: fill an outline, e: erase, [ ]: brush size" }[label.kind];
    wrapper.insertAdjacentHTML("beforeend", `<p class="muted">Draw on the image (${how}).</p>`);
  }
  return wrapper;
}

function readField(form, label) {
  if (label.kind === "choice") { const checked = form.querySelector(`input[name="${label.key}"]:checked`); return checked ? checked.value : null; }
  if (label.kind === "multiple_choice") return [...form.querySelectorAll(`input[name="${label.key}"]:checked`)].map((i) => i.value);
  const input = form.querySelector(`[name="${label.key}"]`);
  if (!input || input.value === "") return null;
  return label.kind === "number" ? Number(input.value) : input.value;
}

function collect(form, labels, marks) {
  const answers = {};
  for (const label of labels) {
    const value = ["boxes", "points", "masks"].includes(label.kind) ? (marks[label.key] || []) : readField(form, label);
    if (value !== null) answers[label.key] = value;
  }
  return answers;
}

window.MicaReader = async function (state, Viewer) {
  const assignment = state.assignment;
  const markLabels = state.labels.filter((label) => ["boxes", "points", "masks"].includes(label.kind));
  const marks = {};
  // A label not answered yet starts from the model's proposals, if the organizer loaded some.
  for (const label of markLabels) marks[label.key] = assignment.answers[label.key] ?? (assignment.proposals || {})[label.key] ?? [];
  const form = document.getElementById("answers");
  const save = new Autosave(state.answersUrl, document.getElementById("save-state"));
  const changed = () => save.schedule({ answers: collect(form, state.labels, marks) });
  for (const label of state.labels) form.append(answerField(label, assignment.answers[label.key], changed));
  const viewer = new Viewer(document.getElementById("viewer"), { root: assignment.dicomweb_root, images: assignment.images, markLabels, marks, onChange: changed });
  document.querySelectorAll("[data-preset]").forEach((b) => b.addEventListener("click", () => { viewer.setPreset(b.dataset.preset); viewer.canvas.focus(); }));
  document.querySelectorAll("[data-tool]").forEach((b) => b.addEventListener("click", () => { viewer.useTool(b.dataset.tool); viewer.canvas.focus(); }));
  document.querySelectorAll("[data-mask-mode]").forEach((b) => b.addEventListener("click", () => { viewer.setMaskMode(b.dataset.maskMode); viewer.canvas.focus(); }));
  const next = async () => {
    save.pending = { answers: collect(form, state.labels, marks), submit: true };
    if (await save.flush()) window.location = state.nextUrl;
  };
  document.getElementById("next-case").addEventListener("click", next);
  document.addEventListener("keydown", (event) => { if (event.key === "n" && event.target.tagName !== "INPUT" && event.target.tagName !== "TEXTAREA") next(); });
  window.addEventListener("beforeunload", (event) => { if (save.pending) { event.preventDefault(); event.returnValue = ""; } });
  window.micaViewer = viewer;  // for the browser tests, as soon as it exists
  await viewer.start();
  viewer.canvas.focus();
};

window.MicaAdjudicator = async function (state, Viewer) {
  // Masks are decided in the viewer too (the readers' masks are taken with the buttons, not overlaid).
  const markLabels = state.labels.filter((label) => ["boxes", "points", "masks"].includes(label.kind));
  // Every reader's marks are drawn in the decision viewer in their colour; their answers side by side here.
  const panels = document.getElementById("reader-panels");
  for (const [position, [name, answers]] of Object.entries(state.readers).entries()) {
    const panel = document.createElement("div");
    panel.className = "card reader-panel";
    panel.dataset.reader = name;
    const title = Object.assign(document.createElement("h3"), { textContent: name });
    title.prepend(Object.assign(document.createElement("span"), { className: "swatch" }));
    title.firstChild.style.background = COLORS[(position + 1) % COLORS.length];
    const summary = document.createElement("ul");
    for (const label of state.labels) {
      const item = document.createElement("li");
      const value = answers[label.key];
      const unit = { boxes: "box(es)", points: "point(s)", masks: "painted frame(s)" }[label.kind];
      const shown = markLabels.includes(label) ? `${(value || []).length} ${unit}` : (value == null ? "–" : JSON.stringify(value));
      item.textContent = `${label.title}: ${shown}`;
      summary.append(item);
    }
    panel.append(title, summary);
    panels.append(panel);
  }
  const decision = {};
  for (const label of markLabels) decision[label.key] = state.values[label.key] || [];
  const form = document.getElementById("decision");
  for (const label of state.labels) {
    form.append(answerField(label, state.values[label.key], () => {}));
    if (markLabels.includes(label)) {
      for (const [name, answers] of Object.entries(state.readers)) {
        const button = Object.assign(document.createElement("button"), { type: "button", textContent: `Take ${name}'s ${label.title.toLowerCase()}` });
        button.dataset.take = `${name}:${label.key}`;
        button.addEventListener("click", () => { decision[label.key] = JSON.parse(JSON.stringify(answers[label.key] || [])); viewer.draw(); });
        form.append(button);
      }
    }
  }
  const viewer = new Viewer(document.getElementById("decision-viewer"), {
    root: state.dicomwebRoot, images: state.images, markLabels, marks: decision,
    overlays: Object.entries(state.readers).map(([name, answers]) => ({ name, marks: answers })),
  });
  window.micaViewer = viewer;
  await viewer.start();
  document.getElementById("decide").addEventListener("click", async () => {
    const response = await fetch(state.adjudicationUrl, {
      method: "PUT", credentials: "same-origin",
      headers: { "Content-Type": "application/json", "X-CSRFToken": csrfToken() },
      body: JSON.stringify({ case_id: state.caseId, answers: collect(form, state.labels, decision) }),
    });
    const indicator = document.getElementById("save-state");
    if (response.ok) window.location = state.doneUrl;
    else indicator.textContent = "Not saved: " + JSON.stringify(await response.json());
  });
};
