// One graphql-ws socket shared by every room of a client, and the recovery around it.
//
// graphql-ws reconnects by itself on ordinary drops (server restart, network loss, 4403 with a
// fresh token) and re-sends every active operation; a stream's variables are read again at each
// (re)subscription, so `since` and the current presence are always fresh. Close codes graphql-ws
// treats as final (4400, 4429, 4500, ...) are recovered here: a new socket after a backoff, with
// every stream restarted. The client never gives up unless closed.
//
// The server allows 100 operations per connection: at most OPERATION_SLOTS run at once, the
// others wait for a slot. Per-kind rates are kept by `budget` (see budget.ts).
import { createClient, type Client as WsClient } from "graphql-ws/client";
import { Budget } from "./budget";
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
  /** The server completed the stream without an error. */
  complete?: () => void;
}

/** A running subscription; `restart` subscribes again (fresh variables, also after an error), `stop` ends it. */
export interface StreamHandle {
  restart(): void;
  stop(): void;
}

/** Options of one request. */
export interface RequestOptions {
  /**
   * Fail with DISCONNECTED if the socket closes before the answer, instead of being re-sent after
   * the reconnection (for what is stale by then: a cursor move, a broadcast).
   */
  once?: boolean;
}

// Client pings every KEEPALIVE_MS; no pong within PONG_TIMEOUT_MS means the socket is dead.
const KEEPALIVE_MS = 12_000;
const PONG_TIMEOUT_MS = 6_000;
// A 4429 (rate limited) is retried no sooner than this.
const RATE_LIMITED_DELAY_MS = 5_000;
// The server refuses a connection's 101st operation.
const OPERATION_SLOTS = 95;

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
  stopped: boolean;
}

/** The shared socket: typed requests and streams over graphql-transport-ws. */
export class Connection {
  /** The current state of the socket. */
  status: ConnectionStatus = "connecting";
  /** Emits every status change. */
  readonly statusChanged = new Signal<ConnectionStatus>();
  /** Emits after every successful (re)connection; `true` when it was a reconnection. */
  readonly connected = new Signal<boolean>();
  /** Emits errors that concern the whole connection (a refused key, a fatal close, a failing listener). */
  readonly errors = new Signal<SyncForgeError>();
  /** Per-kind send rates shared by every room. */
  readonly budget = new Budget();

  private readonly closedSignal = new Signal<void>();
  private ws: WsClient | null = null;
  private readonly streams = new Set<Running>();
  private everConnected = false;
  private closed = false;
  private failures = 0;
  private recovery: { timer: ReturnType<typeof setTimeout>; done: Promise<void>; resolve: () => void } | null = null;
  private pongTimer: ReturnType<typeof setTimeout> | null = null;
  private active = 0;
  private readonly waiting: (() => void)[] = [];

  constructor(private readonly options: ConnectionOptions) {}

  /** One result of a query or mutation; rejects with the server's coded error. */
  async request<TResult, TVariables>(
    operation: Operation<TResult, TVariables>,
    variables: TVariables,
    options: RequestOptions = {},
  ): Promise<TResult> {
    await this.slot();
    return new Promise<TResult>((resolve, reject) => {
      let result: { data?: unknown; errors?: readonly GraphQLErrorShape[] } | undefined;
      let settled = false;
      let stopWatching: (() => void) | null = null;
      const settle = (outcome: () => void) => {
        if (settled) return;
        settled = true;
        stopWatching?.();
        this.release();
        outcome();
      };
      const dispose = this.socket().subscribe(
        { query: operation.toString(), variables: variables as Record<string, unknown> },
        {
          next: (value) => {
            result = value as typeof result;
          },
          error: (error) => settle(() => reject(toSyncForgeError(error))),
          complete: () =>
            settle(() => {
              if (result?.errors?.length) reject(fromGraphQLErrors(result.errors));
              else if (result?.data) resolve(result.data as TResult);
              else reject(new SyncForgeError("DISCONNECTED", "the operation ended without a result"));
            }),
        },
      );
      if (options.once) {
        stopWatching = this.closedSignal.subscribe(() => {
          dispose();
          settle(() => reject(new SyncForgeError("DISCONNECTED", "the socket closed before the answer")));
        });
      }
    });
  }

  /**
   * A subscription kept alive across reconnections; `variables` is called at every
   * (re)subscription. An error from the server ends it (`handlers.error`; `restart` starts it
   * again); a lost socket does not.
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
      stopped: false,
    };
    this.streams.add(running);
    void this.start(running);
    return {
      restart: () => {
        if (running.stopped || this.closed) return;
        running.dispose?.();
        running.dispose = null;
        this.streams.add(running);
        void this.start(running);
      },
      stop: () => {
        running.stopped = true;
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
    if (this.recovery) {
      clearTimeout(this.recovery.timer);
      this.recovery.resolve();
    }
    this.clearPongTimer();
    for (const running of this.streams) {
      running.stopped = true;
      running.dispose?.();
    }
    this.streams.clear();
    const ws = this.ws;
    this.ws = null;
    ws?.terminate();
    if (ws) Promise.resolve(ws.dispose()).catch(() => {});
    for (const wake of this.waiting.splice(0)) wake();
    this.setStatus("disconnected");
  }

  /** Drop the socket now (as a network failure would); it reconnects with the usual backoff. */
  drop(): void {
    this.ws?.terminate();
  }

  /** Wait for one of the connection's operation slots (and for a pending recovery). */
  private async slot(): Promise<void> {
    if (this.recovery) await this.recovery.done;
    if (this.closed) throw new SyncForgeError("CLOSED", "the client is closed");
    if (this.active < OPERATION_SLOTS) {
      this.active += 1;
      return;
    }
    await new Promise<void>((wake) => this.waiting.push(wake)); // the slot is handed over
    if (this.closed) throw new SyncForgeError("CLOSED", "the client is closed");
  }

  private release(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.active = Math.max(0, this.active - 1);
  }

  private async start(running: Running): Promise<void> {
    let ended = false;
    let holding = false;
    const free = () => {
      if (holding) this.release();
      holding = false;
    };
    running.dispose = () => {
      ended = true;
    };
    try {
      await this.slot();
    } catch {
      return; // closed meanwhile
    }
    holding = true;
    if (ended || running.stopped) return free();
    // The payload's variables are read each time graphql-ws (re)sends the operation.
    const payload = {
      query: running.operation.toString(),
      get variables() {
        return running.variables() as Record<string, unknown>;
      },
    };
    const finish = (then?: () => void) => {
      if (ended) return;
      ended = true;
      free();
      then?.();
    };
    const dispose = this.socket().subscribe(payload, {
      next: (value) => {
        if (ended) return;
        const result = value as { data?: unknown; errors?: readonly GraphQLErrorShape[] };
        if (result.errors?.length) {
          dispose();
          this.streams.delete(running);
          finish(() => running.handlers.error(fromGraphQLErrors(result.errors ?? [])));
        } else if (result.data) {
          try {
            running.handlers.next(result.data);
          } catch (error) {
            // An app's listener (a Y.Doc observer, ...) failed: report it, keep the socket.
            this.errors.emit(new SyncForgeError("LISTENER_FAILED", String(error), { cause: error }));
          }
        }
      },
      error: (error) => {
        if (isCloseEvent(error) || error instanceof Error || (typeof Event !== "undefined" && error instanceof Event)) {
          finish(); // the socket is gone for good: `recover` restarts every stream on a new one
          return;
        }
        this.streams.delete(running);
        finish(() => running.handlers.error(toSyncForgeError(error)));
      },
      complete: () => {
        this.streams.delete(running);
        finish(() => running.handlers.complete?.());
      },
    });
    running.dispose = () => {
      if (ended) return;
      dispose();
      finish();
    };
  }

  private socket(): WsClient {
    if (this.ws) return this.ws;
    const { url, publicApiKey, tokens, reconnect = {} } = this.options;
    const minDelay = reconnect.minDelayMs ?? 100;
    const maxDelay = reconnect.maxDelayMs ?? 1500;
    const ws: WsClient = createClient({
      url,
      webSocketImpl: this.options.webSocketImpl,
      lazy: false,
      keepAlive: KEEPALIVE_MS,
      retryAttempts: Number.POSITIVE_INFINITY,
      shouldRetry: () => !this.closed,
      retryWait: (retries) => wait(backoff(retries, minDelay, maxDelay)),
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
          if (isCloseEvent(event) && event.code === 4403) {
            // Expired token, revoked or rotated key: the next attempt fetches a fresh token.
            tokens.invalidate();
            if (!/expired/i.test(event.reason)) {
              this.errors.emit(new SyncForgeError("FORBIDDEN", event.reason || "credentials refused", { closeCode: 4403 }));
            }
          }
          this.closedSignal.emit();
          if (!this.closed) this.setStatus(this.everConnected ? "reconnecting" : "connecting");
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
    Promise.resolve(ws.dispose()).catch(() => {});
    this.setStatus(this.everConnected ? "reconnecting" : "connecting");
    const code = isCloseEvent(error) ? error.code : 0;
    const delay =
      code === 4429 ? Math.max(RATE_LIMITED_DELAY_MS, (failure.retryAfter ?? 0) * 1000) : backoff(this.failures++, 250, 5000);
    // Requests and stream starts wait for the delay too: no new socket before it.
    let resolve!: () => void;
    const done = new Promise<void>((r) => (resolve = r));
    const timer = setTimeout(() => {
      this.recovery = null;
      resolve();
      if (this.closed) return;
      for (const running of [...this.streams]) {
        running.dispose = null;
        void this.start(running);
      }
      if (this.streams.size === 0) this.socket();
    }, delay);
    this.recovery = { timer, done, resolve };
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

/** Exponential backoff with jitter (50–100% of the step). */
function backoff(retries: number, minDelay: number, maxDelay: number): number {
  const step = Math.min(maxDelay, minDelay * 2 ** retries);
  return step * (0.5 + Math.random() * 0.5);
}

function wait(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
