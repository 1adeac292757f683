// A small tus 1.0 client: uploads a File in chunks, and resumes after a dropped connection or
// a reload from the offset the server reports (the upload's URL is kept in localStorage).

const VERSION = "1.0.0";

export class UploadRefused extends Error {
  constructor(message, problems) {
    super(message);
    this.problems = problems || [message];
  }
}

function encodeMetadata(metadata) {
  const encode = (text) => btoa(String.fromCharCode(...new TextEncoder().encode(String(text))));
  return Object.entries(metadata).map(([key, value]) => `${key} ${encode(value)}`).join(",");
}

async function refusal(response) {
  try {
    const body = await response.json();
    return new UploadRefused(body.detail || `The server answered ${response.status}.`, body.problems);
  } catch {
    return new UploadRefused(`The server answered ${response.status}.`);
  }
}

export function fingerprint(file, metadata) {
  return `mica-tus:${metadata.purpose}:${JSON.stringify(metadata)}:${file.name}:${file.size}:${file.lastModified}`;
}

export class TusUpload {
  // options: endpoint, metadata {purpose, ...}, headers (e.g. X-CSRFToken), chunkSize,
  // onProgress(sent, total), onRetry(error, attempt), retryDelays (ms)
  constructor(file, options) {
    this.file = file;
    this.options = { chunkSize: 8 * 1024 * 1024, retryDelays: [1000, 3000, 5000, 10000, 20000], ...options };
    this.key = fingerprint(file, options.metadata);
    this.url = localStorage.getItem(this.key);
    this.aborted = false;
    this.controller = null;
  }

  headers(extra = {}) {
    return { "Tus-Resumable": VERSION, ...(this.options.headers || {}), ...extra };
  }

  async create() {
    const response = await fetch(this.options.endpoint, {
      method: "POST", credentials: "same-origin",
      headers: this.headers({ "Upload-Length": String(this.file.size),
                              "Upload-Metadata": encodeMetadata({ ...this.options.metadata, filename: this.file.name }) }),
    });
    if (response.status !== 201) throw await refusal(response);
    this.url = new URL(response.headers.get("Location"), location.href).pathname;
    localStorage.setItem(this.key, this.url);
    return 0;
  }

  async offset() {
    if (!this.url) return this.create();
    const response = await fetch(this.url, { method: "HEAD", credentials: "same-origin", headers: this.headers() });
    if (response.status === 404 || response.status === 410) {  // expired or removed: start again
      localStorage.removeItem(this.key);
      this.url = null;
      return this.create();
    }
    if (!response.ok) throw await refusal(response);
    const result = response.headers.get("Mica-Result-Url");
    if (result) return { done: result };
    return Number(response.headers.get("Upload-Offset"));
  }

  // Sends the file; resolves to the URL of what it became. Network errors are retried from the
  // server's offset; a refusal (4xx with problems) rejects with UploadRefused.
  async start() {
    let attempt = 0;
    for (;;) {
      try {
        return await this.send();
      } catch (error) {
        if (error instanceof UploadRefused || this.aborted) {
          if (error instanceof UploadRefused) localStorage.removeItem(this.key);
          throw error;
        }
        const delay = this.options.retryDelays[attempt];
        if (delay === undefined) throw error;
        attempt += 1;
        if (this.options.onRetry) this.options.onRetry(error, attempt);
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  async send() {
    let offset = await this.offset();
    if (offset.done) return this.finished(offset.done);
    this.report(offset);
    for (;;) {
      const end = Math.min(offset + this.options.chunkSize, this.file.size);
      this.controller = new AbortController();
      const response = await fetch(this.url, {
        method: "PATCH", credentials: "same-origin", signal: this.controller.signal,
        headers: this.headers({ "Upload-Offset": String(offset), "Content-Type": "application/offset+octet-stream" }),
        body: this.file.slice(offset, end),
      });
      if (response.status === 409 && response.headers.get("Upload-Offset")) {
        offset = Number(response.headers.get("Upload-Offset"));  // the server knows better: go on from there
        continue;
      }
      if (!response.ok) throw await refusal(response);
      offset = Number(response.headers.get("Upload-Offset"));
      this.report(offset);
      const result = response.headers.get("Mica-Result-Url");
      if (result) return this.finished(result);
    }
  }

  report(offset) {
    if (this.options.onProgress) this.options.onProgress(offset, this.file.size);
  }

  finished(result) {
    localStorage.removeItem(this.key);
    this.report(this.file.size);
    return result;
  }

  abort() {
    this.aborted = true;
    if (this.controller) this.controller.abort();
  }
}
