// The API client: the visitor's token in X-Auth-Token, errors as readable messages,
// and a 401 (no token, or an invalid or expired one) asks for a token.

const TOKEN_KEY = "stackfleet-token";
let onUnauthorized = () => {};

export class ApiError extends Error {
  constructor(status, message, field) {
    super(message);
    this.status = status;
    this.field = field;
  }
}

export function getToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

export function whenUnauthorized(handler) {
  onUnauthorized = handler;
}

/** GET (or another method with a JSON body) an API path; resolves to the JSON body. */
export async function api(path, { method = "GET", body, quiet = false, token } = {}) {
  const headers = { Accept: "application/json" };
  const sent = token ?? getToken();
  if (sent) headers["X-Auth-Token"] = sent;
  if (body !== undefined) headers["Content-Type"] = "application/json";
  let response;
  try {
    response = await fetch(path, {
      method,
      headers,
      body: body === undefined ? undefined : JSON.stringify(body),
      credentials: "same-origin",
    });
  } catch (error) {
    throw new ApiError(0, `The StackFleet API does not answer (${error.message}). Is the server running?`);
  }
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = null;
    }
  }
  if (!response.ok) {
    const detail = data && data.error ? data.error : {};
    const message = detail.message || `${response.status} ${response.statusText}`;
    const error = new ApiError(response.status, `${method} ${path.split("?")[0]}: ${message}`, detail.field);
    if (response.status === 401 && !quiet) onUnauthorized(message);
    throw error;
  }
  return data;
}

export const post = (path, body = {}) => api(path, { method: "POST", body });
