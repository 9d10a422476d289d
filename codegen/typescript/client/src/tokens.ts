import { SyncForgeError } from "./errors";

/** What `getToken` may answer: the token, or the JSON your token endpoint returned. */
export type TokenAnswer =
  | string
  | {
      /** The end-user token. */
      token: string;
      /** When it expires (ISO 8601); read from the token itself when absent. */
      expiresAt?: string;
    };

/** How the client obtains end-user tokens: your backend's URL, or your own function. */
export type TokenOptions =
  | {
      /** Your backend's URL: POSTed to (with cookies), answers `{ "token": ... }`. */
      authEndpoint: string;
      /** Not with `authEndpoint`. */
      getToken?: undefined;
    }
  | {
      /** Your own function returning a token (called again when it expires or is refused). */
      getToken: () => Promise<TokenAnswer>;
      /** Not with `getToken`. */
      authEndpoint?: undefined;
    };

// A token is reused until this close to its expiry (the server closes with 4403 at expiry).
const EXPIRY_MARGIN_MS = 30_000;
// A token request that hangs (a laptop waking up) is abandoned, and the next attempt asks again.
const FETCH_TIMEOUT_MS = 10_000;

/**
 * Fetches end-user tokens and keeps the current one until it nears expiry or the server
 * refuses it (4403): then the next connection attempt fetches a fresh one.
 */
export class TokenSource {
  private current: { token: string; expiresAt: number } | null = null;
  private inflight: Promise<string> | null = null;

  constructor(private readonly options: TokenOptions, private readonly fetchImpl: typeof fetch | undefined) {}

  /** The token to connect with: the cached one, or a fresh one. */
  token(): Promise<string> {
    if (this.current && this.current.expiresAt - EXPIRY_MARGIN_MS > Date.now()) {
      return Promise.resolve(this.current.token);
    }
    this.inflight ??= this.fetchToken().finally(() => {
      this.inflight = null;
    });
    return this.inflight;
  }

  /** Forget the cached token (the server refused it). */
  invalidate(): void {
    this.current = null;
  }

  private async fetchToken(): Promise<string> {
    const answer = await withTimeout(
      this.options.getToken ? this.options.getToken() : this.post(this.options.authEndpoint),
      FETCH_TIMEOUT_MS,
    );
    const { token, expiresAt } = typeof answer === "string" ? { token: answer, expiresAt: undefined } : answer;
    if (typeof token !== "string" || token === "") {
      throw new SyncForgeError("AUTH_FAILED", "the token endpoint answered no token");
    }
    this.current = { token, expiresAt: expiresAt ? Date.parse(expiresAt) : tokenExpiry(token) };
    return token;
  }

  private async post(url: string): Promise<TokenAnswer> {
    const fetcher = this.fetchImpl ?? globalThis.fetch;
    const response = await fetcher(url, {
      method: "POST",
      credentials: "include",
      headers: { "Content-Type": "application/json" },
      body: "{}",
      signal: AbortSignal.timeout(FETCH_TIMEOUT_MS),
    });
    if (!response.ok) {
      throw new SyncForgeError("AUTH_FAILED", `the token endpoint answered HTTP ${response.status}`, { status: response.status });
    }
    return (await response.json()) as TokenAnswer;
  }
}

/** A JWT's `exp` in epoch milliseconds (unknown: five minutes from now). */
export function tokenExpiry(token: string): number {
  try {
    const payload = token.split(".")[1] ?? "";
    const claims = JSON.parse(atob(payload.replace(/-/g, "+").replace(/_/g, "/"))) as { exp?: unknown };
    if (typeof claims.exp === "number") return claims.exp * 1000;
  } catch {
    // not a JWT we can read: fall through
  }
  return Date.now() + 5 * 60_000;
}

function withTimeout<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new SyncForgeError("AUTH_FAILED", `no token after ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}
