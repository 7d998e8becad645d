// The HTTP API of the ingest service, as the app uses it. Every call goes
// to the origin the app was served from.

export interface Post {
  id: number;
  author_id: number;
  caption: string;
  image_url: string;
  thumb_url: string;
  width: number;
  height: number;
  like_count: number;
  liked_by_me?: boolean;
  created_at: string;
}

export interface User {
  id: number;
  display_name: string;
  token: string;
}

export interface FeedPage {
  posts: Post[];
  next_cursor: string | null;
}

// A refusal of the server ({"error", "message"}), or status 0 with code
// "network" when no answer came at all.
export class ApiError extends Error {
  readonly status: number;
  readonly code: string;

  constructor(status: number, code: string, message: string) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
  }

  // Worth trying again: nothing answered, or the server asked for a retry.
  get transient(): boolean {
    return this.status === 0 || this.status === 503;
  }
}

export const IMAGE_MAX_BYTES = 20 * 1024 * 1024;
export const CAPTION_MAX_BYTES = 2000;
export const STREAM_MAX_POSTS = 100;

async function errorFrom(response: Response): Promise<ApiError> {
  try {
    const body = await response.json();
    if (typeof body?.error === "string")
      return new ApiError(response.status, body.error, String(body.message ?? body.error));
  } catch {
    // not the JSON of an error: fall through to the status alone
  }
  return new ApiError(response.status, "http_" + response.status, response.statusText);
}

interface RequestOptions {
  token?: string;
  body?: unknown;
  signal?: AbortSignal;
}

export async function request<T>(method: string, path: string, options: RequestOptions = {}): Promise<T> {
  const headers: Record<string, string> = {};
  if (options.token) headers.Authorization = "Bearer " + options.token;
  let body: string | undefined;
  if (options.body !== undefined) {
    headers["Content-Type"] = "application/json";
    body = JSON.stringify(options.body);
  }

  let response: Response;
  try {
    response = await fetch(path, { method, headers, body, signal: options.signal, cache: "no-store" });
  } catch (error) {
    if (options.signal?.aborted) throw error;
    throw new ApiError(0, "network", "no connection to the server");
  }
  if (!response.ok) throw await errorFrom(response);
  return (await response.json()) as T;
}

export function createUser(displayName: string, signal?: AbortSignal): Promise<User> {
  return request<User>("POST", "/v1/users", { body: { display_name: displayName }, signal });
}

export function listPosts(token: string | undefined, cursor: string | null, limit: number): Promise<FeedPage> {
  const query = new URLSearchParams({ limit: String(limit) });
  if (cursor) query.set("cursor", cursor);
  return request<FeedPage>("GET", "/v1/posts?" + query.toString(), { token });
}

export function getPost(id: number, token?: string): Promise<Post> {
  return request<Post>("GET", "/v1/posts/" + id, { token });
}

export function setLike(id: number, liked: boolean, token: string, signal?: AbortSignal): Promise<unknown> {
  return request(liked ? "PUT" : "DELETE", "/v1/posts/" + id + "/like", { token, signal });
}

export interface Upload {
  done: Promise<Post>;
  abort(): void;
}

// Uploads through XMLHttpRequest, the one browser API that reports the
// progress of a request body. `onProgress` gets the fraction sent, then 1
// while the server turns the image into a post.
export function uploadPost(token: string, image: Blob, caption: string, onProgress: (sent: number) => void): Upload {
  const xhr = new XMLHttpRequest();
  const done = new Promise<Post>((resolve, reject) => {
    xhr.open("POST", "/v1/posts");
    xhr.setRequestHeader("Authorization", "Bearer " + token);
    xhr.responseType = "text";
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable && event.total > 0) onProgress(event.loaded / event.total);
    };
    xhr.upload.onload = () => onProgress(1);
    xhr.onload = () => {
      let body: any = null;
      try {
        body = JSON.parse(xhr.responseText);
      } catch {
        // handled below by status
      }
      if (xhr.status === 201 && body) resolve(body as Post);
      else if (body && typeof body.error === "string") reject(new ApiError(xhr.status, body.error, String(body.message)));
      else reject(new ApiError(xhr.status, "http_" + xhr.status, xhr.statusText || "upload failed"));
    };
    xhr.onerror = () => reject(new ApiError(0, "network", "the upload was cut off"));
    xhr.onabort = () => reject(new ApiError(0, "aborted", "upload cancelled"));

    const form = new FormData();
    form.append("caption", caption);
    form.append("image", image, image instanceof File ? image.name : "photo");
    xhr.send(form);
  });
  return { done, abort: () => xhr.abort() };
}
