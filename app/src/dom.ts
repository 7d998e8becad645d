// Small helpers for building the DOM by hand.

type Child = Node | string | null | undefined | false;
type Attributes = Record<string, string | number | boolean | null | undefined | EventListener>;

// h("button", { class: "like", "aria-pressed": "false", onclick: fn }, "text")
export function h<K extends keyof HTMLElementTagNameMap>(
  tag: K,
  attributes: Attributes = {},
  ...children: Child[]
): HTMLElementTagNameMap[K] {
  const element = document.createElement(tag);
  for (const [name, value] of Object.entries(attributes)) {
    if (value === null || value === undefined || value === false) continue;
    if (name.startsWith("on") && typeof value === "function") {
      element.addEventListener(name.slice(2), value);
    } else if (value === true) {
      element.setAttribute(name, "");
    } else {
      element.setAttribute(name, String(value));
    }
  }
  append(element, ...children);
  return element;
}

export function append(parent: Node, ...children: Child[]): void {
  for (const child of children) {
    if (child === null || child === undefined || child === false) continue;
    parent.appendChild(typeof child === "string" ? document.createTextNode(child) : child);
  }
}

const SVG = "http://www.w3.org/2000/svg";

// An inline icon from one or more path strings, hidden from screen readers:
// the button around it carries the label.
export function icon(name: keyof typeof ICON_PATHS, className = "icon"): SVGSVGElement {
  const svg = document.createElementNS(SVG, "svg");
  svg.setAttribute("viewBox", "0 0 24 24");
  svg.setAttribute("class", className);
  svg.setAttribute("aria-hidden", "true");
  svg.setAttribute("focusable", "false");
  for (const d of ICON_PATHS[name]) {
    const path = document.createElementNS(SVG, "path");
    path.setAttribute("d", d);
    svg.appendChild(path);
  }
  return svg;
}

const ICON_PATHS = {
  heart: [
    "M12 21s-7.5-4.6-9.6-9.3C1 8.4 3 4.5 6.8 4.5c2.1 0 3.6 1.1 5.2 3 1.6-1.9 3.1-3 5.2-3 3.8 0 5.8 3.9 4.4 7.2C19.5 16.4 12 21 12 21z",
  ],
  home: ["M3 11.5 12 4l9 7.5", "M5.5 9.5V20h13V9.5"],
  plus: ["M12 5v14", "M5 12h14"],
  bolt: ["M13 2 4 14h7l-1 8 9-12h-7z"],
  person: ["M12 12a4.2 4.2 0 1 0 0-8.4 4.2 4.2 0 0 0 0 8.4z", "M4 20.5c.8-4 4-6 8-6s7.2 2 8 6"],
  refresh: ["M20 11a8 8 0 1 0-2.3 5.7", "M20 4.5V11h-6.5"],
  back: ["M15 5l-7 7 7 7"],
  camera: [
    "M4 8h3l1.5-2.5h7L17 8h3v11H4z",
    "M12 16.5a3.3 3.3 0 1 0 0-6.6 3.3 3.3 0 0 0 0 6.6z",
  ],
  image: ["M4 5h16v14H4z", "M4 16l5-5 4 4 2-2 5 5", "M15.5 9.5h.01"],
} as const;

// One polite live region for short messages; a new message replaces the old.
let toastTimer: number | undefined;
export function toast(message: string, kind: "info" | "error" = "info"): void {
  const region = document.getElementById("toast");
  if (!region) return;
  region.textContent = message;
  region.dataset.kind = kind;
  region.hidden = false;
  window.clearTimeout(toastTimer);
  toastTimer = window.setTimeout(() => {
    region.hidden = true;
  }, 4000);
}

export function timeAgo(iso: string, now = Date.now()): string {
  const seconds = Math.max(0, Math.round((now - Date.parse(iso)) / 1000));
  if (seconds < 60) return "just now";
  const minutes = Math.round(seconds / 60);
  if (minutes < 60) return minutes + " min ago";
  const hours = Math.round(minutes / 60);
  if (hours < 24) return hours + " h ago";
  return new Date(iso).toLocaleDateString();
}

export function plural(count: number, one: string, many: string): string {
  return count === 1 ? one : many;
}

export function utf8Length(text: string): number {
  return new TextEncoder().encode(text).length;
}

// The longest start of `text` that takes at most `bytes` bytes of UTF-8,
// cut between characters.
export function fitBytes(text: string, bytes: number): string {
  let out = "";
  for (const character of text) {
    if (utf8Length(out + character) > bytes) break;
    out += character;
  }
  return out;
}
