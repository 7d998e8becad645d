// The heart and the count of a post, kept in step with the store.

import type { App } from "../app";
import { h, icon, plural } from "../dom";

export interface LikeControl {
  element: HTMLElement;
  release(): void;
}

export function likeControl(app: App, postId: number): LikeControl {
  const button = h("button", {
    type: "button",
    class: "like",
    "aria-pressed": "false",
    "aria-label": "Like",
    "data-testid": "like",
  });
  button.appendChild(icon("heart", "icon heart"));
  const count = h("span", { class: "like-count", "data-testid": "like-count" }, "0");
  const noun = h("span", { class: "like-noun" }, " likes");
  const element = h("div", { class: "like-control" }, button, h("span", { class: "like-total" }, count, noun));

  button.addEventListener("click", (event) => {
    event.preventDefault();
    app.store.toggle(postId);
  });

  const release = app.store.watch(postId, (view) => {
    button.setAttribute("aria-pressed", String(view.liked));
    button.classList.toggle("pending", view.pending);
    if (count.textContent !== String(view.count)) {
      count.textContent = String(view.count);
      count.classList.remove("bump");
      void count.offsetWidth; // restart the animation
      count.classList.add("bump");
    }
    noun.textContent = " " + plural(view.count, "like", "likes");
  });
  return { element, release };
}
