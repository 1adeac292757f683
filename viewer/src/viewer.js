// The reader's viewer on Cornerstone3D, reading Mica's DICOMweb (WADO-RS frames and metadata).
// It keeps the interface of the page's MicaViewer: marks are {instance, frame, x, y[, width, height]}
// in image pixels, read from and written to `marks` (one list per label key). Masks are painted on
// a labelmap per masks label (Cornerstone3D's segmentation) and stored per frame as run lengths:
// {instance, frame, rows, columns, rle}, background first, row by row.
import { RenderingEngine, Enums, init as coreInit, utilities, eventTarget, imageLoader, cache } from "@cornerstonejs/core";
import { init as loaderInit, wadors } from "@cornerstonejs/dicom-image-loader";
import * as tools from "@cornerstonejs/tools";

const { ViewportType, Events } = Enums;
const PRESETS = { "1": ["Brain", 40, 80], "2": ["Lung", -600, 1500], "3": ["Bone", 300, 2000], "4": ["Mediastinum", 50, 350] };
const COLORS = ["#ffb000", "#29b6f6", "#ef5350", "#66bb6a", "#ab47bc"];
const TOOL_OF_KIND = { boxes: tools.RectangleROITool, points: tools.ProbeTool };
let started = null;
let viewerCount = 0;

async function startOnce() {
  if (!started) {
    started = (async () => {
      await coreInit();
      loaderInit({ maxWebWorkers: Math.max(1, Math.min(4, navigator.hardwareConcurrency || 1)) });
      tools.init();
      for (const Tool of [tools.WindowLevelTool, tools.PanTool, tools.ZoomTool, tools.StackScrollTool,
        tools.RectangleROITool, tools.ProbeTool, tools.BrushTool, tools.PlanarFreehandROITool]) tools.addTool(Tool);
    })();
  }
  return started;
}

async function json(url) {
  const response = await fetch(url, { credentials: "same-origin", headers: { Accept: "application/dicom+json" } });
  if (!response.ok) throw new Error(`${url}: ${response.status}`);
  return response.json();
}

const first = (record, tag) => (record[tag] && record[tag].Value ? record[tag].Value[0] : undefined);

export class CornerstoneViewer {
  constructor(element, { root, images, markLabels, marks, overlays = [], editable = true, color = COLORS[0], onChange = () => {} }) {
    Object.assign(this, { element, root, images, marks, overlays, editable, color, onChange });
    this.markLabels = markLabels.filter((label) => label.kind !== "masks");
    this.maskLabels = markLabels.filter((label) => label.kind === "masks");
    this.maskMode = "brush";  // brush, freehand (fill an outline) or erase
    this.tool = markLabels.length ? markLabels[0].key : "pan";
    this.window = null;
    this.index = 0;
    this.id = `mica-${++viewerCount}`;
    this.canvas = document.createElement("div");
    this.canvas.className = "viewer-canvas viewer-cornerstone";
    this.canvas.tabIndex = 0;
    this.canvas.style.height = `${Math.max(320, Math.min(900, window.innerHeight - 240))}px`;
    this.canvas.addEventListener("contextmenu", (event) => event.preventDefault());
    this.status = document.createElement("div");
    this.status.className = "viewer-status muted";
    element.append(this.canvas, this.status);
  }

  async start() {
    await startOnce();
    // One metadata request per series (not per image): a 300-slice CT is one round trip.
    this.slices = [];
    const bySeries = new Map();
    for (const image of this.images) {
      const key = `${this.root}/studies/${image.study_uid}/series/${image.series_uid}`;
      if (!bySeries.has(key)) bySeries.set(key, []);
      bySeries.get(key).push(image);
    }
    for (const [seriesUrl, images] of bySeries) {
      const records = new Map((await json(`${seriesUrl}/metadata`)).map((record) => [first(record, "00080018"), record]));
      for (const image of images) {
        const metadata = records.get(image.sop_instance_uid);
        if (!metadata) continue;
        const frames = first(metadata, "00280008") || 1;
        for (let frame = 1; frame <= frames; frame++) {
          const imageId = `wadors:${new URL(`${seriesUrl}/instances/${image.sop_instance_uid}/frames/${frame}`, window.location.href)}`;
          wadors.metaDataManager.add(imageId, metadata);
          this.slices.push({ ...image, frame, imageId, number: first(metadata, "00200013") || 0,
            rows: first(metadata, "00280010"), columns: first(metadata, "00280011"),
            spacing: Number(first(metadata, "00280030")) || Number(first(metadata, "00181164")) || 1 });
        }
      }
    }
    this.slices.sort((a, b) => a.number - b.number || a.frame - b.frame);
    if (!this.slices.length) { this.status.textContent = "No DICOM image in this case."; return; }
    this.engine = new RenderingEngine(`${this.id}-engine`);
    this.engine.enableElement({ viewportId: this.id, type: ViewportType.STACK, element: this.canvas });
    this.viewport = this.engine.getViewport(this.id);
    this.toolGroup = tools.ToolGroupManager.createToolGroup(`${this.id}-tools`);
    for (const Tool of [tools.WindowLevelTool, tools.PanTool, tools.ZoomTool, tools.StackScrollTool, tools.RectangleROITool, tools.ProbeTool]) {
      this.toolGroup.addTool(Tool.toolName);
    }
    this.toolGroup.addViewport(this.id, this.engine.id);
    this.toolGroup.addToolInstance("MaskBrush", tools.BrushTool.toolName, { activeStrategy: "FILL_INSIDE_CIRCLE" });
    this.toolGroup.addToolInstance("MaskEraser", tools.BrushTool.toolName, { activeStrategy: "ERASE_INSIDE_CIRCLE" });
    this.toolGroup.addTool(tools.PlanarFreehandROITool.toolName, { calculateStats: false });
    // Readers mark findings; the tools' area and intensity statistics would only distract them.
    for (const Tool of [tools.RectangleROITool, tools.ProbeTool, tools.PlanarFreehandROITool]) {
      this.toolGroup.setToolConfiguration(Tool.toolName, { getTextLines: () => [] });
    }
    this.toolGroup.setToolActive(tools.StackScrollTool.toolName, { bindings: [{ mouseButton: tools.Enums.MouseBindings.Wheel }] });
    this.toolGroup.setToolActive(tools.ZoomTool.toolName, { bindings: [{ mouseButton: tools.Enums.MouseBindings.Secondary }] });
    this.toolGroup.setToolActive(tools.PanTool.toolName, { bindings: [{ mouseButton: tools.Enums.MouseBindings.Auxiliary },
      { mouseButton: tools.Enums.MouseBindings.Primary, modifierKey: tools.Enums.KeyboardBindings.Shift }] });
    this.useTool(this.tool);
    // The status is written once an image is on screen, so that what it says is what is shown.
    this.canvas.addEventListener(Events.STACK_NEW_IMAGE, () => { this.index = this.viewport.getCurrentImageIdIndex(); });
    this.canvas.addEventListener(Events.IMAGE_RENDERED, () => { this.rendered = true; this.updateStatus(); });
    await this.viewport.setStack(this.slices.map((slice) => slice.imageId), 0);
    if (this.maskLabels.length) this.startMasks();
    this.useTool(this.tool);
    this.loadMarks();
    for (const event of [tools.Enums.Events.ANNOTATION_COMPLETED, tools.Enums.Events.ANNOTATION_MODIFIED, tools.Enums.Events.ANNOTATION_REMOVED]) {
      eventTarget.addEventListener(event, (evt) => this.annotationsChanged(evt));
    }
    this.canvas.addEventListener("keydown", (event) => this.key(event));
    this.viewport.render();
  }

  get slice() { return this.slices[this.index]; }

  useTool(name) {
    this.tool = name;
    if (!this.toolGroup) return;
    const label = this.markLabels.find((item) => item.key === name);
    const maskLabel = this.maskLabels.find((item) => item.key === name);
    for (const toolName of [tools.RectangleROITool.toolName, tools.ProbeTool.toolName, tools.WindowLevelTool.toolName,
      "MaskBrush", "MaskEraser", tools.PlanarFreehandROITool.toolName]) this.toolGroup.setToolPassive(toolName);
    let active = label && this.editable ? TOOL_OF_KIND[label.kind] : (name === "pan" ? tools.PanTool : tools.WindowLevelTool);
    if (maskLabel && this.editable && this.segmentations) {
      const { segmentationId } = this.segmentations[maskLabel.key];
      tools.segmentation.activeSegmentation.setActiveSegmentation(this.id, segmentationId);
      tools.segmentation.segmentIndex.setActiveSegmentIndex(segmentationId, 1);
      active = { toolName: { brush: "MaskBrush", erase: "MaskEraser", freehand: tools.PlanarFreehandROITool.toolName }[this.maskMode] };
    }
    this.toolGroup.setToolActive(active.toolName, { bindings: [{ mouseButton: tools.Enums.MouseBindings.Primary }] });
    if (active !== tools.WindowLevelTool) {
      this.toolGroup.setToolActive(tools.WindowLevelTool.toolName, { bindings: [{ mouseButton: tools.Enums.MouseBindings.Primary, modifierKey: tools.Enums.KeyboardBindings.Ctrl }] });
    }
    this.updateStatus();
  }

  // Marks ↔ annotations: one annotation per mark, its label kept in metadata.label.
  loadMarks() {
    const layers = [{ marks: this.marks, color: this.color, locked: !this.editable }, ...this.overlays.map((overlay, i) => ({ marks: overlay.marks, color: COLORS[(i + 1) % COLORS.length], locked: true }))];
    this.loading = true;
    for (const layer of layers) {
      for (const label of this.markLabels) {
        for (const mark of layer.marks[label.key] || []) this.addAnnotation(label, mark, layer);
      }
    }
    this.loading = false;
    this.viewport.render();
  }

  addAnnotation(label, mark, layer) {
    const slice = this.slices.find((item) => item.sop_instance_uid === mark.instance && item.frame === (mark.frame || 1));
    if (!slice) return;
    const world = (x, y) => utilities.imageToWorldCoords(slice.imageId, [x, y]);
    const points = label.kind === "boxes"
      ? [world(mark.x, mark.y), world(mark.x + mark.width, mark.y), world(mark.x, mark.y + mark.height), world(mark.x + mark.width, mark.y + mark.height)]
      : [world(mark.x, mark.y)];
    const toolName = TOOL_OF_KIND[label.kind].toolName;
    const annotation = {
      invalidated: true, highlighted: false, isLocked: layer.locked, isVisible: true,
      // A model's proposal keeps its id while the reader moves or reshapes it (model-assisted reading).
      metadata: { toolName, referencedImageId: slice.imageId, FrameOfReferenceUID: this.viewport.getFrameOfReferenceUID(), label: label.key, mine: layer.marks === this.marks, proposal: mark.proposal },
      data: { handles: { points, activeHandleIndex: null, textBox: { hasMoved: false } }, cachedStats: {}, label: "" },
    };
    tools.annotation.state.addAnnotation(annotation, this.canvas);
    tools.annotation.config.style.setAnnotationStyles(annotation.annotationUID, { color: layer.color, lineWidth: "2" });
  }

  annotationsChanged(event) {
    if (this.loading || !this.editable) return;
    const changed = event.detail && event.detail.annotation;
    if (changed && changed.metadata.toolName === tools.PlanarFreehandROITool.toolName) {
      if (event.type === tools.Enums.Events.ANNOTATION_COMPLETED) this.fillOutline(changed);
      return;
    }
    if (changed && changed.metadata.label === undefined) {
      const label = this.markLabels.find((item) => item.key === this.tool);
      if (!label) return;
      changed.metadata.label = label.key;
      changed.metadata.mine = true;
    }
    for (const label of this.markLabels) this.marks[label.key] = [];
    for (const Tool of [tools.RectangleROITool, tools.ProbeTool]) {
      for (const annotation of tools.annotation.state.getAnnotations(Tool.toolName, this.canvas) || []) {
        if (!annotation.metadata.mine) continue;
        const slice = this.slices.find((item) => item.imageId === annotation.metadata.referencedImageId);
        const label = this.markLabels.find((item) => item.key === annotation.metadata.label);
        if (!slice || !label) continue;
        // A mark drawn past the image's edge is cut at the edge: marks are pixels of the image.
        const clamp = (value, size) => Math.max(0, Math.min(size, value));
        const pixels = annotation.data.handles.points.map((point) => utilities.worldToImageCoords(slice.imageId, point));
        const xs = pixels.map((p) => clamp(p[0], slice.columns)), ys = pixels.map((p) => clamp(p[1], slice.rows));
        const round = (value) => Math.round(value * 10) / 10;
        const mark = { instance: slice.sop_instance_uid, frame: slice.frame, x: round(Math.min(...xs)), y: round(Math.min(...ys)) };
        if (label.kind === "boxes") Object.assign(mark, { width: round(Math.max(...xs) - Math.min(...xs)), height: round(Math.max(...ys) - Math.min(...ys)) });
        if (annotation.metadata.proposal) mark.proposal = annotation.metadata.proposal;
        this.marks[label.key].push(mark);
      }
    }
    this.onChange();
  }

  // ---- masks: one labelmap per masks label, its images in the order of the slices ----
  startMasks() {
    this.segmentations = {};
    for (const label of this.maskLabels) {
      const images = imageLoader.createAndCacheDerivedLabelmapImages(this.slices.map((slice) => slice.imageId));
      const segmentationId = `${this.id}-${label.key}`;
      tools.segmentation.addSegmentations([{ segmentationId, representation: {
        type: tools.Enums.SegmentationRepresentations.Labelmap, data: { imageIds: images.map((image) => image.imageId) } } }]);
      this.segmentations[label.key] = { segmentationId, imageIds: images.map((image) => image.imageId) };
    }
    tools.segmentation.addLabelmapRepresentationToViewport(this.id, this.maskLabels.map((label) => ({ segmentationId: this.segmentations[label.key].segmentationId })));
    // The brush's radius is in millimetres: start at 2% of the image's width.
    const { columns, spacing } = this.slices[0];
    tools.utilities.segmentation.setBrushSizeForToolGroup(this.toolGroup.id, Math.max(1, Math.round(columns * spacing * 0.02 * 10) / 10));
    this.loading = true;
    for (const label of this.maskLabels) this.writeMasks(label);
    this.loading = false;
    eventTarget.addEventListener(tools.Enums.Events.SEGMENTATION_DATA_MODIFIED, (event) => {
      const label = this.maskLabels.find((item) => this.segmentations[item.key].segmentationId === event.detail.segmentationId);
      if (!label || this.loading || !this.editable) return;
      this.readMasks(label);
      this.onChange();
    });
  }

  labelmap(label, index) {
    const image = cache.getImage(this.segmentations[label.key].imageIds[index]);
    return image.voxelManager ? image.voxelManager.getScalarData() : image.getPixelData();
  }

  // The stored runs → the labelmap, exactly: a reload shows what was saved.
  writeMasks(label) {
    this.slices.forEach((slice, index) => {
      const data = this.labelmap(label, index);
      data.fill(0);
      for (const mark of this.marks[label.key] || []) {
        if (mark.instance !== slice.sop_instance_uid || (mark.frame || 1) !== slice.frame) continue;
        let position = 0;
        mark.rle.forEach((run, k) => { if (k % 2) data.fill(1, position, position + run); position += run; });
      }
    });
    tools.segmentation.triggerSegmentationEvents.triggerSegmentationDataModified(this.segmentations[label.key].segmentationId);
  }

  // The labelmap → run lengths, one mark per frame that holds any of the mask.
  readMasks(label) {
    const marks = [];
    const previous = new Map((this.marks[label.key] || []).map((mark) => [`${mark.instance}/${mark.frame}`, mark]));
    this.slices.forEach((slice, index) => {
      const data = this.labelmap(label, index);
      const runs = [];
      let value = 0, run = 0;
      for (let i = 0; i < data.length; i++) {
        const on = data[i] ? 1 : 0;
        if (on === value) run++; else { runs.push(run); value = on; run = 1; }
      }
      runs.push(run);
      if (runs.length === 1) return;  // nothing painted on this frame
      const mark = { instance: slice.sop_instance_uid, frame: slice.frame, rows: slice.rows, columns: slice.columns, rle: runs };
      const before = previous.get(`${mark.instance}/${mark.frame}`);
      if (before && before.proposal) mark.proposal = before.proposal;
      marks.push(mark);
    });
    this.marks[label.key] = marks;
  }

  // A freehand outline fills (or, erasing, clears) the pixels inside it on the current frame.
  fillOutline(annotation) {
    const label = this.maskLabels.find((item) => item.key === this.tool);
    const slice = this.slices.find((item) => item.imageId === annotation.metadata.referencedImageId);
    tools.annotation.state.removeAnnotation(annotation.annotationUID);
    if (!label || !slice) { this.viewport.render(); return; }
    const polygon = annotation.data.contour.polyline.map((point) => utilities.worldToImageCoords(slice.imageId, point));
    const data = this.labelmap(label, this.slices.indexOf(slice));
    const ys = polygon.map((p) => p[1]);
    const fill = this.maskMode === "erase" ? 0 : 1;
    for (let row = Math.max(0, Math.floor(Math.min(...ys))); row <= Math.min(slice.rows - 1, Math.ceil(Math.max(...ys))); row++) {
      const y = row + 0.5, crossings = [];  // pixel centres, even-odd rule
      for (let i = 0; i < polygon.length; i++) {
        const [x1, y1] = polygon[i], [x2, y2] = polygon[(i + 1) % polygon.length];
        if ((y1 <= y) !== (y2 <= y)) crossings.push(x1 + (y - y1) * (x2 - x1) / (y2 - y1));
      }
      crossings.sort((a, b) => a - b);
      for (let k = 0; k + 1 < crossings.length; k += 2) {
        const start = Math.max(0, Math.ceil(crossings[k] - 0.5)), end = Math.min(slice.columns - 1, Math.floor(crossings[k + 1] - 0.5));
        if (end >= start) data.fill(fill, row * slice.columns + start, row * slice.columns + end + 1);
      }
    }
    tools.segmentation.triggerSegmentationEvents.triggerSegmentationDataModified(this.segmentations[label.key].segmentationId);
    this.viewport.render();
  }

  setMaskMode(mode) {
    this.maskMode = mode;
    if (!this.maskLabels.some((label) => label.key === this.tool) && this.maskLabels.length) this.tool = this.maskLabels[0].key;
    this.useTool(this.tool);
  }

  show(index) {
    this.index = Math.max(0, Math.min(this.slices.length - 1, index));
    this.viewport.setImageIdIndex(this.index);
  }

  setPreset(key) { this.key({ key, preventDefault() {} }); }

  key(event) {
    if (PRESETS[event.key]) {
      const [, center, width] = PRESETS[event.key];
      this.window = [center, width];
      this.viewport.setProperties({ voiRange: utilities.windowLevel.toLowHighRange(width, center) });
    } else if (event.key === "0") { this.window = null; this.viewport.resetProperties(); }
    else if (event.key === "ArrowDown" || event.key === "ArrowRight") this.show(this.index + 1);
    else if (event.key === "ArrowUp" || event.key === "ArrowLeft") this.show(this.index - 1);
    else if (event.key === "+" || event.key === "=") this.viewport.setZoom(this.viewport.getZoom() * 1.25);
    else if (event.key === "-") this.viewport.setZoom(this.viewport.getZoom() / 1.25);
    else if (event.key === "r") this.viewport.resetCamera();
    else if (event.key === "h") this.useTool("pan");
    else if (this.maskLabels.length && (event.key === "m" || event.key === "f" || event.key === "e")) {
      this.setMaskMode({ m: "brush", f: "freehand", e: "erase" }[event.key]);
    } else if (this.maskLabels.length && (event.key === "[" || event.key === "]")) {
      const size = tools.utilities.segmentation.getBrushSizeForToolGroup(this.toolGroup.id) || 10;
      tools.utilities.segmentation.setBrushSizeForToolGroup(this.toolGroup.id, Math.max(1, size + (event.key === "]" ? 2 : -2)));
    }
    else if (event.key === "w") this.useTool("window");
    else if (event.key === "b" || event.key === "p") {
      const label = this.markLabels.find((item) => item.kind === (event.key === "b" ? "boxes" : "points"));
      if (label) this.useTool(label.key);
    } else if ((event.key === "Delete" || event.key === "Backspace") && this.editable) {
      const mine = [tools.RectangleROITool, tools.ProbeTool].flatMap((Tool) => tools.annotation.state.getAnnotations(Tool.toolName, this.canvas) || [])
        .filter((annotation) => annotation.metadata.mine && annotation.metadata.referencedImageId === this.slice.imageId);
      if (mine.length) {
        tools.annotation.state.removeAnnotation(mine[mine.length - 1].annotationUID);
        this.annotationsChanged({ detail: {} });
      }
    } else return;
    this.viewport.render();
    event.preventDefault();
  }

  draw() {
    for (const Tool of [tools.RectangleROITool, tools.ProbeTool]) {
      for (const annotation of tools.annotation.state.getAnnotations(Tool.toolName, this.canvas) || []) {
        if (annotation.metadata.mine) tools.annotation.state.removeAnnotation(annotation.annotationUID);
      }
    }
    this.loading = true;
    for (const label of this.markLabels) for (const mark of this.marks[label.key] || []) this.addAnnotation(label, mark, { marks: this.marks, color: this.color, locked: !this.editable });
    if (this.segmentations) for (const label of this.maskLabels) this.writeMasks(label);
    this.loading = false;
    this.viewport.render();
  }

  updateStatus() {
    if (!this.rendered) return;
    const preset = this.window ? ` · window ${this.window[1]}/${this.window[0]}` : " · default window";
    const zoom = this.viewport.getZoom ? this.viewport.getZoom().toFixed(1) : "1.0";
    const mask = this.maskLabels.some((label) => label.key === this.tool) ? ` (${this.maskMode})` : "";
    this.status.textContent = `Image ${this.index + 1} of ${this.slices.length}${preset} · tool: ${this.tool}${mask} · zoom ${zoom}×`;
  }
}

window.MicaCornerstoneViewer = CornerstoneViewer;
