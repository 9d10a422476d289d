// Shared by the SDK's Node tests: the live server the suite started (tests/sdk_node.py passes it
// in the environment), rooms and documents made with the secret key, and clients of the SDK.
import WebSocket from "ws";
import { createClient } from "@syncforge/client";

export const env = {
  url: required("SYNCFORGE_URL"),
  wsUrl: required("SYNCFORGE_WS_URL"),
  org: required("SYNCFORGE_ORG"),
  secret: required("SYNCFORGE_SECRET"),
  publicKey: required("SYNCFORGE_PUBLIC"),
  tokens: required("SYNCFORGE_TOKENS"),
};

function required(name) {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run these tests through pytest (tests/test_sdk_typescript.py)`);
  return value;
}

/** A GraphQL request over HTTP with the secret key; throws on errors. */
export async function backend(query, variables = {}) {
  const response = await fetch(`${env.url}/graphql`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${env.secret}` },
    body: JSON.stringify({ query, variables }),
  });
  const body = await response.json();
  if (body.errors) throw new Error(JSON.stringify(body.errors));
  return body.data;
}

let rooms = 0;
const made = [];
// The organization's plan allows 5 active rooms: the oldest (an earlier test's) are deleted.
const ACTIVE_ROOMS = 4;

/** A new room (and, with `documents`, TEXT documents of those slugs in it). */
export async function newRoom({ documents = [], ...input } = {}) {
  while (made.length >= ACTIVE_ROOMS) {
    await backend("mutation($id: UUID!) { deleteRoom(id: $id) }", { id: made.shift() });
  }
  const slug = `sdk-${process.pid}-${Date.now()}-${rooms++}`;
  const { createRoom } = await backend(
    "mutation($org: UUID!, $input: CreateRoomInput!) { createRoom(organizationId: $org, input: $input) { id slug cursorTickMs } }",
    { org: env.org, input: { name: slug, slug, ...input } },
  );
  made.push(createRoom.id);
  const ids = {};
  for (const document of documents) {
    const { createDocument } = await backend(
      "mutation($room: UUID!, $input: CreateDocumentInput!) { createDocument(roomId: $room, input: $input) { id } }",
      { room: createRoom.id, input: { name: document, slug: document } },
    );
    ids[document] = createDocument.id;
  }
  return { ...createRoom, documents: ids };
}

/** An end-user token from the suite's token service (`ttlSeconds` below 60 for short ones). */
export async function mintToken(userId, extra = {}) {
  const response = await fetch(env.tokens, {
    method: "POST",
    headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ userId, name: userId, color: "#3366ff", ...extra }),
  });
  if (!response.ok) throw new Error(`token service: HTTP ${response.status}`);
  return response.json();
}

const clients = new Set();
/** A client of the SDK for `userId` (closed by closeAll). */
export function newClient(userId, options = {}) {
  const client = createClient({
    url: env.wsUrl,
    publicApiKey: env.publicKey,
    WebSocket,
    getToken: () => mintToken(userId),
    ...options,
  });
  clients.add(client);
  return client;
}

export async function closeAll() {
  await Promise.all([...clients].map((client) => client.close()));
  clients.clear();
}

/** Resolve once `predicate()` is truthy (checked every 10 ms); fail after `timeoutMs`. */
export async function waitFor(predicate, what, timeoutMs = 10_000) {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await predicate();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await sleep(10);
  }
}

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
