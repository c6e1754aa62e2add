// Calls to mlserve's REST API with the session cookie (same origin only).
// Changes carry the session's CSRF token in the X-CSRF-Token header.

export class ApiError extends Error {
  constructor(status, code, message, details) {
    super(message);
    this.status = status;
    this.code = code;
    this.details = details || {};
  }

  get field() {
    return this.details.field ?? null;
  }
}

export function csrfToken() {
  const meta = document.querySelector('meta[name="csrf-token"]');
  return meta ? meta.content : "";
}

export function seg(value) {
  return encodeURIComponent(String(value));
}

export function withQuery(path, query) {
  const params = new URLSearchParams();
  for (const [name, value] of Object.entries(query || {})) {
    if (value !== undefined && value !== null && value !== "") params.set(name, String(value));
  }
  const text = params.toString();
  return text ? `${path}?${text}` : path;
}

export function signInAgain() {
  const here = window.location.pathname + window.location.search;
  window.location.assign(`/login?next=${encodeURIComponent(here)}`);
}

// The error envelope {"error": {"code", "message", "details"}} as an ApiError.
export async function errorOf(response) {
  try {
    const body = await response.json();
    const error = body && body.error;
    if (error && typeof error.message === "string") {
      return new ApiError(response.status, error.code, error.message, error.details);
    }
  } catch {
    // not JSON: fall through
  }
  return new ApiError(response.status, "http_error", `the server answered HTTP ${response.status}`, {});
}

// fetch() a path of this site; resolves to the Response when it is 2xx.
export async function request(path, { method = "GET", json, body, query, headers = {} } = {}) {
  const init = { method, headers: { Accept: "application/json", ...headers }, credentials: "same-origin" };
  if (method !== "GET" && method !== "HEAD") init.headers["X-CSRF-Token"] = csrfToken();
  if (json !== undefined) {
    init.headers["Content-Type"] = "application/json";
    init.body = JSON.stringify(json);
  } else if (body !== undefined) {
    init.body = body;
  }
  let response;
  try {
    response = await fetch(withQuery(path, query), init);
  } catch {
    throw new ApiError(0, "network_error", "the server cannot be reached", {});
  }
  if (response.status === 401) {
    signInAgain();
    throw await errorOf(response);
  }
  if (!response.ok) throw await errorOf(response);
  return response;
}

export async function getJson(path, query) {
  return (await request(path, { query })).json();
}

export async function sendJson(method, path, json, query) {
  const response = await request(path, { method, json, query });
  return response.status === 204 ? null : response.json();
}
