// Credentials: tokens from getToken or an auth endpoint, and a fresh token after a 4403 close.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import WebSocket from "ws";
import { createClient } from "@syncforge/client";
import { closeAll, env, mintToken, newClient, newRoom, waitFor } from "./helpers.mjs";

after(closeAll);

test("an expired token closes the socket with 4403; the client fetches a fresh one and rejoins", async () => {
  const room = await newRoom();
  let fetched = 0;
  const closes = [];
  class RecordingWebSocket extends WebSocket {
    constructor(...args) {
      super(...args);
      this.addEventListener("close", (event) => closes.push(event.code));
    }
  }
  // Tokens that live 2 s (re-signed by the suite's token service).
  const client = newClient("short-lived", {
    WebSocket: RecordingWebSocket,
    getToken: async () => {
      fetched += 1;
      return (await mintToken("short-lived", { ttlSeconds: 2 })).token;
    },
  });
  const errors = [];
  client.onError((error) => errors.push(error));
  const mine = client.enterRoom(room.slug, { initialPresence: { n: 1 } });
  const watcher = newClient("watcher-4403").enterRoom(room.slug);
  await waitFor(() => mine.status === "connected" && watcher.presence.others.length === 1, "joined");
  const joinedAs = mine.presence.self.connectionId;
  const leaves = [];
  watcher.presence.subscribe((state) => leaves.push(state.others.length));

  await waitFor(() => closes.includes(4403), "the 4403 close", 15_000);
  assert.deepEqual(errors, [], "a token's normal expiry is not an error for the app");
  await waitFor(() => fetched >= 2 && mine.status === "connected", "reconnected with a fresh token", 15_000);
  assert.equal(client.status, "connected");
  // Rejoined within the grace period: the same presence entry, and the watcher never saw it leave.
  assert.equal(mine.presence.self.connectionId, joinedAs);
  assert.ok(!leaves.includes(0), `the watcher saw the user leave: ${leaves}`);
  mine.updatePresence({ n: 2 });
  await waitFor(() => watcher.presence.others[0]?.presence.n === 2, "presence works after the refresh");
});

test("authEndpoint: the client POSTs to the app's endpoint and connects with its token", async () => {
  const room = await newRoom();
  const calls = [];
  const fakeFetch = async (url, init) => {
    calls.push({ url, method: init.method });
    const { token } = await mintToken("via-endpoint");
    return new Response(JSON.stringify({ token }), { status: 200, headers: { "Content-Type": "application/json" } });
  };
  const client = createClient({ url: env.url + "/graphql", publicApiKey: env.publicKey, authEndpoint: "http://app.test/api/token", fetch: fakeFetch, WebSocket });
  const entered = client.enterRoom(room.slug);
  await waitFor(() => entered.status === "connected", "connected through the endpoint");
  assert.deepEqual(calls[0], { url: "http://app.test/api/token", method: "POST" });
  assert.equal(entered.presence.self.userId, "via-endpoint");
  await client.close();
  assert.equal(client.status, "disconnected");
});

test("an endpoint that fails is retried, not fatal", async () => {
  const room = await newRoom();
  let calls = 0;
  const client = newClient("flaky", {
    getToken: async () => {
      calls += 1;
      if (calls < 3) throw new Error("endpoint down");
      return (await mintToken("flaky")).token;
    },
  });
  const entered = client.enterRoom(room.slug);
  await waitFor(() => entered.status === "connected", "connected after the endpoint recovered");
  assert.ok(calls >= 3);
});

test("the README's Node token endpoint (codegen/typescript/examples/token-endpoint.mjs) mints tokens that connect", async () => {
  process.env.SYNCFORGE_SECRET_API_KEY = env.secret;
  process.env.SYNCFORGE_URL = env.url;
  const { server } = await import("../../examples/token-endpoint.mjs");
  await new Promise((resolve) => server.listen(0, "127.0.0.1", resolve));
  const endpoint = `http://127.0.0.1:${server.address().port}/token`;
  try {
    const refused = await fetch(endpoint, { method: "POST" });
    assert.equal(refused.status, 401);
    const room = await newRoom({ slug: `team-42:readme-${Date.now()}` });
    // The browser would send its session cookie; here the pretend auth header.
    const withUser = (url, init) => fetch(url, { ...init, headers: { ...init.headers, "x-demo-user": "readme-user" } });
    const client = createClient({ url: env.wsUrl, publicApiKey: env.publicKey, authEndpoint: endpoint, fetch: withUser, WebSocket });
    const entered = client.enterRoom(room.slug);
    await waitFor(() => entered.status === "connected", "connected with the endpoint's token");
    assert.equal(entered.presence.self.userId, "readme-user");
    await client.close();
  } finally {
    server.close();
  }
});
