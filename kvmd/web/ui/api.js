// SPDX-License-Identifier: GPL-3.0-or-later
// The HTTP half of the public API (API.md): every call answers {ok, result}.

export class ApiError extends Error {
  constructor(status, name, message) {
    super(message ? `${name}: ${message}` : name);
    this.status = status;
    this.name = name;
  }
}

/** The error a failed answer carries in its envelope, or its HTTP status when it has none. */
function failure(status, data) {
  const result = (data && data.result) || {};
  return new ApiError(status, result.error || `HTTP ${status}`, result.error_msg || "");
}

/** Query string from an object; booleans as 1/0, null and undefined left out. */
export function query(params) {
  const out = new URLSearchParams();
  for (const [key, value] of Object.entries(params || {})) {
    if (value === undefined || value === null) {
      continue;
    }
    out.set(key, typeof value === "boolean" ? (value ? "1" : "0") : String(value));
  }
  const text = out.toString();
  return text ? `?${text}` : "";
}

export async function call(method, path, params, body) {
  const response = await fetch(`/api${path}${query(params)}`, {
    method,
    body,
    credentials: "same-origin",
  });
  // A proxy's HTML page or an empty body is no envelope: reported by its status.
  const data = await response.json().catch(() => null);
  if (!response.ok || !data || !data.ok) {
    throw failure(response.status, data);
  }
  return data.result;
}

export const get = (path, params) => call("GET", path, params);
export const post = (path, params, body) => call("POST", path, params, body);

/**
 * POST a body with upload progress (fetch has none): onProgress gets 0..1.
 * Resolves with the result, rejects with an ApiError.
 */
export function upload(path, params, body, onProgress) {
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("POST", `/api${path}${query(params)}`);
    xhr.responseType = "json";
    xhr.upload.onprogress = (event) => {
      if (event.lengthComputable) {
        onProgress(event.loaded / event.total);
      }
    };
    xhr.onload = () => {
      const data = xhr.response;
      if (xhr.status === 200 && data && data.ok) {
        onProgress(1);
        resolve(data.result);
      } else {
        reject(failure(xhr.status, data));
      }
    };
    xhr.onerror = () => reject(new ApiError(0, "NetworkError", "the device did not answer"));
    xhr.send(body);
  });
}

/** Lines of a streamed text response (the log, download progress) until it ends or aborts. */
export async function* lines(path, params, init) {
  const response = await fetch(`/api${path}${query(params)}`, { credentials: "same-origin", ...init });
  if (!response.ok) {
    throw failure(response.status, await response.json().catch(() => null));
  }
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) {
      break;
    }
    buffer += value;
    const parts = buffer.split("\n");
    buffer = parts.pop();
    yield* parts;
  }
  if (buffer) {
    yield buffer;
  }
}
