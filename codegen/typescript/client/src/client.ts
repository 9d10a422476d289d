import { Connection, type ConnectionStatus, type ReconnectOptions } from "./connection";
import type { SyncForgeError } from "./errors";
import { Room, type EnterRoomOptions } from "./room";
import type { Unsubscribe } from "./signal";
import { TokenSource, type TokenOptions } from "./tokens";
import type { JsonObject } from "./types";

/** Options of {@link createClient}: where the server is, your publishable key, and how to get tokens. */
export type ClientOptions = {
  /** The GraphQL endpoint: `wss://collab.example.com/graphql` (http(s) URLs are turned into ws(s)). */
  url: string;
  /** Your organization's publishable key (`pk_live_...`). */
  publicApiKey: string;
  /** The WebSocket implementation (Node < 22: `import WebSocket from "ws"`). Browsers have one. */
  WebSocket?: unknown;
  /** The fetch used for `authEndpoint` (defaults to the global one). */
  fetch?: typeof fetch;
  /** Reconnection backoff. */
  reconnect?: ReconnectOptions;
} & TokenOptions;

/** A SyncForge client: one socket, shared by every room it enters. */
export class Client {
  private readonly connection: Connection;
  private readonly rooms = new Map<string, Room<JsonObject>>();

  /** Use {@link createClient}. */
  constructor(options: ClientOptions) {
    const tokens = new TokenSource(
      options.getToken ? { getToken: options.getToken } : { authEndpoint: options.authEndpoint as string },
      options.fetch,
    );
    this.connection = new Connection({
      url: toWebSocketUrl(options.url),
      publicApiKey: options.publicApiKey,
      tokens,
      webSocketImpl: options.WebSocket,
      reconnect: options.reconnect,
    });
  }

  /** The socket's state. */
  get status(): ConnectionStatus {
    return this.connection.status;
  }

  /** Call `listener` on every change of the socket's state. */
  onStatus(listener: (status: ConnectionStatus) => void): Unsubscribe {
    return this.connection.statusChanged.subscribe(listener);
  }

  /** Call `listener` with connection-wide errors (refused credentials, final close codes). */
  onError(listener: (error: SyncForgeError) => void): Unsubscribe {
    return this.connection.errors.subscribe(listener);
  }

  /**
   * Enter a room by id or slug: join its presence, follow cursors and events. Entering a room
   * already entered answers the same Room; it is left once each `enterRoom` had its `room.leave()`.
   */
  enterRoom<P extends JsonObject = JsonObject>(idOrSlug: string, options: EnterRoomOptions<P> = {}): Room<P> {
    const existing = this.rooms.get(idOrSlug) ?? [...this.rooms.values()].find((room) => room.id === idOrSlug);
    if (existing) {
      existing.retain();
      return existing as unknown as Room<P>;
    }
    const room = new Room<P>(this.connection, idOrSlug, options, () => {
      if (this.rooms.get(idOrSlug) === (room as unknown)) this.rooms.delete(idOrSlug);
    });
    this.rooms.set(idOrSlug, room as unknown as Room<JsonObject>);
    return room;
  }

  /** The room entered as `idOrSlug`, if any. */
  getRoom<P extends JsonObject = JsonObject>(idOrSlug: string): Room<P> | undefined {
    return this.rooms.get(idOrSlug) as unknown as Room<P> | undefined;
  }

  /** Drop the socket as a network failure would (it reconnects): for tests and "retry now" buttons. */
  reconnect(): void {
    this.connection.drop();
  }

  /** Leave every room and close the socket for good. */
  async close(): Promise<void> {
    await Promise.all([...this.rooms.values()].map((room) => room.leave(true)));
    this.connection.close();
  }
}

/**
 * Create a client. Give `authEndpoint` (your backend's URL that answers `{ token }` minted with
 * `createEndUserToken` and your secret key) or `getToken` (your own function).
 *
 * @example
 * const client = createClient({ url: "ws://127.0.0.1:8000/graphql", publicApiKey: "pk_live_...", authEndpoint: "/api/syncforge-token" });
 * const room = client.enterRoom("team-42:design", { initialPresence: { typing: false } });
 */
export function createClient(options: ClientOptions): Client {
  return new Client(options);
}

/** `http(s)://` to `ws(s)://`; a path-only URL is resolved against the page's location. */
export function toWebSocketUrl(url: string): string {
  const base = typeof location !== "undefined" ? location.href : undefined;
  const parsed = new URL(url, base);
  if (parsed.protocol === "http:") parsed.protocol = "ws:";
  if (parsed.protocol === "https:") parsed.protocol = "wss:";
  return parsed.toString();
}
