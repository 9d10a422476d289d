/** Any JSON value. */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** A JSON object: presence, broadcast payloads, metadata. */
export type JsonObject = { [key: string]: Json };

/** Who a participant is, from their end-user token (`userInfo` of `createEndUserToken`). */
export interface UserInfo {
  /** Display name. */
  name?: string;
  /** Avatar image URL. */
  avatar?: string;
  /** `#RRGGBB`, for cursors and avatars. */
  color?: string;
  /** Anything else your UI shows. */
  extra?: Json;
}

/** Online, away or busy: a connection's status in a room. */
export type PresenceStatus = "ONLINE" | "AWAY" | "BUSY";

/** One connection present in a room (a user with two tabs has two). */
export interface Participant<P extends JsonObject = JsonObject> {
  /** Stable across a reconnection within the server's grace period. */
  readonly connectionId: string;
  /** Your application's id for the user. */
  readonly userId: string;
  /** Name, avatar and color from the user's token. */
  readonly info: UserInfo;
  /** What this connection shares (cursor-independent state: selection, typing, ...). */
  readonly presence: P;
  /** Online, away or busy. */
  readonly status: PresenceStatus;
  /** When this connection joined (ISO 8601). */
  readonly joinedAt: string;
}

/** A user present in a room, with each of their connections. */
export interface PresentUser<P extends JsonObject = JsonObject> {
  /** Your application's id for the user. */
  readonly userId: string;
  /** Name, avatar and color from the user's token. */
  readonly info: UserInfo;
  /** One entry per connection (tab, device). */
  readonly connections: readonly Participant<P>[];
}

/** Where a cursor is: page coordinates, or relative to an element. */
export interface CursorPosition {
  /** Horizontal position (pixels, or a fraction of the element when `elementId` is set). */
  x?: number | null;
  /** Vertical position. */
  y?: number | null;
  /** The element the position is relative to. */
  elementId?: string | null;
  /** Any extra offset your app needs (e.g. a scroll position). */
  offset?: Json;
  /** A selection (e.g. a text range). */
  selection?: Json;
}

/** Another connection's cursor, with its owner's identity. */
export interface Cursor {
  /** The connection the cursor belongs to. */
  readonly connectionId: string;
  /** Its user's id. */
  readonly userId: string;
  /** Its user's name, avatar and color. */
  readonly info: UserInfo;
  /** Horizontal position. */
  readonly x: number | null;
  /** Vertical position. */
  readonly y: number | null;
  /** The element the position is relative to, if any. */
  readonly elementId: string | null;
  /** The extra offset its sender gave. */
  readonly offset: Json;
  /** The selection its sender gave. */
  readonly selection: Json;
  /** True once the cursor has not moved for a while (fade it out). */
  readonly idle: boolean;
  /** Server time of the last move, epoch seconds. */
  readonly movedAt: number;
}

/** An event another connection broadcast in the room. */
export interface RoomEvent<T extends Json = Json> {
  /** The event's type, as the sender named it. */
  readonly type: string;
  /** The sender's payload. */
  readonly payload: T;
  /** The sender's user id. */
  readonly userId: string;
  /** The sender's connection. */
  readonly senderConnectionId: string | null;
  /** Server time, epoch seconds. */
  readonly sentAt: number;
}

/** A room's state: connecting (first time), connected, reconnecting, or disconnected (left or refused). */
export type RoomStatus = "connecting" | "connected" | "reconnecting" | "disconnected";

/** Whether every local change is durably stored on the server. */
export type SyncStatus = "synchronizing" | "synchronized";
