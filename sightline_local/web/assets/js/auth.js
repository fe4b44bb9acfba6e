// Who the page acts for. The token lives in sessionStorage (this tab only, gone when it
// closes) and is sent as a bearer token; it never goes into a URL the page builds.
//
// Local (`sightline up`): a development token from `?token=JWT` on first load (then
// stripped from the address bar), from the "development token" button, or pasted.
// AWS: the OpenID Connect authorization-code flow with PKCE against the environment's
// identity provider, as config.json describes it (no client secret in a public page).

const TOKEN_KEY = "sightline.token";
const PKCE_KEY = "sightline.pkce";

export function currentToken() {
  return sessionStorage.getItem(TOKEN_KEY);
}

export function setToken(token) {
  if (token) sessionStorage.setItem(TOKEN_KEY, token);
  else sessionStorage.removeItem(TOKEN_KEY);
}

/** The JWT's claims, read without verifying (the API verifies; this only labels the UI). */
export function claims(token = currentToken()) {
  if (!token) return null;
  const parts = token.split(".");
  if (parts.length !== 3) return null;
  try {
    const binary = atob(parts[1].replace(/-/g, "+").replace(/_/g, "/"));
    const utf8 = Uint8Array.from(binary, (ch) => ch.charCodeAt(0));
    return JSON.parse(new TextDecoder().decode(utf8));
  } catch {
    return null;
  }
}

export function expired(token = currentToken()) {
  const c = claims(token);
  return !c || (typeof c.exp === "number" && c.exp * 1000 <= Date.now());
}

/**
 * Read what sign-in left in the address: `?token=` (local mode only) or an OIDC
 * `?code=&state=`. Either way the query is removed from the address bar and history.
 */
export async function takeTokenFromUrl(config) {
  const url = new URL(window.location.href);
  const params = url.searchParams;
  const strip = () => {
    url.search = "";
    history.replaceState(history.state, "", url.toString());
  };
  if (params.has("token")) {
    const token = params.get("token");
    strip();
    if (config.auth.mode === "local" && token) {
      setToken(token);
      return true;
    }
    return false;
  }
  if (params.has("code") || params.has("error")) {
    const code = params.get("code");
    const state = params.get("state");
    const error = params.get("error_description") || params.get("error");
    strip();
    if (error) throw new Error(`Sign-in failed: ${error}`);
    await finishOidc(config.auth, code, state);
    return true;
  }
  return false;
}

function base64url(bytes) {
  let s = "";
  for (const b of new Uint8Array(bytes)) s += String.fromCharCode(b);
  return btoa(s).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(n = 32) {
  return base64url(crypto.getRandomValues(new Uint8Array(n)));
}

function redirectUri() {
  return `${window.location.origin}/`;
}

/** Send the browser to the identity provider (authorization code + PKCE S256). */
export async function startOidc(auth) {
  const verifier = randomString(48);
  const state = randomString(16);
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  sessionStorage.setItem(
    PKCE_KEY,
    JSON.stringify({ verifier, state, returnTo: window.location.hash || "#/search" }),
  );
  const url = new URL(auth.authorizationEndpoint);
  url.search = new URLSearchParams({
    response_type: "code",
    client_id: auth.clientId,
    redirect_uri: redirectUri(),
    scope: (auth.scopes || ["openid"]).join(" "),
    state,
    code_challenge: base64url(digest),
    code_challenge_method: "S256",
  }).toString();
  window.location.assign(url.toString());
}

async function finishOidc(auth, code, state) {
  const saved = JSON.parse(sessionStorage.getItem(PKCE_KEY) || "null");
  sessionStorage.removeItem(PKCE_KEY);
  if (!saved || !state || saved.state !== state) {
    throw new Error("Sign-in failed: the answer does not match this tab's request");
  }
  const resp = await fetch(auth.tokenEndpoint, {
    method: "POST",
    headers: { "Content-Type": "application/x-www-form-urlencoded" },
    body: new URLSearchParams({
      grant_type: "authorization_code",
      code,
      redirect_uri: redirectUri(),
      client_id: auth.clientId,
      code_verifier: saved.verifier,
    }),
  });
  if (!resp.ok) throw new Error(`Sign-in failed: the identity provider said ${resp.status}`);
  const tokens = await resp.json();
  const token = tokens[auth.tokenField || "id_token"];
  if (!token) throw new Error(`Sign-in failed: no ${auth.tokenField || "id_token"} returned`);
  setToken(token);
  if (saved.returnTo) window.location.hash = saved.returnTo;
}

/** Forget the token; with OIDC, also end the provider's session when it says how. */
export function signOut(config) {
  const token = currentToken();
  setToken(null);
  const auth = config.auth;
  if (auth.mode === "oidc" && auth.endSessionEndpoint) {
    const url = new URL(auth.endSessionEndpoint);
    url.search = new URLSearchParams({
      client_id: auth.clientId,
      post_logout_redirect_uri: redirectUri(),
      logout_uri: redirectUri(),
      ...(token && (auth.tokenField || "id_token") === "id_token" ? { id_token_hint: token } : {}),
    }).toString();
    window.location.assign(url.toString());
  }
}

/** The local server's "development token" button (loopback and dev-key mode only). */
export async function devToken(role = "editor") {
  const resp = await fetch("/local/dev-token", {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ role }),
    cache: "no-store",
  });
  const body = await resp.json().catch(() => ({}));
  if (!resp.ok) throw new Error(body.detail || `the server said ${resp.status}`);
  setToken(body.token);
  return body;
}
