// The person using the app: a user created through the API on first open
// and kept in localStorage, and the display name they chose.
//
// The API has no way to rename a user, so the chosen name is kept on this
// device: it is shown in the app and given to any user created from now on.

import { createUser, type User } from "./api";
import { fitBytes } from "./dom";

const USER_KEY = "likes.user";
const NAME_KEY = "likes.name";
const NAME_MAX_BYTES = 100;

type Listener = (user: User | null) => void;

function readUser(): User | null {
  try {
    const value = JSON.parse(localStorage.getItem(USER_KEY) ?? "null");
    if (value && typeof value.id === "number" && typeof value.token === "string") return value as User;
  } catch {
    // a damaged entry is as good as none
  }
  return null;
}

export class Session {
  private current: User | null = readUser();
  private creating: Promise<User> | null = null;
  private listeners = new Set<Listener>();

  get user(): User | null {
    return this.current;
  }

  get token(): string | undefined {
    return this.current?.token;
  }

  // The name to show: the one chosen here, else the one the user was made with.
  get displayName(): string {
    const chosen = localStorage.getItem(NAME_KEY);
    if (chosen) return chosen;
    if (this.current?.display_name) return this.current.display_name;
    return this.current ? "User " + this.current.id : "";
  }

  get chosenName(): string {
    return localStorage.getItem(NAME_KEY) ?? this.current?.display_name ?? "";
  }

  // Keeps at most the 100 bytes a user's name may have.
  setDisplayName(name: string): void {
    const trimmed = fitBytes(name.trim(), NAME_MAX_BYTES);
    if (trimmed) localStorage.setItem(NAME_KEY, trimmed);
    else localStorage.removeItem(NAME_KEY);
    this.emit();
  }

  onChange(listener: Listener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  // The stored user, or a new one made at once. Callers that start
  // together share one creation.
  ensureUser(): Promise<User> {
    if (this.current) return Promise.resolve(this.current);
    return this.startOver();
  }

  // Replaces the user with a new one under the chosen name: after a
  // rename, or when the server no longer accepts the stored token.
  startOver(): Promise<User> {
    if (this.creating) return this.creating;
    this.creating = createUser(localStorage.getItem(NAME_KEY) ?? "")
      .then((user) => {
        this.current = user;
        localStorage.setItem(USER_KEY, JSON.stringify(user));
        this.emit();
        return user;
      })
      .finally(() => {
        this.creating = null;
      });
    return this.creating;
  }

  private emit(): void {
    for (const listener of this.listeners) listener(this.current);
  }
}
