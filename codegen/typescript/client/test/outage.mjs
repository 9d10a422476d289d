// Driven by tests/sdk_outage.py: two SDK clients edit one text while the server is killed and
// restarted. Protocol on stdout/stdin (one JSON object per line):
//   -> {"ready": true}            both clients synced and editing
//   <- down                       the server was killed (the clients keep editing, offline)
//   <- up                         the server is back (healthz answers); edits stop now
//   -> {"recoveryMs": ..., ...}   once both clients are connected and every edit is durable
//                                 (freshClientMs: a new client's connect + sync at that moment)
import { createInterface } from "node:readline";
import { backend, closeAll, newClient, newRoom, sleep, waitFor } from "./helpers.mjs";

const EDIT_EVERY_MS = 20;
const print = (value) => process.stdout.write(JSON.stringify(value) + "\n");
const boundary = (text) => {
  const places = [0, ...[...text.toString()].flatMap((c, i) => (c === " " ? [i + 1] : []))];
  return places[Math.floor(Math.random() * places.length)];
};

const room = await newRoom({ documents: ["outage"] });
const sides = ["A", "B"].map((name) => {
  const client = newClient(`outage-${name}`, { reconnect: { minDelayMs: 100, maxDelayMs: 1000 } });
  const entered = client.enterRoom(room.slug);
  const side = { name, client, room: entered, document: entered.getDocument("outage"), edits: 0, offline: 0, statuses: [] };
  client.onStatus((status) => side.statuses.push(status));
  return side;
});
await Promise.all(sides.map((side) => side.document.ready));
await waitFor(() => sides.every((side) => side.room.status === "connected"), "both connected");

let phase = "online";
const editing = sides.map(async (side) => {
  const text = side.document.doc.getText("content");
  while (phase !== "stopped") {
    text.insert(boundary(text), `${side.name}${side.edits} `);
    side.edits += 1;
    if (phase === "down") side.offline += 1;
    await sleep(EDIT_EVERY_MS);
  }
});

const lines = createInterface({ input: process.stdin });
const next = () => new Promise((resolve) => lines.once("line", resolve));
await sleep(300);
print({ ready: true });
await next(); // down
phase = "down";
const downAt = Date.now();
await next(); // up
const upAt = Date.now();
phase = "stopped";
// The baseline: a new client connecting and syncing the same document from scratch, now.
const fresh = (async () => {
  const started = Date.now();
  const entered = newClient("outage-fresh").enterRoom(room.slug);
  const document = entered.getDocument("outage");
  await document.ready;
  await waitFor(() => entered.status === "connected", "the fresh client connected", 30_000);
  return Date.now() - started;
})();
await Promise.all(editing);

const recovered = await Promise.all(
  sides.map(async (side) => {
    await waitFor(
      () => side.client.status === "connected" && side.room.status === "connected" && side.document.status === "synchronized",
      `${side.name} synced again`,
      30_000,
    );
    return Date.now() - upAt;
  }),
);
const texts = sides.map((side) => side.document.doc.getText("content").toString());
await waitFor(
  () => {
    const now = sides.map((side) => side.document.doc.getText("content").toString());
    return now[0] === now[1];
  },
  "the two texts converge",
  30_000,
);
const final = sides[0].document.doc.getText("content").toString();
const words = final.trim().split(/ +/);
const counts = new Map();
for (const word of words) counts.set(word, (counts.get(word) ?? 0) + 1);
const expected = sides.flatMap((side) => Array.from({ length: side.edits }, (_, i) => `${side.name}${i}`));
const { document: stored } = await backend("query($id: UUID!) { document(id: $id) { text } }", { id: room.documents.outage });
print({
  recoveryMs: Math.max(...recovered),
  freshClientMs: await fresh,
  recoveryPerClientMs: recovered,
  outageMs: upAt - downAt,
  edits: sides.map((side) => side.edits),
  offlineEdits: sides.map((side) => side.offline),
  sawOffline: sides.map((side) => side.statuses.includes("reconnecting")),
  missing: expected.filter((word) => !counts.has(word)),
  duplicated: [...counts].filter(([, n]) => n > 1).map(([word]) => word),
  unexpected: words.filter((word) => !expected.includes(word)),
  converged: texts[0] === texts[1] || final === sides[1].document.doc.getText("content").toString(),
  serverMatches: stored.text === final,
});
await closeAll();
process.exit(0);
