// Mica's reading viewer without a build step: frames rendered by Mica's DICOMweb (WADO-RS
// /rendered, windowed on the server), slices, window presets, zoom, pan, boxes and points,
// keyboard shortcuts, and autosave with retry. Marks are in image pixels of one frame.
"use strict";

const PRESETS = { "1": ["Brain", 40, 80], "2": ["Lung", -600, 1500], "3": ["Bone", 300, 2000], "4": ["Mediastinum", 50, 350] };
const COLORS = ["#ffb000", "#29b6f6", "#ef5350", "#66bb6a", "#ab47bc"];

function csrfToken() {
  const match = document.cookie.match(/csrftoken=([^;]+)/);
  return match ? match[1] : "";
}

async function slicesOf(root, images) {
  const slices = [];
  for (const image of images) {
    const url = `${root}/studies/${image.study_uid}/series/${image.series_uid}/instances?SOPInstanceUID=${image.sop_instance_uid}&includefield=00280008`;
    const response = await fetch(url, { credentials: "same-origin" });
    const record = response.status === 200 ? (await response.json())[0] : {};
    const frames = (record["00280008"] && record["00280008"].Value) ? record["00280008"].Value[0] : 1;
    const number = (record["00200013"] && record["00200013"].Value) ? record["00200013"].Value[0] : 0;
    for (let frame = 1; frame <= frames; frame++) slices.push({ ...image, frame, number });
  }
  slices.sort((a, b) => a.number - b.number || a.frame - b.frame);
  return slices;
}

class MicaViewer {
  constructor(element, { root, images, markLabels, marks, overlays = [], editable = true, color = COLORS[0], onChange = () => {} }) {
    this.color = color;
    this.element = element;
    this.root = root;
    this.images = images;
    this.markLabels = markLabels;  // [{key, kind, title}] of kind boxes or points
    this.marks = marks;            // {labelKey: [mark, …]}, edited in place
    this.overlays = overlays;      // [{name, marks}] shown read-only, one colour each
    this.editable = editable;
    this.onChange = onChange;
    this.tool = markLabels.length ? markLabels[0].key : "pan";
    this.window = null;
    this.zoom = 1; this.panX = 0; this.panY = 0;
    this.index = 0;
    this.image = new Image();
    this.canvas = document.createElement("canvas");
    this.canvas.className = "viewer-canvas";
    this.canvas.tabIndex = 0;
    this.status = document.createElement("div");
    this.status.className = "viewer-status muted";
    element.append(this.canvas, this.status);
    this.bind();
  }

  async start() {
    this.slices = await slicesOf(this.root, this.images);
    this.show(0);
  }

  get slice() { return this.slices[this.index]; }

  show(index) {
    if (!this.slices.length) { this.status.textContent = "No DICOM image in this case."; return; }
    this.index = Math.max(0, Math.min(this.slices.length - 1, index));
    const s = this.slice;
    const windowQuery = this.window ? `?window=${this.window[0]},${this.window[1]},linear` : "";
    const url = `${this.root}/studies/${s.study_uid}/series/${s.series_uid}/instances/${s.sop_instance_uid}/frames/${s.frame}/rendered${windowQuery}`;
    if (url === this.shownUrl) { this.draw(); this.updateStatus(); return; }
    // The status changes once the image is drawn, so that what it says is what is shown.
    this.image.onload = () => {
      this.shownUrl = url;
      if (!this.base) this.fit();
      this.draw();
      this.updateStatus();
    };
    this.image.onerror = () => { this.status.textContent = `Image ${this.index + 1} could not be loaded; scroll to retry.`; };
    this.image.src = url;
  }

  updateStatus() {
    const preset = this.window ? ` · window ${this.window[1]}/${this.window[0]}` : " · default window";
    this.status.textContent = `Image ${this.index + 1} of ${this.slices.length}${preset} · tool: ${this.tool} · zoom ${this.zoom.toFixed(1)}×`;
  }

  // The whole image in view, centred, at zoom 1 (once per case: slices share the geometry).
  fit() {
    const width = this.element.clientWidth || 640;
    const height = Math.max(320, Math.min(width * 1.2, window.innerHeight - 240));
    this.canvas.width = width;
    this.canvas.height = Math.round(Math.min(height, width * this.image.naturalHeight / this.image.naturalWidth));
    this.base = Math.min(this.canvas.width / this.image.naturalWidth, this.canvas.height / this.image.naturalHeight);
    this.panX = (this.canvas.width - this.image.naturalWidth * this.base) / 2;
    this.panY = (this.canvas.height - this.image.naturalHeight * this.base) / 2;
  }

  get scale() { return this.base * this.zoom; }

  toImage(event) {
    const box = this.canvas.getBoundingClientRect();
    return { x: (event.clientX - box.left - this.panX) / this.scale, y: (event.clientY - box.top - this.panY) / this.scale };
  }

  onSlice(mark) { return mark.instance === this.slice.sop_instance_uid && (mark.frame || 1) === this.slice.frame; }

  draw() {
    const context = this.canvas.getContext("2d");
    context.setTransform(1, 0, 0, 1, 0, 0);
    context.fillStyle = "#000";
    context.fillRect(0, 0, this.canvas.width, this.canvas.height);
    context.setTransform(this.scale, 0, 0, this.scale, this.panX, this.panY);
    context.drawImage(this.image, 0, 0);
    const layers = [{ marks: this.marks, color: this.color }, ...this.overlays.map((overlay, i) => ({ marks: overlay.marks, color: COLORS[(i + 1) % COLORS.length] }))];
    context.lineWidth = 2 / this.scale;
    for (const layer of layers) {
      context.strokeStyle = context.fillStyle = layer.color;
      for (const label of this.markLabels) {
        for (const mark of (layer.marks[label.key] || []).filter((m) => this.onSlice(m))) {
          if (label.kind === "boxes") context.strokeRect(mark.x, mark.y, mark.width, mark.height);
          else { context.beginPath(); context.arc(mark.x, mark.y, 4 / this.scale, 0, 2 * Math.PI); context.fill(); }
        }
      }
    }
    if (this.drawing) {
      context.strokeStyle = "#fff";
      const d = this.drawing;
      context.strokeRect(d.x, d.y, d.width, d.height);
    }
  }

  labelOfTool() { return this.markLabels.find((label) => label.key === this.tool); }

  bind() {
    this.canvas.addEventListener("wheel", (event) => {
      event.preventDefault();
      if (event.ctrlKey) { this.zoom = Math.max(0.5, Math.min(8, this.zoom * (event.deltaY < 0 ? 1.2 : 1 / 1.2))); this.show(this.index); }
      else this.show(this.index + (event.deltaY > 0 ? 1 : -1));
    }, { passive: false });
    this.canvas.addEventListener("mousedown", (event) => {
      const start = this.toImage(event);
      const label = this.labelOfTool();
      if (!label || !this.editable || event.shiftKey) { this.dragging = { x: event.clientX - this.panX, y: event.clientY - this.panY }; return; }
      if (label.kind === "points") { this.add(label, { x: start.x, y: start.y }); return; }
      this.drawing = { x: start.x, y: start.y, width: 0, height: 0, start };
    });
    this.canvas.addEventListener("mousemove", (event) => {
      if (this.dragging) { this.panX = event.clientX - this.dragging.x; this.panY = event.clientY - this.dragging.y; this.draw(); }
      if (this.drawing) {
        const point = this.toImage(event), start = this.drawing.start;
        Object.assign(this.drawing, { x: Math.min(start.x, point.x), y: Math.min(start.y, point.y), width: Math.abs(point.x - start.x), height: Math.abs(point.y - start.y) });
        this.draw();
      }
    });
    window.addEventListener("mouseup", () => {
      this.dragging = null;
      if (this.drawing) {
        const { x, y, width, height } = this.drawing;
        this.drawing = null;
        if (width > 2 && height > 2) this.add(this.labelOfTool(), { x, y, width, height });
        else this.draw();
      }
    });
    this.canvas.addEventListener("keydown", (event) => this.key(event));
  }

  add(label, geometry) {
    const rounded = Object.fromEntries(Object.entries(geometry).map(([k, v]) => [k, Math.round(v * 10) / 10]));
    (this.marks[label.key] = this.marks[label.key] || []).push({ instance: this.slice.sop_instance_uid, frame: this.slice.frame, ...rounded });
    this.draw();
    this.onChange();
  }

  key(event) {
    if (PRESETS[event.key]) { this.window = PRESETS[event.key].slice(1); this.show(this.index); }
    else if (event.key === "0") { this.window = null; this.show(this.index); }
    else if (event.key === "ArrowDown" || event.key === "ArrowRight") this.show(this.index + 1);
    else if (event.key === "ArrowUp" || event.key === "ArrowLeft") this.show(this.index - 1);
    else if (event.key === "+" || event.key === "=") { this.zoom = Math.min(8, this.zoom * 1.25); this.show(this.index); }
    else if (event.key === "-") { this.zoom = Math.max(0.5, this.zoom / 1.25); this.show(this.index); }
    else if (event.key === "r") { this.zoom = 1; this.fit(); this.show(this.index); }
    else if (event.key === "h") { this.tool = "pan"; this.show(this.index); }
    else if (event.key === "b" || event.key === "p") {
      const kind = event.key === "b" ? "boxes" : "points";
      const label = this.markLabels.find((l) => l.kind === kind);
      if (label) { this.tool = label.key; this.show(this.index); }
    } else if ((event.key === "Delete" || event.key === "Backspace") && this.editable) {
      const label = this.labelOfTool();
      const list = label ? (this.marks[label.key] || []) : [];
      for (let i = list.length - 1; i >= 0; i--) if (this.onSlice(list[i])) { list.splice(i, 1); break; }
      this.draw(); this.onChange();
    } else return;
    event.preventDefault();
  }

  setPreset(name) { this.key({ key: name, preventDefault() {} }); }
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
    wrapper.insertAdjacentHTML("beforeend", `<p class="muted">Draw on the image (${label.kind === "boxes" ? "b" : "p"}).</p>`);
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

window.MicaReader = async function (state) {
  const assignment = state.assignment;
  const markLabels = state.labels.filter((label) => label.kind === "boxes" || label.kind === "points");
  const marks = {};
  for (const label of markLabels) marks[label.key] = assignment.answers[label.key] || [];
  const form = document.getElementById("answers");
  const save = new Autosave(state.answersUrl, document.getElementById("save-state"));
  const changed = () => save.schedule({ answers: collect(form, state.labels, marks) });
  for (const label of state.labels) form.append(answerField(label, assignment.answers[label.key], changed));
  const viewer = new MicaViewer(document.getElementById("viewer"), { root: assignment.dicomweb_root, images: assignment.images, markLabels, marks, onChange: changed });
  document.querySelectorAll("[data-preset]").forEach((b) => b.addEventListener("click", () => { viewer.setPreset(b.dataset.preset); viewer.canvas.focus(); }));
  document.querySelectorAll("[data-tool]").forEach((b) => b.addEventListener("click", () => { viewer.tool = b.dataset.tool; viewer.show(viewer.index); viewer.canvas.focus(); }));
  const next = async () => {
    save.pending = { answers: collect(form, state.labels, marks), submit: true };
    if (await save.flush()) window.location = state.nextUrl;
  };
  document.getElementById("next-case").addEventListener("click", next);
  document.addEventListener("keydown", (event) => { if (event.key === "n" && event.target.tagName !== "INPUT" && event.target.tagName !== "TEXTAREA") next(); });
  window.addEventListener("beforeunload", (event) => { if (save.pending) { event.preventDefault(); event.returnValue = ""; } });
  await viewer.start();
  viewer.canvas.focus();
  window.micaViewer = viewer;
};

window.MicaAdjudicator = async function (state) {
  const markLabels = state.labels.filter((label) => label.kind === "boxes" || label.kind === "points");
  const panels = document.getElementById("reader-panels");
  for (const [position, [name, answers]] of Object.entries(state.readers).entries()) {
    const panel = document.createElement("div");
    panel.className = "card reader-panel";
    panel.dataset.reader = name;
    panel.append(Object.assign(document.createElement("h3"), { textContent: name }));
    panels.append(panel);
    const summary = document.createElement("ul");
    for (const label of state.labels) {
      const item = document.createElement("li");
      const value = answers[label.key];
      const shown = markLabels.includes(label) ? `${(value || []).length} ${label.kind === "boxes" ? "box(es)" : "point(s)"}` : (value == null ? "–" : JSON.stringify(value));
      item.textContent = `${label.title}: ${shown}`;
      summary.append(item);
    }
    const viewer = new MicaViewer(panel, { root: state.dicomwebRoot, images: state.images, markLabels, marks: answers, editable: false, color: COLORS[(position + 1) % COLORS.length] });
    panel.append(summary);
    viewer.start();
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
  const viewer = new MicaViewer(document.getElementById("decision-viewer"), {
    root: state.dicomwebRoot, images: state.images, markLabels, marks: decision,
    overlays: Object.entries(state.readers).map(([name, answers]) => ({ name, marks: answers })),
  });
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
  window.micaViewer = viewer;
};
