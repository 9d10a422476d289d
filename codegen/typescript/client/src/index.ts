/**
 * @syncforge/client: rooms, presence, live cursors, broadcast and Yjs documents over one
 * graphql-ws socket, with reconnection and state recovery.
 *
 * @packageDocumentation
 */
export { Client, createClient, toWebSocketUrl, type ClientOptions } from "./client";
export type { ConnectionStatus, ReconnectOptions } from "./connection";
export { RoomCursors } from "./cursors";
export { SyncedDocument, type DocumentOptions, type DocumentStatus } from "./document";
export { SyncForgeError, type ClientErrorCode } from "./errors";
export { RoomPresence, type PresenceState } from "./presence";
export { Room, type EnterRoomOptions } from "./room";
export type { Unsubscribe } from "./signal";
export type { TokenAnswer, TokenOptions } from "./tokens";
export type {
  Cursor,
  CursorPosition,
  Json,
  JsonObject,
  Participant,
  PresenceStatus,
  PresentUser,
  RoomEvent,
  RoomStatus,
  SyncStatus,
  UserInfo,
} from "./types";
