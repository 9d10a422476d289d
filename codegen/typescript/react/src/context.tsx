import { createContext, useContext, useEffect, useState, type ReactNode } from "react";
import type { Client, EnterRoomOptions, JsonObject, Room } from "@syncforge/client";

const ClientContext = createContext<Client | null>(null);
const RoomContext = createContext<Room<JsonObject> | null>(null);

/** Props of {@link SyncForgeProvider}. */
export interface SyncForgeProviderProps {
  /** The client from `createClient` (create it once, outside your components). */
  client: Client;
  /** Your app. */
  children?: ReactNode;
}

/** Makes a SyncForge client available to every hook below it. */
export function SyncForgeProvider({ client, children }: SyncForgeProviderProps): JSX.Element {
  return <ClientContext.Provider value={client}>{children}</ClientContext.Provider>;
}

/** Props of {@link RoomProvider}. */
export interface RoomProviderProps<P extends JsonObject> extends EnterRoomOptions<P> {
  /** The room's id or slug. */
  id: string;
  /** What the room contains. */
  children?: ReactNode;
}

/** Enters the room `id` while mounted (leaves it on unmount) and provides it to the room hooks. */
export function RoomProvider<P extends JsonObject = JsonObject>({ id, children, ...options }: RoomProviderProps<P>): JSX.Element {
  const client = useClient();
  const [room, setRoom] = useState<Room<P> | null>(null);
  useEffect(() => {
    const entered = client.enterRoom<P>(id, options);
    setRoom(entered);
    return () => {
      void entered.leave();
    };
    // Entering again only when the room changes: initial presence is initial.
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [client, id]);
  if (!room) return <></>;
  return <RoomContext.Provider value={room as unknown as Room<JsonObject>}>{children}</RoomContext.Provider>;
}

/** The client of the nearest {@link SyncForgeProvider}. */
export function useClient(): Client {
  const client = useContext(ClientContext);
  if (!client) throw new Error("useClient: no <SyncForgeProvider client={...}> above this component");
  return client;
}

/** The room of the nearest {@link RoomProvider}. */
export function useRoom<P extends JsonObject = JsonObject>(): Room<P> {
  const room = useContext(RoomContext);
  if (!room) throw new Error("useRoom: no <RoomProvider id=...> above this component");
  return room as unknown as Room<P>;
}
