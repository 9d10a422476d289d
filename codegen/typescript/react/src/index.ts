/**
 * @syncforge/react: providers, hooks and pre-built components (live cursors, avatar stack)
 * over @syncforge/client.
 *
 * @packageDocumentation
 */
export { AvatarStack, type AvatarStackProps } from "./AvatarStack";
export { RoomProvider, SyncForgeProvider, useClient, useRoom, type RoomProviderProps, type SyncForgeProviderProps } from "./context";
export { CursorLayer, type CursorLayerProps } from "./CursorLayer";
export {
  useBroadcastEvent,
  useCursors,
  useDocument,
  useDocumentAwareness,
  useDocumentStatus,
  useEventListener,
  useMyPresence,
  useOthers,
  useSelf,
  useStatus,
  useSyncedDocument,
  useSyncStatus,
  useUpdateMyPresence,
  useUsers,
  type CursorsState,
} from "./hooks";
export { STYLES, injectStyles } from "./styles";
