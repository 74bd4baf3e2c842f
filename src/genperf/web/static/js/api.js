// The API client: same origin only, the token from sessionStorage, one error type.

export const API = "/api/v1/performance";
const TOKEN_KEY = "genperf.token";

/** What went wrong with a request, in the words the page needs. */
export class ApiError extends Error {
  /**
   * @param {"unreachable"|"unauthorized"|"forbidden"|"http"} kind
   * @param {number} status HTTP status (0 when the server could not be reached)
   * @param {string} code the API's error code
   * @param {string} message the API's message, or ours
   */
  constructor(kind, status, code, message) {
    super(message);
    this.kind = kind;
    this.status = status;
    this.code = code;
  }
}

export function getToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) || "";
  } catch {
    return "";
  }
}

export function setToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // storage disabled: the token lives as long as the page then
  }
  memoryToken = token || "";
}

let memoryToken = "";

function currentToken() {
  return getToken() || memoryToken;
}

export function hasToken() {
  return Boolean(currentToken());
}

/**
 * Call the API.
 * @param {string} path absolute path on this server
 * @param {{method?: string, params?: Object, raw?: boolean, signal?: AbortSignal}} [options]
 * @returns {Promise<any>} the JSON body, or the Response itself with raw: true
 */
export async function request(path, options = {}) {
  const url = new URL(path, window.location.origin);
  for (const [name, value] of Object.entries(options.params || {})) {
    if (value !== undefined && value !== null && value !== "" && value !== false) {
      url.searchParams.set(name, String(value));
    }
  }
  const headers = { Accept: "application/json" };
  const token = currentToken();
  if (token) headers.Authorization = `Bearer ${token}`;
  let response;
  try {
    response = await fetch(url, {
      method: options.method || "GET",
      headers,
      cache: "no-store",
      credentials: "omit",
      redirect: "error",
      signal: options.signal,
    });
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new ApiError("unreachable", 0, "unreachable", "The genperf server cannot be reached.");
  }
  if (!response.ok) throw await errorOf(response);
  return options.raw ? response : response.json();
}

async function errorOf(response) {
  let detail = null;
  try {
    const body = await response.json();
    detail = body && typeof body === "object" ? body.error : null;
  } catch {
    detail = null;
  }
  const status = response.status;
  const code = (detail && detail.code) || `http_${status}`;
  let message = detail && typeof detail.message === "string" ? detail.message : "";
  if (!message) message = `The server answered ${status} ${response.statusText}`.trim();
  let kind = "http";
  if (status === 401) kind = "unauthorized";
  else if (status === 403) kind = "forbidden";
  else if (!detail && [502, 503, 504].includes(status)) kind = "unreachable"; // a proxy's page
  return new ApiError(kind, status, code, message);
}

/** The role of the current token: "read", "write" or "admin"; null when it cannot be told. */
export async function detectRole() {
  try {
    const who = await request("/api/v1/auth/whoami");
    return who && typeof who.role === "string" ? who.role : null;
  } catch {
    return null;
  }
}

/** Filename from a Content-Disposition header, or null. */
export function attachmentName(header) {
  const m = /filename="?([^";]+)"?/i.exec(header || "");
  return m ? m[1].replace(/[\\/]/g, "_") : null;
}
