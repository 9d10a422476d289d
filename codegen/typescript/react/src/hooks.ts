import { useCallback, useEffect, useRef, useSyncExternalStore } from "react";
import type {
  Cursor,
  CursorPosition,
  DocumentStatus,
  Json,
  JsonObject,
  Participant,
  PresentUser,
  RoomEvent,
  RoomStatus,
  SyncedDocument,
  SyncStatus,
} from "@syncforge/client";
import type * as Y from "yjs";
import type { Awareness } from "y-protocols/awareness";
import type { Room } from "@syncforge/client";
import { useRoom } from "./context";

type AnyRoom = Room<JsonObject>;

/** A room value as React state: one subscription per room (not per render), read on each change. */
function useRoomValue<T>(subscribe: (room: AnyRoom, notify: () => void) => () => void, read: (room: AnyRoom) => T): T {
  const room = useRoom();
  const listen = useCallback((notify: () => void) => subscribe(room, notify), [room, subscribe]);
  const snapshot = () => read(room);
  return useSyncExternalStore(listen, snapshot, snapshot);
}

const onPresence = (room: AnyRoom, notify: () => void) => room.presence.subscribe(notify);
const onCursors = (room: AnyRoom, notify: () => void) => room.cursors.subscribe(notify);
const onStatus = (room: AnyRoom, notify: () => void) => room.onStatus(notify);
const onSync = (room: AnyRoom, notify: () => void) => room.onSyncStatus(notify);
const readStatus = (room: AnyRoom) => room.status;
const readSelf = (room: AnyRoom) => room.presence.self;
const readOthers = (room: AnyRoom) => room.presence.others;
const readUsers = (room: AnyRoom) => room.presence.state.users;
const readMine = (room: AnyRoom) => room.presence.mine;
const readCursors = (room: AnyRoom) => room.cursors.others;
const readSync = (room: AnyRoom) => room.syncStatus;

/** The room's status: connecting, connected, reconnecting or disconnected. */
export function useStatus(): RoomStatus {
  return useRoomValue(onStatus, readStatus);
}

/** This connection in the room (null until joined). */
export function useSelf<P extends JsonObject = JsonObject>(): Participant<P> | null {
  return useRoomValue(onPresence, readSelf) as Participant<P> | null;
}

/** Every other connection in the room (others' tabs and devices each count once). */
export function useOthers<P extends JsonObject = JsonObject>(): readonly Participant<P>[] {
  return useRoomValue(onPresence, readOthers) as readonly Participant<P>[];
}

/** Everyone present grouped per user, you included (for avatar stacks). */
export function useUsers<P extends JsonObject = JsonObject>(): readonly PresentUser<P>[] {
  return useRoomValue(onPresence, readUsers) as readonly PresentUser<P>[];
}

/** A function that merges a patch into this connection's presence. */
export function useUpdateMyPresence<P extends JsonObject = JsonObject>(): (patch: Partial<P>) => void {
  const room = useRoom<P>();
  return useCallback((patch: Partial<P>) => room.updatePresence(patch), [room]);
}

/** This connection's presence and the function that updates it, like `useState`. */
export function useMyPresence<P extends JsonObject = JsonObject>(): [P, (patch: Partial<P>) => void] {
  const presence = useRoomValue(onPresence, readMine) as P;
  return [presence, useUpdateMyPresence<P>()];
}

/** What {@link useCursors} returns. */
export interface CursorsState {
  /** Others' cursors (idle ones flagged). */
  cursors: readonly Cursor[];
  /** Move this connection's cursor (sent at most once per room tick). */
  updateCursor: (position: CursorPosition) => void;
}

/** Others' cursors, and `updateCursor` for yours. */
export function useCursors(): CursorsState {
  const room = useRoom();
  const cursors = useRoomValue(onCursors, readCursors);
  const updateCursor = useCallback((position: CursorPosition) => room.cursors.update(position), [room]);
  return { cursors, updateCursor };
}

/** A function that broadcasts an event to everyone else in the room. */
export function useBroadcastEvent(): (type: string, payload?: Json) => Promise<void> {
  const room = useRoom();
  return useCallback((type: string, payload: Json = {}) => room.broadcast(type, payload), [room]);
}

/** Call `listener` with every event others broadcast (the latest `listener` is always used). */
export function useEventListener<T extends Json = Json>(listener: (event: RoomEvent<T>) => void): void {
  const room = useRoom();
  const latest = useRef(listener);
  latest.current = listener;
  useEffect(() => room.onEvent<T>((event) => latest.current(event)), [room]);
}

/** The room's document `slugOrId`, kept in sync (with its awareness and status). */
export function useSyncedDocument(slugOrId: string): SyncedDocument {
  return useRoom().getDocument(slugOrId);
}

/** The Y.Doc of the room's document `slugOrId`: edit it, every change is sent and acknowledged. */
export function useDocument(slugOrId: string): Y.Doc {
  return useSyncedDocument(slugOrId).doc;
}

/** The y-protocols awareness of the room's document `slugOrId` (for editor bindings). */
export function useDocumentAwareness(slugOrId: string): Awareness {
  return useSyncedDocument(slugOrId).awareness;
}

/** The document's status: loading, synchronizing (edits not yet durable) or synchronized. */
export function useDocumentStatus(slugOrId: string): DocumentStatus {
  const document = useSyncedDocument(slugOrId);
  const listen = useCallback((notify: () => void) => document.subscribe(notify), [document]);
  const snapshot = () => document.status;
  return useSyncExternalStore(listen, snapshot, snapshot);
}

/** Whether every local change to the room's documents is durable on the server. */
export function useSyncStatus(): SyncStatus {
  return useRoomValue(onSync, readSync);
}
