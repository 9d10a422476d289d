/** A GraphQL error as the server sends it: every error carries `extensions.code`. */
export interface GraphQLErrorShape {
  message: string;
  path?: readonly (string | number)[];
  extensions?: { code?: string; [key: string]: unknown };
}

/** Codes the client itself raises, besides the server's (UNAUTHORIZED, FORBIDDEN, NOT_FOUND, ...). */
export type ClientErrorCode = "DISCONNECTED" | "CLOSED" | "AUTH_FAILED" | "LISTENER_FAILED";

/**
 * An error from SyncForge or from the client: `code` is the server's `extensions.code`
 * (e.g. `NOT_FOUND`, `FORBIDDEN`, `RATE_LIMITED`, `VALIDATION_ERROR`) or a {@link ClientErrorCode}.
 */
export class SyncForgeError extends Error {
  /** The error's code. */
  readonly code: string;
  /** Everything else the server said (`field`, `retryAfter`, `reason`, `requestId`, ...). */
  readonly extensions: Readonly<Record<string, unknown>>;

  /** An error with a code and the server's extensions. */
  constructor(code: string, message: string, extensions: Record<string, unknown> = {}) {
    super(message);
    this.name = "SyncForgeError";
    this.code = code;
    this.extensions = extensions;
  }

  /** Seconds to wait before retrying, when the server said (RATE_LIMITED, UNAVAILABLE). */
  get retryAfter(): number | undefined {
    const value = this.extensions.retryAfter;
    return typeof value === "number" ? value : undefined;
  }
}

/** The first GraphQL error of a result as a SyncForgeError. */
export function fromGraphQLErrors(errors: readonly GraphQLErrorShape[]): SyncForgeError {
  const first = errors[0];
  const { code, ...rest } = first?.extensions ?? {};
  return new SyncForgeError(typeof code === "string" ? code : "INTERNAL_ERROR", first?.message ?? "unknown error", rest);
}

/** Whether `value` looks like a WebSocket close event (the socket went away, not an answer). */
export function isCloseEvent(value: unknown): value is { code: number; reason: string } {
  return typeof value === "object" && value !== null && "code" in value && "reason" in value;
}

/** Any failure (close event, error array, Error) as a SyncForgeError. */
export function toSyncForgeError(value: unknown): SyncForgeError {
  if (value instanceof SyncForgeError) return value;
  if (Array.isArray(value)) return fromGraphQLErrors(value as GraphQLErrorShape[]);
  if (isCloseEvent(value)) return new SyncForgeError("DISCONNECTED", `socket closed (${value.code} ${value.reason})`, { closeCode: value.code });
  if (value instanceof Error) return new SyncForgeError("DISCONNECTED", value.message);
  return new SyncForgeError("INTERNAL_ERROR", String(value));
}

// Errors that say "not now": the same request may succeed later.
const TRANSIENT_CODES = new Set(["DISCONNECTED", "UNAVAILABLE", "DOCUMENT_UNAVAILABLE", "PRESENCE_EXPIRED", "RATE_LIMITED", "INTERNAL_ERROR"]);

/** Whether retrying later may succeed (a lost socket, an overloaded server, a limit for now). */
export function isTransient(error: SyncForgeError): boolean {
  if (TRANSIENT_CODES.has(error.code)) return true;
  // The connection's operation limit: one ends, then there is room again.
  return error.code === "BAD_REQUEST" && error.extensions.reason === "TOO_MANY_OPERATIONS";
}
