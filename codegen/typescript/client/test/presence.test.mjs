// Presence, cursors and broadcast through @syncforge/client against the live server.
import assert from "node:assert/strict";
import { after, test } from "node:test";
import { closeAll, newClient, newRoom, sleep, waitFor } from "./helpers.mjs";

after(closeAll);

test("presence: self, others grouped per user, diffs for joins, updates and leaves", async () => {
  const room = await newRoom();
  const alice = newClient("alice").enterRoom(room.slug, { initialPresence: { mood: "calm" } });
  await waitFor(() => alice.status === "connected", "alice connected");
  assert.equal(alice.presence.self?.userId, "alice");
  assert.deepEqual(alice.presence.self?.presence, { mood: "calm" });
  assert.deepEqual(alice.presence.others, []);

  // Bob in two tabs: two connections, one user.
  const bob1 = newClient("bob").enterRoom(room.id, { initialPresence: { tab: 1 } });
  const bob2 = newClient("bob").enterRoom(room.id, { initialPresence: { tab: 2 } });
  await waitFor(() => alice.presence.others.length === 2, "alice sees both of bob's tabs");
  const bobs = alice.presence.state.users.find((user) => user.userId === "bob");
  assert.equal(bobs?.connections.length, 2);
  assert.equal(bobs?.info.name, "bob");
  assert.deepEqual(new Set(bobs?.connections.map((c) => c.presence.tab)), new Set([1, 2]));
  await waitFor(() => bob1.presence.others.length === 2, "bob's first tab sees alice and his other tab");
  assert.ok(bob1.presence.others.some((other) => other.userId === "bob" && other.presence.tab === 2));
  assert.notEqual(bob1.presence.self?.connectionId, bob2.presence.self?.connectionId);

  // updatePresence merges, shows in self at once and reaches the others.
  alice.updatePresence({ typing: true });
  assert.deepEqual(alice.presence.self?.presence, { mood: "calm", typing: true });
  await waitFor(
    () => bob1.presence.others.find((other) => other.userId === "alice")?.presence.typing === true,
    "bob sees alice typing",
  );
  assert.equal(bob1.presence.others.find((o) => o.userId === "alice")?.presence.mood, "calm");

  const states = [];
  alice.presence.subscribe((state) => states.push(state));
  await bob2.leave();
  assert.equal(bob2.status, "disconnected");
  await waitFor(() => alice.presence.others.length === 1, "alice sees bob's second tab leave");
  assert.equal(alice.presence.others[0]?.presence.tab, 1);
  assert.ok(states.length >= 1, "subscribers were told");
});

test("cursors: moves are throttled to the room's tick; others get the latest position with identity", async () => {
  const room = await newRoom({ cursorTickMs: 100 });
  const mover = newClient("mover").enterRoom(room.slug);
  const watcher = newClient("watcher").enterRoom(room.slug);
  await waitFor(() => mover.status === "connected" && watcher.status === "connected", "both connected");
  await waitFor(() => mover.cursors.tickMs === 100, "the room's tick is known");

  const seen = [];
  watcher.cursors.subscribe((cursors) => {
    const cursor = cursors.find((c) => c.userId === "mover");
    if (cursor) seen.push(cursor.x);
  });
  const started = Date.now();
  for (let i = 1; i <= 100; i++) {
    mover.cursors.update({ x: i, y: i * 2 });
    await sleep(5);
  }
  const elapsed = Date.now() - started;
  await waitFor(() => watcher.cursors.others.find((c) => c.userId === "mover")?.x === 100, "the last position arrives");
  const cursor = watcher.cursors.others.find((c) => c.userId === "mover");
  assert.equal(cursor.y, 200);
  assert.equal(cursor.info.name, "mover");
  assert.equal(cursor.info.color, "#3366ff");
  assert.equal(cursor.idle, false);
  // 100 moves over `elapsed` ms, at most one sent per 100 ms tick (plus the first, at once).
  const distinct = new Set(seen).size;
  assert.ok(distinct <= Math.ceil(elapsed / 100) + 2, `${distinct} positions seen in ${elapsed} ms`);
  assert.ok(distinct >= 2, `only ${distinct} positions seen`);
  assert.deepEqual(mover.cursors.others.filter((c) => c.userId === "mover"), [], "a cursor is not echoed to its mover");
});

test("broadcast: others receive the event, the sender does not; a disconnected room refuses", async () => {
  const room = await newRoom();
  const sender = newClient("sender").enterRoom(room.slug);
  const receiver = newClient("receiver").enterRoom(room.slug);
  await waitFor(() => sender.status === "connected" && receiver.status === "connected", "both connected");
  const got = [];
  const own = [];
  receiver.onEvent((event) => got.push(event));
  sender.onEvent((event) => own.push(event));
  await sleep(100); // the event streams are subscribed
  await sender.broadcast("reaction", { emoji: "🎉" });
  await waitFor(() => got.length === 1, "the reaction arrives");
  assert.equal(got[0].type, "reaction");
  assert.deepEqual(got[0].payload, { emoji: "🎉" });
  assert.equal(got[0].userId, "sender");
  assert.deepEqual(own, []);

  await sender.leave();
  await assert.rejects(sender.broadcast("reaction", {}), (error) => error.code === "DISCONNECTED");
});

test("errors: an unknown room ends in disconnected with NOT_FOUND", async () => {
  const room = newClient("lost").enterRoom("no-such-room-anywhere");
  const errors = [];
  room.onError((error) => errors.push(error));
  await waitFor(() => room.status === "disconnected", "the room gives up");
  assert.equal(errors[0]?.code, "NOT_FOUND");
});

test("entering a room twice answers the same room; it is left after both leaves (React providers share it)", async () => {
  const room = await newRoom();
  const client = newClient("twice");
  const first = client.enterRoom(room.slug);
  const second = client.enterRoom(room.slug);
  assert.equal(first, second);
  const watcher = newClient("twice-watcher").enterRoom(room.slug);
  await waitFor(() => watcher.presence.others.length === 1, "the watcher sees the user");
  await first.leave();
  assert.equal(second.status, "connected", "one leave of two keeps the room");
  await second.leave();
  assert.equal(second.status, "disconnected");
  await waitFor(() => watcher.presence.others.length === 0, "the watcher sees the leave at once");
  assert.throws(() => second.getDocument("anything"), (error) => error.code === "CLOSED");
  const again = client.enterRoom(room.slug);
  assert.notEqual(again, first);
  await waitFor(() => again.status === "connected" && watcher.presence.others.length === 1, "entered again");
});
