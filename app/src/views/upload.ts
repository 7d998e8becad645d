// Posting a photo: from the camera or the gallery, with a caption, with
// the progress of the upload and a clear word when the server refuses it.

import { ApiError, CAPTION_MAX_BYTES, IMAGE_MAX_BYTES, uploadPost, type Post, type Upload } from "../api";
import type { App, View } from "../app";
import { h, icon, toast, utf8Length } from "../dom";

// What to tell a person for each refusal the API documents.
export function refusalText(error: ApiError): string {
  switch (error.code) {
    case "payload_too_large":
      return "This photo is too large to upload (at most 20 MB).";
    case "not_an_image":
      return "This file is not a photo the server can read. Try a JPEG, PNG, WebP, GIF, TIFF or HEIF image.";
    case "image_too_large":
      return "This photo has too many pixels (at most 40 megapixels).";
    case "unauthorized":
      return "Your user is no longer valid here. Try again in a moment.";
    case "unavailable":
      return "The server is busy. Try again in a moment.";
    case "network":
      return "The upload was cut off. Check the connection and try again.";
    default:
      return "The server refused the photo: " + error.message;
  }
}

export class UploadView implements View {
  readonly element: HTMLElement;
  readonly title = "New post";
  private file: File | null = null;
  private previewUrl: string | null = null;
  private preview: HTMLImageElement;
  private fileName: HTMLElement;
  private caption: HTMLTextAreaElement;
  private captionCount: HTMLElement;
  private submit: HTMLButtonElement;
  private cancel: HTMLButtonElement;
  private progress: HTMLProgressElement;
  private progressText: HTMLElement;
  private message: HTMLElement;
  private upload: Upload | null = null;

  constructor(
    private app: App,
    private onPosted: (post: Post) => void,
  ) {
    const camera = this.picker("Take a photo", "camera", true);
    const gallery = this.picker("Choose from gallery", "image", false);
    this.preview = h("img", { class: "preview", alt: "The chosen photo", hidden: true });
    // A file the browser cannot show may still be one the server reads
    // (HEIF, TIFF): only the preview goes.
    this.preview.addEventListener("error", () => (this.preview.hidden = true));
    this.fileName = h("p", { class: "file-name" }, "No photo chosen yet.");
    this.caption = h("textarea", { id: "caption", rows: 3, placeholder: "Say something about it" });
    this.captionCount = h("span", { class: "hint", id: "caption-count" }, "0 / " + CAPTION_MAX_BYTES);
    this.caption.setAttribute("aria-describedby", "caption-count");
    this.caption.addEventListener("input", () => this.checkCaption());
    this.submit = h("button", { type: "submit", class: "primary", disabled: true }, "Post");
    this.cancel = h("button", { type: "button", class: "secondary", hidden: true }, "Cancel upload");
    this.cancel.addEventListener("click", () => this.upload?.abort());
    this.progress = h("progress", { max: 1, value: 0, hidden: true, "aria-label": "Upload progress" });
    this.progressText = h("span", { class: "hint", role: "status" });
    this.message = h("p", { class: "message", role: "alert", "data-testid": "upload-message" });

    const form = h(
      "form",
      { class: "upload-form", novalidate: true },
      h("div", { class: "pickers" }, camera, gallery),
      this.preview,
      this.fileName,
      h("label", { for: "caption" }, "Caption"),
      this.caption,
      this.captionCount,
      this.message,
      h("div", { class: "progress-row" }, this.progress, this.progressText),
      h("div", { class: "actions" }, this.submit, this.cancel),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    this.element = h("section", { class: "view view-upload" }, form);
  }

  show(): void {}

  hide(): void {}

  // A labelled button that opens the file chooser; with `capture` phones
  // go straight to the camera.
  private picker(label: string, iconName: "camera" | "image", capture: boolean): HTMLElement {
    const input = h("input", {
      type: "file",
      accept: "image/*",
      capture: capture ? "environment" : null,
      class: "visually-hidden",
      "data-testid": capture ? "camera-input" : "gallery-input",
    });
    input.addEventListener("change", () => {
      if (input.files && input.files[0]) this.choose(input.files[0]);
      input.value = "";
    });
    return h("label", { class: "picker" }, input, icon(iconName), h("span", {}, label));
  }

  private choose(file: File): void {
    this.file = file;
    this.message.textContent = "";
    if (this.previewUrl) URL.revokeObjectURL(this.previewUrl);
    this.previewUrl = URL.createObjectURL(file);
    this.preview.src = this.previewUrl;
    this.preview.hidden = false;
    this.fileName.textContent = file.name + " · " + formatBytes(file.size);

    // The server refuses anything larger from its Content-Length alone;
    // saying so now spares a long upload on a phone connection.
    if (file.size > IMAGE_MAX_BYTES) this.message.textContent = refusalText(new ApiError(413, "payload_too_large", ""));
    this.checkCaption();
  }

  private checkCaption(): boolean {
    const bytes = utf8Length(this.caption.value);
    this.captionCount.textContent = bytes + " / " + CAPTION_MAX_BYTES;
    const fits = bytes <= CAPTION_MAX_BYTES;
    this.captionCount.classList.toggle("over", !fits);
    this.submit.disabled = !fits || !this.file || this.file.size > IMAGE_MAX_BYTES || this.upload !== null;
    return fits;
  }

  private send(): void {
    const token = this.app.session.token;
    if (!this.file || !token || !this.checkCaption()) return;

    this.message.textContent = "";
    this.progress.hidden = false;
    this.progress.value = 0;
    this.progressText.textContent = "Uploading… 0%";
    this.cancel.hidden = false;

    const upload = uploadPost(token, this.file, this.caption.value, (sent) => {
      this.progress.value = sent;
      this.progressText.textContent = sent < 1 ? "Uploading… " + Math.round(sent * 100) + "%" : "Processing the photo…";
    });
    this.upload = upload;
    this.checkCaption();

    upload.done.then(
      (post) => {
        this.finish();
        this.reset();
        toast("Posted!");
        this.onPosted(post);
      },
      (error: unknown) => {
        this.finish();
        const apiError = error instanceof ApiError ? error : new ApiError(0, "network", String(error));
        if (apiError.code === "aborted") {
          this.progressText.textContent = "Upload cancelled.";
          return;
        }
        this.progressText.textContent = "";
        this.message.textContent = refusalText(apiError);
        if (apiError.status === 401) void this.app.session.startOver();
      },
    );
  }

  private finish(): void {
    this.upload = null;
    this.progress.hidden = true;
    this.cancel.hidden = true;
    this.checkCaption();
  }

  private reset(): void {
    this.file = null;
    if (this.previewUrl) URL.revokeObjectURL(this.previewUrl);
    this.previewUrl = null;
    this.preview.hidden = true;
    this.preview.removeAttribute("src");
    this.fileName.textContent = "No photo chosen yet.";
    this.caption.value = "";
    this.progressText.textContent = "";
    this.checkCaption();
  }
}

function formatBytes(bytes: number): string {
  if (bytes < 1024) return bytes + " B";
  if (bytes < 1024 * 1024) return Math.round(bytes / 1024) + " KB";
  return (bytes / (1024 * 1024)).toFixed(1) + " MB";
}
