import type { RoomPresenceSubscription } from "./generated/graphql";
import { Signal, type Unsubscribe } from "./signal";
import type { JsonObject, Participant, PresenceStatus, PresentUser, UserInfo } from "./types";

type Event = RoomPresenceSubscription["roomPresence"];
type UserFields = Event["users"][number];

/** What {@link RoomPresence.subscribe} listeners receive. */
export interface PresenceState<P extends JsonObject> {
  /** This connection, once the room is joined. */
  readonly self: Participant<P> | null;
  /** Every other connection (other users, and this user's other tabs). */
  readonly others: readonly Participant<P>[];
  /** Everyone present, grouped per user (you included). */
  readonly users: readonly PresentUser<P>[];
}

/**
 * Who is in the room. Applies the server's SYNC and DIFF events to a per-user map; `self` is this
 * connection (the server tells its id in each SYNC). Snapshots are immutable: a new object per change.
 */
export class RoomPresence<P extends JsonObject = JsonObject> {
  private readonly byUser = new Map<string, { info: UserInfo; connections: Map<string, Participant<P>> }>();
  private selfId: string | null = null;
  private snapshot: PresenceState<P> = { self: null, others: [], users: [] };
  // The last `self` and what it was made of: unchanged inputs keep the same object (fewer renders).
  private selfMadeOf: { base: Participant<P>; presence: P; status: PresenceStatus } | null = null;
  private readonly changed = new Signal<PresenceState<P>>();

  /** @internal Made by the room. @param local this connection's presence and status as last set (shown in `self` at once). */
  constructor(private local: { presence: P; status: PresenceStatus }, private readonly onLocalChange: () => void) {}

  /** The current state: self, others and users. */
  get state(): PresenceState<P> {
    return this.snapshot;
  }

  /** This connection (null until joined). */
  get self(): Participant<P> | null {
    return this.snapshot.self;
  }

  /** Every other connection present. */
  get others(): readonly Participant<P>[] {
    return this.snapshot.others;
  }

  /** This connection's presence as last set locally. */
  get mine(): P {
    return this.local.presence;
  }

  /** This connection's status as last set locally. */
  get myStatus(): PresenceStatus {
    return this.local.status;
  }

  /** Call `listener` with the new state after every change. */
  subscribe(listener: (state: PresenceState<P>) => void): Unsubscribe {
    return this.changed.subscribe(listener);
  }

  /** Merge `patch` into this connection's presence (others see it within a tick). */
  update(patch: Partial<P>, status?: PresenceStatus): void {
    this.local = { presence: { ...this.local.presence, ...patch }, status: status ?? this.local.status };
    this.rebuild();
    this.onLocalChange();
  }

  /** @internal Apply one event of the `roomPresence` stream. */
  apply(event: Event): void {
    if (event.kind === "SYNC") {
      this.byUser.clear();
      this.selfId = event.connectionId ?? this.selfId;
      for (const user of event.users) this.put(user);
    } else {
      for (const user of event.joins) this.put(user);
      for (const user of event.updates) this.put(user);
      for (const user of event.leaves) {
        const known = this.byUser.get(user.userId);
        if (!known) continue;
        for (const connection of user.connections) known.connections.delete(connection.connectionId);
        if (known.connections.size === 0) this.byUser.delete(user.userId);
      }
    }
    this.rebuild();
  }

  /** @internal Forget everyone (the room was left). */
  clear(): void {
    this.byUser.clear();
    this.selfId = null;
    this.rebuild();
  }

  private put(user: UserFields): void {
    const info = (user.info ?? {}) as UserInfo;
    let known = this.byUser.get(user.userId);
    if (!known) this.byUser.set(user.userId, (known = { info, connections: new Map() }));
    known.info = info;
    for (const connection of user.connections) {
      known.connections.set(connection.connectionId, {
        connectionId: connection.connectionId,
        userId: user.userId,
        info,
        presence: (connection.presence ?? {}) as P,
        status: connection.status,
        joinedAt: connection.joinedAt,
      });
    }
  }

  private rebuild(): void {
    const users: PresentUser<P>[] = [];
    const others: Participant<P>[] = [];
    let self: Participant<P> | null = null;
    for (const [userId, { info, connections }] of this.byUser) {
      const list: Participant<P>[] = [];
      for (const participant of connections.values()) {
        if (participant.connectionId === this.selfId) {
          // Local changes show at once, before the server echoes them.
          const made = this.selfMadeOf;
          self =
            made && made.base === participant && made.presence === this.local.presence && made.status === this.local.status
              ? this.snapshot.self
              : { ...participant, presence: this.local.presence, status: this.local.status };
          this.selfMadeOf = { base: participant, presence: this.local.presence, status: this.local.status };
          list.push(self as Participant<P>);
        } else {
          list.push(participant);
          others.push(participant);
        }
      }
      users.push({ userId, info, connections: list });
    }
    this.snapshot = { self, others, users };
    this.changed.emit(this.snapshot);
  }
}
