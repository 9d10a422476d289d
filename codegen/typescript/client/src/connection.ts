// One graphql-ws socket shared by every room of a client, and the recovery around it.
//
// graphql-ws reconnects by itself on ordinary drops (server restart, network loss, 4403 with a
// fresh token) and re-sends every active operation; a stream's variables are read again at each
// (re)subscription, so `since` and the current presence are always fresh. Close codes graphql-ws
// treats as final (4400, 4429, 4500, ...) are recovered here: a new socket after a backoff, with
// every stream restarted. The client never gives up unless closed.
import { createClient, type Client as WsClient } from "graphql-ws/client";
import { SyncForgeError, fromGraphQLErrors, isCloseEvent, toSyncForgeError, type GraphQLErrorShape } from "./errors";
import { Signal } from "./signal";
import type { TokenSource } from "./tokens";

/** The socket's state: connecting (first time), connected, reconnecting, or disconnected (closed). */
export type ConnectionStatus = "connecting" | "connected" | "reconnecting" | "disconnected";

/** Reconnection backoff: the first retry waits about `minDelayMs`, then doubling up to `maxDelayMs`. */
export interface ReconnectOptions {
  /** Wait before the first retry (default 100 ms). */
  minDelayMs?: number;
  /** Longest wait between retries (default 1500 ms, so a restarted server is rejoined within 2 s). */
  maxDelayMs?: number;
}

/** A generated typed document (a string that knows its result and variables types). */
export interface Operation<TResult, TVariables> {
  toString(): string;
  /** Type-only marker carried by generated documents. */
  __apiType?: (variables: TVariables) => TResult;
}

/** Receives a stream's results; `error` ends the stream (the server refused or ended it). */
export interface StreamHandlers<TResult> {
  next: (data: TResult) => void;
  error: (error: SyncForgeError) => void;
}

/** A running subscription; `restart` re-subscribes it (fresh variables), `stop` ends it. */
export interface StreamHandle {
  restart(): void;
  stop(): void;
}

// Client pings every KEEPALIVE_MS; no pong within PONG_TIMEOUT_MS means the socket is dead.
const KEEPALIVE_MS = 12_000;
const PONG_TIMEOUT_MS = 6_000;
// A 4429 (rate limited) is retried no sooner than this.
const RATE_LIMITED_DELAY_MS = 5_000;

/** Options of {@link Connection}. */
export interface ConnectionOptions {
  url: string;
  publicApiKey: string;
  tokens: TokenSource;
  webSocketImpl?: unknown;
  reconnect?: ReconnectOptions;
}

interface Running {
  operation: { toString(): string };
  variables: () => unknown;
  handlers: StreamHandlers<unknown>;
  dispose: (() => void) | null;
}

/** The shared socket: typed requests and streams over graphql-transport-ws. */
export class Connection {
  /** The current state of the socket. */
  status: ConnectionStatus = "connecting";
  /** Emits every status change. */
  readonly statusChanged = new Signal<ConnectionStatus>();
  /** Emits after every successful (re)connection; `true` when it was a reconnection. */
  readonly connected = new Signal<boolean>();
  /** Emits errors that concern the whole connection (a refused token, a fatal close). */
  readonly errors = new Signal<SyncForgeError>();

  private ws: WsClient | null = null;
  private readonly streams = new Set<Running>();
  private everConnected = false;
  private closed = false;
  private failures = 0;
  private recovery: ReturnType<typeof setTimeout> | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;

  constructor(private readonly options: ConnectionOptions) {}

  /** One result of a query or mutation; rejects with the server's coded error. */
  request<TResult, TVariables>(operation: Operation<TResult, TVariables>, variables: TVariables): Promise<TResult> {
    if (this.closed) return Promise.reject(new SyncForgeError("CLOSED", "the client is closed"));
    return new Promise<TResult>((resolve, reject) => {
      let result: { data?: unknown; errors?: readonly GraphQLErrorShape[] } | undefined;
      this.socket().subscribe(
        { query: operation.toString(), variables: variables as Record<string, unknown> },
        {
          next: (value) => {
            result = value as typeof result;
          },
          error: (error) => reject(toSyncForgeError(error)),
          complete: () => {
            if (result?.errors?.length) reject(fromGraphQLErrors(result.errors));
            else if (result?.data) resolve(result.data as TResult);
            else reject(new SyncForgeError("DISCONNECTED", "the operation ended without a result"));
          },
        },
      );
    });
  }

  /**
   * A subscription kept alive across reconnections; `variables` is called at every
   * (re)subscription. An error from the server ends it (`handlers.error`); a lost socket does not.
   */
  stream<TResult, TVariables>(
    operation: Operation<TResult, TVariables>,
    variables: () => TVariables,
    handlers: StreamHandlers<TResult>,
  ): StreamHandle {
    const running: Running = {
      operation,
      variables,
      handlers: handlers as StreamHandlers<unknown>,
      dispose: null,
    };
    this.streams.add(running);
    this.start(running);
    return {
      restart: () => {
        if (!this.streams.has(running)) return;
        running.dispose?.();
        this.start(running);
      },
      stop: () => {
        this.streams.delete(running);
        running.dispose?.();
        running.dispose = null;
      },
    };
  }

  /** Close the socket for good: every stream stops and requests are refused. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    if (this.recovery) clearTimeout(this.recovery);
    this.clearPongTimer();
    for (const running of this.streams) running.dispose?.();
    this.streams.clear();
    void this.ws?.dispose();
    this.ws = null;
    this.setStatus("disconnected");
  }

  /** Drop the socket now (as a network failure would); it reconnects with the usual backoff. */
  drop(): void {
    this.ws?.terminate();
  }

  private start(running: Running): void {
    let dispose: (() => void) | null = null;
    let ended = false;
    // The payload's variables are read each time graphql-ws (re)sends the operation.
    const payload = {
      query: running.operation.toString(),
      get variables() {
        return running.variables() as Record<string, unknown>;
      },
    };
    dispose = this.socket().subscribe(payload, {
      next: (value) => {
        const result = value as { data?: unknown; errors?: readonly GraphQLErrorShape[] };
        if (result.errors?.length) {
          ended = true;
          this.streams.delete(running);
          running.handlers.error(fromGraphQLErrors(result.errors));
        } else if (result.data) {
          running.handlers.next(result.data);
        }
      },
      error: (error) => {
        if (ended) return;
        ended = true;
        if (isCloseEvent(error) || error instanceof Error || (typeof Event !== "undefined" && error instanceof Event)) {
          return; // the socket is gone for good: `recover` restarts every stream on a new one
        }
        this.streams.delete(running);
        running.handlers.error(toSyncForgeError(error));
      },
      complete: () => {
        if (ended) return;
        ended = true;
        // The server completed the stream without an error (e.g. leaveRoom): nothing to restart.
        this.streams.delete(running);
      },
    });
    running.dispose = () => {
      ended = true;
      dispose?.();
    };
  }

  private socket(): WsClient {
    if (this.ws) return this.ws;
    const { url, publicApiKey, tokens, reconnect = {} } = this.options;
    const minDelay = reconnect.minDelayMs ?? 100;
    const maxDelay = reconnect.maxDelayMs ?? 1500;
    let lastClose = 0;
    const ws: WsClient = createClient({
      url,
      webSocketImpl: this.options.webSocketImpl,
      lazy: false,
      keepAlive: KEEPALIVE_MS,
      retryAttempts: Number.POSITIVE_INFINITY,
      shouldRetry: () => !this.closed,
      retryWait: (retries) => wait(backoff(retries, minDelay, maxDelay, lastClose)),
      connectionParams: async () => ({ apiKey: publicApiKey, token: await tokens.token() }),
      onNonLazyError: (error) => this.recover(ws, error),
      on: {
        connecting: () => this.setStatus(this.everConnected ? "reconnecting" : "connecting"),
        connected: (_socket, _payload, wasRetry) => {
          this.failures = 0;
          const reconnection = this.everConnected || wasRetry;
          this.everConnected = true;
          this.setStatus("connected");
          this.connected.emit(reconnection);
        },
        closed: (event) => {
          this.clearPongTimer();
          if (isCloseEvent(event)) {
            lastClose = event.code;
            if (event.code === 4403) {
              // Expired token, revoked or rotated key: the next attempt fetches a fresh token.
              tokens.invalidate();
              this.errors.emit(new SyncForgeError("FORBIDDEN", event.reason || "credentials refused", { closeCode: 4403 }));
            }
          }
          if (!this.closed) this.setStatus("reconnecting");
        },
        ping: (received) => {
          if (!received) {
            this.clearPongTimer();
            this.pongTimer = setTimeout(() => ws.terminate(), PONG_TIMEOUT_MS);
          }
        },
        pong: (received) => {
          if (received) this.clearPongTimer();
        },
      },
    });
    this.ws = ws;
    return ws;
  }

  /** graphql-ws gave up on this socket (a final close code): start over on a new one. */
  private recover(ws: WsClient, error: unknown): void {
    if (this.closed || this.ws !== ws) return;
    const failure = toSyncForgeError(error);
    this.errors.emit(failure);
    this.ws = null;
    void ws.dispose();
    this.setStatus("reconnecting");
    const code = isCloseEvent(error) ? error.code : 0;
    const delay = code === 4429 ? Math.max(RATE_LIMITED_DELAY_MS, (failure.retryAfter ?? 0) * 1000) : backoff(this.failures++, 250, 5000, 0);
    this.recovery = setTimeout(() => {
      this.recovery = null;
      if (this.closed) return;
      for (const running of [...this.streams]) this.start(running);
      if (this.streams.size === 0) this.socket();
    }, delay);
  }

  private clearPongTimer(): void {
    if (this.pongTimer) clearTimeout(this.pongTimer);
    this.pongTimer = null;
  }

  private setStatus(status: ConnectionStatus): void {
    if (this.status === status) return;
    if (this.closed && status !== "disconnected") return;
    this.status = status;
    this.statusChanged.emit(status);
  }
}

/** Exponential backoff with jitter (50–100% of the step); a 4429 waits longer. */
function backoff(retries: number, minDelay: number, maxDelay: number, lastClose: number): number {
  const step = Math.min(maxDelay, minDelay * 2 ** retries);
  const delay = step * (0.5 + Math.random() * 0.5);
  return lastClose === 4429 ? Math.max(delay, RATE_LIMITED_DELAY_MS) : delay;
}

function wait(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
