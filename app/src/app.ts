// What every screen shares.

import type { LiveCounts } from "./live";
import type { Session } from "./session";
import type { PostStore } from "./store";

export interface App {
  session: Session;
  store: PostStore;
  live: LiveCounts;
  navigate(hash: string): void;
}

// A screen: built once, shown and hidden as the route changes.
export interface View {
  element: HTMLElement;
  title: string;
  // buttons for the header while the screen shows
  actions?: HTMLElement;
  show(params: URLSearchParams): void;
  hide(): void;
}
