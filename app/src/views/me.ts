// The person's user and display name.
//
// The API cannot rename a user: the name is kept on this device, shown in
// the app, and given to the next user made here. "Start over" makes that
// user now, under the new name; likes of the old user stay with it.

import type { App, View } from "../app";
import { h, toast } from "../dom";

export class MeView implements View {
  readonly element: HTMLElement;
  readonly title = "You";
  private name: HTMLInputElement;
  private summary: HTMLElement;

  constructor(private app: App) {
    this.name = h("input", { id: "display-name", type: "text", maxlength: 100, autocomplete: "nickname" });
    this.summary = h("p", { class: "summary", "data-testid": "me-summary" });
    const form = h(
      "form",
      { class: "me-form" },
      h("label", { for: "display-name" }, "Display name"),
      this.name,
      h(
        "p",
        { class: "hint" },
        "The name is kept on this phone and given to any new user made here; the server has no way to rename a user.",
      ),
      h("div", { class: "actions" }, h("button", { type: "submit", class: "primary" }, "Save name")),
    );
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      this.app.session.setDisplayName(this.name.value);
      this.name.value = this.app.session.chosenName;
      toast("Name saved");
    });

    const startOver = h("button", { type: "button", class: "secondary" }, "Start over as a new user");
    startOver.addEventListener("click", () => {
      startOver.disabled = true;
      this.app.session.startOver().then(
        (user) => toast("You are now user " + user.id),
        () => toast("Could not make a new user", "error"),
      ).finally(() => {
        startOver.disabled = false;
      });
    });

    this.element = h(
      "section",
      { class: "view view-me" },
      this.summary,
      form,
      h("h2", {}, "A new user"),
      h("p", { class: "hint" }, "Makes a new user under the name above. Your likes so far stay with the old one."),
      startOver,
    );
    app.session.onChange(() => this.render());
  }

  show(): void {
    this.name.value = this.app.session.chosenName;
    this.render();
  }

  hide(): void {}

  private render(): void {
    const user = this.app.session.user;
    this.summary.textContent = user ? "You are " + this.app.session.displayName + " (user " + user.id + ")." : "Making your user…";
  }
}
