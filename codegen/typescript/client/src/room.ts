import type { Connection, StreamHandle } from "./connection";
import { RoomCursors } from "./cursors";
import { SyncedDocument, type DocumentOptions } from "./document";
import { SyncForgeError, isTransient } from "./errors";
import {
  BroadcastEventDocument,
  CursorsDocument,
  LeaveRoomDocument,
  MoveCursorDocument,
  RoomByIdDocument,
  RoomBySlugDocument,
  RoomEventsDocument,
  RoomPresenceDocument,
  UpdatePresenceDocument,
  ViewerDocument,
} from "./generated/graphql";
import { RoomPresence } from "./presence";
import { Signal, type Unsubscribe } from "./signal";
import type { Json, JsonObject, PresenceStatus, RoomEvent, RoomStatus, SyncStatus } from "./types";

/** Options of {@link Client.enterRoom}. */
export interface EnterRoomOptions<P extends JsonObject> {
  /** This connection's presence when it joins. */
  initialPresence?: P;
  /** Online (default), away or busy. */
  initialStatus?: PresenceStatus;
  /** The room's password, if it has one. */
  password?: string;
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
const DEFAULT_TICK_MS = 50;
// A refused or failed presence update (or join) is sent again this much later.
const PRESENCE_RETRY_MS = 250;
// A stream the server ended because this socket fell behind: subscribe again.
const LAGGING = "SUBSCRIBER_LAGGING";
// leave() waits this long for leaveRoom's answer before ending the streams anyway.
const LEAVE_TIMEOUT_MS = 1000;

/** How long to wait before retrying after `error`. */
function retryDelay(error: SyncForgeError): number {
  return Math.max(PRESENCE_RETRY_MS, (error.retryAfter ?? 0) * 1000);
}

/**
 * A room this client is in: presence, cursors, broadcast events and documents, all over the
 * client's one socket. After a reconnection it rejoins (within the server's grace period others
 * see neither a leave nor a join) and resubscribes everything.
 */
export class Room<P extends JsonObject = JsonObject> {
  /** Who is here: self, others, and each user's connections. */
  readonly presence: RoomPresence<P>;
  /** Others' cursors, and `update` for this connection's. */
  readonly cursors: RoomCursors;
  /** The room's id, once resolved from its slug. */
  id: string | null = null;

  private statusValue: RoomStatus = "connecting";
  private readonly statusSignal = new Signal<RoomStatus>();
  private readonly eventSignal = new Signal<RoomEvent>();
  private readonly errorSignal = new Signal<SyncForgeError>();
  private readonly syncSignal = new Signal<SyncStatus>();
  private readonly documents = new Map<string, SyncedDocument>();
  private readonly streams: StreamHandle[] = [];
  private readonly unsubscribes: Unsubscribe[] = [];
  private resolvedId: Promise<string> | null = null;
  private left = false;
  private holders = 1;
  private presenceSending = false;
  private presenceDirty = false;
  private syncValue: SyncStatus = "synchronized";

  /** @internal Rooms are made by {@link Client.enterRoom}. */
  constructor(
    private readonly connection: Connection,
    /** The id or slug the room was entered with. */
    readonly idOrSlug: string,
    private readonly options: EnterRoomOptions<P>,
    private readonly onLeave: (room: Room<P>) => void,
  ) {
    this.presence = new RoomPresence<P>(
      { presence: options.initialPresence ?? ({} as P), status: options.initialStatus ?? "ONLINE" },
      () => this.sendPresence(),
    );
    this.cursors = new RoomCursors((position) => this.moveCursor(position), DEFAULT_TICK_MS, () =>
      connection.budget.take("moves"),
    );
    this.unsubscribes.push(
      connection.statusChanged.subscribe((status) => {
        if (status === "reconnecting" && this.statusValue === "connected") this.setStatus("reconnecting");
      }),
    );
    void this.join();
  }

  /** connecting, connected, reconnecting or disconnected. */
  get status(): RoomStatus {
    return this.statusValue;
  }

  /** Whether every local document change in this room is durable on the server. */
  get syncStatus(): SyncStatus {
    return this.syncValue;
  }

  /** Call `listener` on every status change. */
  onStatus(listener: (status: RoomStatus) => void): Unsubscribe {
    return this.statusSignal.subscribe(listener);
  }

  /** Call `listener` on every sync status change. */
  onSyncStatus(listener: (status: SyncStatus) => void): Unsubscribe {
    return this.syncSignal.subscribe(listener);
  }

  /** Call `listener` with every event others broadcast in the room. */
  onEvent<T extends Json = Json>(listener: (event: RoomEvent<T>) => void): Unsubscribe {
    return this.eventSignal.subscribe(listener as (event: RoomEvent) => void);
  }

  /** Call `listener` with errors: the room refused (NOT_FOUND, FORBIDDEN, ROOM_FULL), a stream ended. */
  onError(listener: (error: SyncForgeError) => void): Unsubscribe {
    return this.errorSignal.subscribe(listener);
  }

  /** Merge `patch` into this connection's presence. */
  updatePresence(patch: Partial<P>, status?: PresenceStatus): void {
    this.presence.update(patch, status);
  }

  /** Send an event to everyone else in the room; rejects when not connected or refused. */
  async broadcast(type: string, payload: Json = {}): Promise<void> {
    if (this.statusValue !== "connected") {
      throw new SyncForgeError("DISCONNECTED", "the room is not connected: the event was not sent");
    }
    await this.connection.budget.spend("broadcasts");
    // Not re-sent after a reconnection: a late event is worse than a lost one.
    await this.connection.request(BroadcastEventDocument, { roomId: this.id as string, type, payload }, { once: true });
  }

  /**
   * A Y.Doc kept in sync with the room's document `slugOrId` (the same object for the same name).
   * Edit `doc` freely: changes are sent, acknowledged (`syncStatus`) and survive reconnections.
   */
  getDocument(slugOrId: string, options: DocumentOptions = {}): SyncedDocument {
    if (this.left) throw new SyncForgeError("CLOSED", "this room was left: enter it again");
    let document = this.documents.get(slugOrId) ?? [...this.documents.values()].find((d) => d.id === slugOrId);
    if (!document) {
      document = new SyncedDocument(this.connection, () => this.resolveId(), slugOrId, options);
      this.documents.set(slugOrId, document);
      this.unsubscribes.push(document.subscribe(() => this.refreshSync()));
      document.onError((error) => this.errorSignal.emit(error));
      this.refreshSync();
    }
    return document;
  }

  /** @internal Another `enterRoom` of the same room: one more `leave()` before it is left. */
  retain(): void {
    this.holders += 1;
  }

  /**
   * Leave (once every `enterRoom` of this room has called it; `force` leaves at once): others
   * see the leave at once, every stream of the room ends.
   */
  async leave(force = false): Promise<void> {
    if (this.left) return;
    this.holders = force ? 0 : this.holders - 1;
    if (this.holders > 0) return;
    this.left = true;
    const roomId = this.id;
    this.onLeave(this);
    this.setStatus("disconnected");
    if (roomId && this.connection.status === "connected") {
      // While still present: the server publishes the leave at once and ends roomPresence.
      const leaving = this.connection.request(LeaveRoomDocument, { roomId }, { once: true }).catch(() => false);
      await Promise.race([leaving, new Promise((resolve) => setTimeout(resolve, LEAVE_TIMEOUT_MS))]);
    }
    for (const stream of this.streams) stream.stop();
    for (const document of this.documents.values()) document.destroy();
    this.documents.clear();
    for (const unsubscribe of this.unsubscribes) unsubscribe();
    this.presence.clear();
    this.cursors.clear();
  }

  /** @internal The room's id (resolving a slug with the organization of the client's credentials). */
  resolveId(): Promise<string> {
    this.resolvedId ??= (async () => {
      if (UUID.test(this.idOrSlug)) {
        const { room } = await this.connection.request(RoomByIdDocument, { id: this.idOrSlug });
        this.cursors.tickMs = room.cursorTickMs;
        return room.id;
      }
      const { viewer } = await this.connection.request(ViewerDocument, {});
      if (!viewer.organizationId) throw new SyncForgeError("UNAUTHORIZED", "these credentials belong to no organization");
      const { room } = await this.connection.request(RoomBySlugDocument, { organizationId: viewer.organizationId, slug: this.idOrSlug });
      this.cursors.tickMs = room.cursorTickMs;
      return room.id;
    })();
    this.resolvedId.catch(() => {
      this.resolvedId = null;
    });
    return this.resolvedId;
  }

  private async join(): Promise<void> {
    let roomId: string;
    try {
      roomId = await this.resolveId();
    } catch (error) {
      const failure = error as SyncForgeError;
      if (isTransient(failure) && !this.left) {
        setTimeout(() => void this.join(), retryDelay(failure));
        return;
      }
      this.fail(failure);
      return;
    }
    if (this.left) return;
    this.id = roomId;
    const presence = this.connection.stream(
      RoomPresenceDocument,
      () => ({
        roomId,
        presence: this.presence.mine,
        status: this.presence.myStatus,
        ...(this.options.password ? { password: this.options.password } : {}),
      }),
      {
        next: ({ roomPresence }) => {
          this.presence.apply(roomPresence);
          if (roomPresence.kind !== "SYNC") return;
          this.setStatus("connected");
          if (this.presenceDirty) this.sendPresence(); // changed while the rejoin was on its way
          this.cursors.resend(); // the server forgot this connection's cursor with the old socket
        },
        error: (error) => {
          if (this.left) return;
          if (!isTransient(error)) return this.fail(error);
          this.errorSignal.emit(error);
          this.setStatus("reconnecting");
          setTimeout(() => presence.restart(), retryDelay(error));
        },
        // Ended without an error while we stay (the server dropped the entry): join again.
        complete: () => {
          if (this.left) return; // our own leaveRoom
          this.setStatus("reconnecting");
          setTimeout(() => presence.restart(), PRESENCE_RETRY_MS);
        },
      },
    );
    const resubscribing = (stream: () => StreamHandle) => (error: SyncForgeError) => {
      this.errorSignal.emit(error);
      if (isTransient(error) || error.code === LAGGING) setTimeout(() => stream().restart(), retryDelay(error));
    };
    const cursors: StreamHandle = this.connection.stream(CursorsDocument, () => ({ roomId }), {
      next: ({ cursors: batch }) => this.cursors.apply(batch),
      error: resubscribing(() => cursors),
    });
    const events: StreamHandle = this.connection.stream(RoomEventsDocument, () => ({ roomId }), {
      next: ({ roomEvents }) => this.eventSignal.emit(roomEvents as RoomEvent),
      error: resubscribing(() => events),
    });
    this.streams.push(presence, cursors, events);
  }

  private sendPresence(): void {
    if (this.left || !this.id) return;
    if (this.presenceSending) {
      this.presenceDirty = true;
      return;
    }
    if (this.statusValue !== "connected") {
      this.presenceDirty = true; // the rejoin carries the current presence
      return;
    }
    this.presenceSending = true;
    this.presenceDirty = false;
    const roomId = this.id;
    this.connection.budget
      .spend("presence")
      .then(() =>
        this.connection.request(UpdatePresenceDocument, { roomId, presence: this.presence.mine, status: this.presence.myStatus }),
      )
      .catch((error: SyncForgeError) => {
        if (!isTransient(error)) {
          this.errorSignal.emit(error); // refused (too large, forbidden): sending it again would not help
          return;
        }
        this.presenceDirty = true;
        return new Promise((resolve) => setTimeout(resolve, retryDelay(error)));
      })
      .finally(() => {
        this.presenceSending = false;
        if (this.presenceDirty) this.sendPresence();
      });
  }

  private moveCursor(position: Parameters<RoomCursors["update"]>[0]): Promise<unknown> {
    if (!this.id || this.statusValue !== "connected") return Promise.resolve(false);
    return this.connection.request(
      MoveCursorDocument,
      {
        roomId: this.id,
        x: position.x ?? null,
        y: position.y ?? null,
        elementId: position.elementId ?? null,
        offset: position.offset ?? null,
        selection: position.selection ?? null,
      },
      { once: true }, // a stale move is not worth re-sending
    );
  }

  private fail(error: SyncForgeError): void {
    this.errorSignal.emit(error);
    if (!this.left) void this.leave(true);
  }

  private refreshSync(): void {
    let status: SyncStatus = "synchronized";
    for (const document of this.documents.values()) if (document.status !== "synchronized") status = "synchronizing";
    if (status === this.syncValue) return;
    this.syncValue = status;
    this.syncSignal.emit(status);
  }

  private setStatus(status: RoomStatus): void {
    if (status === this.statusValue) return;
    if (this.left && status !== "disconnected") return;
    this.statusValue = status;
    this.statusSignal.emit(status);
  }
}
