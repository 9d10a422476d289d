import type { CursorsSubscription } from "./generated/graphql";
import { Signal, type Unsubscribe } from "./signal";
import type { Cursor, CursorPosition, Json, UserInfo } from "./types";

type Batch = CursorsSubscription["cursors"];

/**
 * Others' cursors (one batch per room tick from the server) and this connection's own moves,
 * sent at most once per tick and never while the previous move is unanswered.
 */
export class RoomCursors {
  private readonly byConnection = new Map<string, Cursor>();
  private list: readonly Cursor[] = [];
  private readonly changed = new Signal<readonly Cursor[]>();
  private latest: CursorPosition | null = null;
  private last: CursorPosition | null = null;
  private timer: ReturnType<typeof setTimeout> | null = null;
  private inflight = false;
  private lastSent = 0;

  /**
   * @internal Made by the room.
   * @param send sends one move (`moveCursor`); resolves when the server answered.
   * @param tickMs the room's cursor tick: moves are sent at most this often.
   * @param take takes one move from the connection's budget: 0, or the milliseconds to wait.
   */
  constructor(
    private readonly send: (position: CursorPosition) => Promise<unknown>,
    public tickMs: number,
    private readonly take: () => number = () => 0,
  ) {}

  /** Others' latest cursors (idle ones included, flagged). */
  get others(): readonly Cursor[] {
    return this.list;
  }

  /** Call `listener` with the others' cursors after every batch. */
  subscribe(listener: (cursors: readonly Cursor[]) => void): Unsubscribe {
    return this.changed.subscribe(listener);
  }

  /** Move this connection's cursor; only the latest position of each tick is sent. */
  update(position: CursorPosition): void {
    this.latest = this.last = position;
    this.schedule();
  }

  /** @internal Apply one batch of the `cursors` stream. */
  apply(batch: Batch): void {
    if (batch.full) this.byConnection.clear();
    for (const id of batch.removed) this.byConnection.delete(id);
    for (const cursor of batch.cursors) {
      this.byConnection.set(cursor.connectionId, {
        connectionId: cursor.connectionId,
        userId: cursor.userId,
        info: (cursor.info ?? {}) as UserInfo,
        x: cursor.x,
        y: cursor.y,
        elementId: cursor.elementId,
        offset: (cursor.offset ?? null) as Json,
        selection: (cursor.selection ?? null) as Json,
        idle: cursor.idle,
        movedAt: cursor.movedAt,
      });
    }
    this.list = [...this.byConnection.values()];
    this.changed.emit(this.list);
  }

  /** @internal Forget every cursor and the unsent move (the room was left). */
  clear(): void {
    if (this.timer) clearTimeout(this.timer);
    this.timer = null;
    this.latest = this.last = null;
    this.byConnection.clear();
    this.list = [];
    this.changed.emit(this.list);
  }

  /** @internal Send the latest move again after a reconnection (the server forgot it with the old socket). */
  resend(): void {
    if (this.last) this.update(this.last);
  }

  private schedule(wait = Math.max(0, this.lastSent + this.tickMs - Date.now())): void {
    if (this.timer || this.inflight) return;
    this.timer = setTimeout(() => {
      this.timer = null;
      this.flush();
    }, wait);
  }

  private flush(): void {
    const position = this.latest;
    if (!position) return;
    const wait = this.take(); // the connection's moves per second, shared by its rooms
    if (wait > 0) return this.schedule(wait);
    this.latest = null;
    this.inflight = true;
    this.lastSent = Date.now();
    this.send(position)
      .catch(() => {
        // A refused or lost move is not retried: the next move supersedes it.
      })
      .finally(() => {
        this.inflight = false;
        if (this.latest) this.schedule();
      });
  }
}
