// A Y.Doc kept in sync with one SyncForge document.
//
// - Load: `documentSync` with the local state vector (sync step 2 both ways: what the server has
//   that we lack is applied, what we have that it lacks is queued as a local update).
// - Live: `documentUpdates` from the last seq seen; after a reconnection `since` replays what was
//   missed (or the whole document, `full`).
// - Local edits queue up and are sent merged (Y.mergeUpdates), one request at a time: offline edits
//   become one update on reconnect. An update leaves the queue only when acknowledged (durable);
//   a lost answer is re-sent, which Yjs makes harmless (an update applied twice changes nothing).
// - Awareness (y-protocols) goes through `updateAwareness` / `documentAwareness`.
import * as Y from "yjs";
import { Awareness, applyAwarenessUpdate, encodeAwarenessUpdate, removeAwarenessStates } from "y-protocols/awareness";
import { fromBase64, toBase64 } from "./base64";
import type { Connection, StreamHandle } from "./connection";
import { SyncForgeError, isTransient } from "./errors";
import {
  ApplyDocumentUpdateDocument,
  DocumentAwarenessDocument,
  DocumentByIdDocument,
  DocumentBySlugDocument,
  DocumentSyncDocument,
  DocumentUpdatesDocument,
  UpdateAwarenessDocument,
} from "./generated/graphql";
import { Signal, type Unsubscribe } from "./signal";
import type { SyncStatus } from "./types";

/**
 * loading (first sync), then synchronizing (local edits not yet durable) or synchronized;
 * error once the server refused a local change (see `onError`): this copy holds what the
 * server does not, and it is never reported as synchronized again.
 */
export type DocumentStatus = "loading" | SyncStatus | "error";

const RETRY_DELAY_MS = 500;
// Queued updates are merged into requests of at most this many bytes (the server takes 512 KiB).
const MAX_MERGED_BYTES = 256 * 1024;
const AWARENESS_INTERVAL_MS = 50;
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** Options of {@link Room.getDocument}. */
export interface DocumentOptions {
  /** Keep this Y.Doc in sync instead of a new one (it may already hold content). */
  doc?: Y.Doc;
}

/** A Y.Doc and its awareness, kept in sync with a SyncForge document. */
export class SyncedDocument {
  /** The Yjs document: edit it as usual; every change is sent and acknowledged. */
  readonly doc: Y.Doc;
  /** y-protocols awareness (cursors, selections, user) shared with the document's other clients. */
  readonly awareness: Awareness;
  /** Resolves once the first sync is done (the document holds the server's content). */
  readonly ready: Promise<void>;
  /** The document's id, once resolved from its slug. */
  id: string | null = null;

  private statusValue: DocumentStatus = "loading";
  private readonly statusChanged = new Signal<DocumentStatus>();
  private readonly errorSignal = new Signal<SyncForgeError>();
  private queue: Uint8Array[] = [];
  private inflight: Uint8Array | null = null;
  private retry: ReturnType<typeof setTimeout> | null = null;
  private loaded = false;
  private destroyed = false;
  private refused = false;
  // Highest seq such that every update up to it is applied here (ours via acks, others' via the stream).
  private watermark = 0;
  private readonly seen = new Set<number>();
  private updates: StreamHandle | null = null;
  private awarenessStream: StreamHandle | null = null;
  private awarenessTimer: ReturnType<typeof setTimeout> | null = null;
  private awarenessInflight = false;
  private awarenessDirty = false;
  private readonly unsubscribes: Unsubscribe[] = [];
  private readonly whenDestroyed: (() => void)[] = [];
  private readyCallbacks!: { resolve: () => void; reject: (error: SyncForgeError) => void };

  /** @internal Documents are made by {@link Room.getDocument}. */
  constructor(
    private readonly connection: Connection,
    private readonly roomId: () => Promise<string>,
    private readonly slugOrId: string,
    options: DocumentOptions = {},
  ) {
    this.doc = options.doc ?? new Y.Doc();
    this.awareness = new Awareness(this.doc);
    this.ready = new Promise((resolve, reject) => {
      this.readyCallbacks = { resolve, reject };
    });
    this.ready.catch(() => {});
    this.doc.on("update", this.onLocalUpdate);
    this.awareness.on("update", this.onAwarenessUpdate);
    this.unsubscribes.push(
      connection.connected.subscribe((reconnection) => {
        if (!reconnection || !this.loaded) return;
        this.flush();
        this.awarenessDirty = true; // the server dropped our awareness with the old socket
        this.sendAwareness();
      }),
    );
    void this.load();
  }

  /** loading, synchronizing (local edits not yet acknowledged) or synchronized. */
  get status(): DocumentStatus {
    return this.statusValue;
  }

  /** Local updates not yet acknowledged by the server. */
  get pendingUpdates(): number {
    return this.queue.length + (this.inflight ? 1 : 0);
  }

  /** Call `listener` on every status change. */
  subscribe(listener: (status: DocumentStatus) => void): Unsubscribe {
    return this.statusChanged.subscribe(listener);
  }

  /** Call `listener` with errors that stop the document (NOT_FOUND, FORBIDDEN) or drop an update. */
  onError(listener: (error: SyncForgeError) => void): Unsubscribe {
    return this.errorSignal.subscribe(listener);
  }

  /** Resolves when every local update so far is durable; rejects if one is refused or on destroy. */
  whenSynced(): Promise<void> {
    if (this.statusValue === "synchronized") return Promise.resolve();
    if (this.statusValue === "error") return Promise.reject(new SyncForgeError("REFUSED", "a local change was refused"));
    return new Promise((resolve, reject) => {
      const stop = this.subscribe((status) => {
        if (status === "synchronized" || status === "error") {
          stop();
          if (status === "synchronized") resolve();
          else reject(new SyncForgeError("REFUSED", "a local change was refused"));
        }
      });
      this.whenDestroyed.push(() => reject(new SyncForgeError("CLOSED", "the document was destroyed")));
    });
  }

  /** Stop syncing (the Y.Doc stays usable locally). */
  destroy(): void {
    if (this.destroyed) return;
    this.destroyed = true;
    this.doc.off("update", this.onLocalUpdate);
    this.awareness.off("update", this.onAwarenessUpdate);
    if (this.loaded && this.id && this.connection.status === "connected") {
      // Tell the others at once that this client's cursor and selection are gone.
      removeAwarenessStates(this.awareness, [this.doc.clientID], this);
      const update = toBase64(encodeAwarenessUpdate(this.awareness, [this.doc.clientID]));
      this.connection.request(UpdateAwarenessDocument, { documentId: this.id, update }, { once: true }).catch(() => {});
    }
    for (const reject of this.whenDestroyed.splice(0)) reject();
    this.updates?.stop();
    this.awarenessStream?.stop();
    if (this.retry) clearTimeout(this.retry);
    if (this.awarenessTimer) clearTimeout(this.awarenessTimer);
    for (const unsubscribe of this.unsubscribes) unsubscribe();
    this.awareness.destroy();
    this.statusChanged.clear();
  }

  private async load(): Promise<void> {
    try {
      const id = await this.resolveId();
      if (this.destroyed) return;
      this.id = id;
      const { documentSync } = await this.connection.request(DocumentSyncDocument, {
        documentId: id,
        stateVector: toBase64(Y.encodeStateVector(this.doc)),
      });
      if (this.destroyed) return;
      Y.applyUpdate(this.doc, fromBase64(documentSync.update), this);
      this.watermark = documentSync.seq;
      // What this Y.Doc had that the server lacks (content made before connecting).
      const missing = Y.encodeStateAsUpdate(this.doc, fromBase64(documentSync.stateVector));
      if (hasContent(missing)) this.queue.push(missing);
      this.updates = this.connection.stream(
        DocumentUpdatesDocument,
        () => ({ documentId: id, since: this.watermark }),
        {
          next: ({ documentUpdates: event }) => {
            // Counted first: an app's observer that throws in applyUpdate must not stall `since`.
            if (event.full) this.jumpTo(event.seq);
            else this.markSeen(event.seq);
            Y.applyUpdate(this.doc, fromBase64(event.update), this);
          },
          error: (error) => this.streamFailed(error, () => this.updates?.restart()),
        },
      );
      this.awarenessStream = this.connection.stream(DocumentAwarenessDocument, () => ({ documentId: id }), {
        next: ({ documentAwareness }) => applyAwarenessUpdate(this.awareness, fromBase64(documentAwareness.update), this),
        error: (error) => this.streamFailed(error, () => this.awarenessStream?.restart()),
      });
      this.loaded = true;
      this.flush();
      this.awarenessDirty = true;
      this.sendAwareness();
      this.refreshStatus();
      this.readyCallbacks.resolve();
    } catch (error) {
      const failure = error instanceof SyncForgeError ? error : new SyncForgeError("INTERNAL_ERROR", String(error));
      if (isTransient(failure) && !this.destroyed) {
        this.retry = setTimeout(() => void this.load(), RETRY_DELAY_MS);
        return;
      }
      this.errorSignal.emit(failure);
      this.readyCallbacks.reject(failure);
    }
  }

  private async resolveId(): Promise<string> {
    if (this.id) return this.id;
    if (UUID.test(this.slugOrId)) {
      return (await this.connection.request(DocumentByIdDocument, { id: this.slugOrId })).document.id;
    }
    const roomId = await this.roomId();
    return (await this.connection.request(DocumentBySlugDocument, { roomId, slug: this.slugOrId })).document.id;
  }

  private streamFailed(error: SyncForgeError, restart: () => void): void {
    if (this.destroyed) return;
    if (isTransient(error)) {
      // DOCUMENT_UNAVAILABLE and the like: subscribe again from the last seq seen.
      setTimeout(restart, RETRY_DELAY_MS);
      return;
    }
    this.errorSignal.emit(error); // NOT_FOUND (trashed), FORBIDDEN (rights taken away)
  }

  private readonly onLocalUpdate = (update: Uint8Array, origin: unknown): void => {
    if (origin === this) return;
    this.queue.push(update);
    this.refreshStatus();
    this.flush();
  };

  private flush(): void {
    if (!this.loaded || this.destroyed || this.inflight || this.retry || this.queue.length === 0) return;
    if (this.connection.status !== "connected") return; // sent on reconnect
    const wait = this.connection.budget.take("documentUpdates");
    if (wait > 0) {
      this.retry = setTimeout(() => {
        this.retry = null;
        this.flush();
      }, wait);
      return;
    }
    // As many queued updates as fit in one request, merged (offline edits go as few requests).
    let count = 0;
    let bytes = 0;
    while (count < this.queue.length && (count === 0 || bytes + (this.queue[count] as Uint8Array).length <= MAX_MERGED_BYTES)) {
      bytes += (this.queue[count] as Uint8Array).length;
      count += 1;
    }
    const batch = this.queue.splice(0, count);
    const merged = batch.length === 1 ? (batch[0] as Uint8Array) : Y.mergeUpdates(batch);
    this.inflight = merged;
    const id = this.id as string;
    this.connection
      .request(ApplyDocumentUpdateDocument, { documentId: id, update: toBase64(merged), origin: String(this.doc.clientID) })
      .then(({ applyDocumentUpdate }) => {
        this.inflight = null;
        this.markSeen(applyDocumentUpdate.seq);
        this.refreshStatus();
        this.flush();
      })
      .catch((error: SyncForgeError) => {
        this.inflight = null;
        if (isTransient(error)) {
          this.queue.unshift(merged); // not acknowledged: it goes again, first
          const delay = error.code === "DISCONNECTED" ? 0 : Math.max(RETRY_DELAY_MS, (error.retryAfter ?? 0) * 1000);
          if (this.retry) clearTimeout(this.retry);
          this.retry = setTimeout(() => {
            this.retry = null;
            this.flush();
          }, delay);
        } else {
          this.refused = true; // too large, forbidden: it cannot succeed later
          this.errorSignal.emit(error);
          this.flush();
        }
        this.refreshStatus();
      });
  }

  private markSeen(seq: number): void {
    if (seq <= this.watermark) return;
    this.seen.add(seq);
    while (this.seen.delete(this.watermark + 1)) this.watermark += 1;
  }

  private jumpTo(seq: number): void {
    if (seq > this.watermark) this.watermark = seq;
    for (const known of this.seen) if (known <= this.watermark) this.seen.delete(known);
    while (this.seen.delete(this.watermark + 1)) this.watermark += 1;
  }

  private readonly onAwarenessUpdate = (
    { added, updated, removed }: { added: number[]; updated: number[]; removed: number[] },
    origin: unknown,
  ): void => {
    if (origin === this) return;
    const mine = this.doc.clientID;
    if (![...added, ...updated, ...removed].includes(mine)) return;
    this.awarenessDirty = true;
    this.sendAwareness();
  };

  private sendAwareness(): void {
    if (!this.loaded || this.destroyed || this.awarenessTimer || this.awarenessInflight || !this.awarenessDirty) return;
    const wait = Math.max(AWARENESS_INTERVAL_MS, this.connection.budget.take("awareness"));
    this.awarenessTimer = setTimeout(() => {
      this.awarenessTimer = null;
      if (this.destroyed || this.connection.status !== "connected") return;
      this.awarenessDirty = false;
      this.awarenessInflight = true;
      const update = encodeAwarenessUpdate(this.awareness, [this.doc.clientID]);
      this.connection
        .request(UpdateAwarenessDocument, { documentId: this.id as string, update: toBase64(update) })
        .catch(() => {
          this.awarenessDirty = true;
        })
        .finally(() => {
          this.awarenessInflight = false;
          this.sendAwareness();
        });
    }, wait);
  }

  private refreshStatus(): void {
    const status: DocumentStatus = this.refused
      ? "error"
      : !this.loaded
        ? "loading"
        : this.pendingUpdates > 0
          ? "synchronizing"
          : "synchronized";
    if (status === this.statusValue) return;
    this.statusValue = status;
    this.statusChanged.emit(status);
  }
}

/** A Yjs v1 update that holds something (an empty one is two zero bytes). */
function hasContent(update: Uint8Array): boolean {
  return update.length > 2;
}
