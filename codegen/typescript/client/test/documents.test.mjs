// Yjs documents through @syncforge/client: sync, convergence, durable acks, awareness, interop.
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { once } from "node:events";
import { createInterface } from "node:readline";
import { after, test } from "node:test";
import { fileURLToPath } from "node:url";
import * as Y from "yjs";
import { backend, closeAll, env, mintToken, newClient, newRoom, sleep, waitFor } from "./helpers.mjs";

after(closeAll);

/** A random place between two words of `text` (so words stay whole). */
const boundary = (text) => {
  const places = [0, ...[...text.toString()].flatMap((c, i) => (c === " " ? [i + 1] : []))];
  return places[Math.floor(Math.random() * places.length)];
};

const serverText = async (id) => (await backend("query($id: UUID!) { document(id: $id) { text } }", { id })).document.text;

test("two clients editing one text concurrently converge, and the server holds the same text", async () => {
  const room = await newRoom({ documents: ["notes"] });
  const a = newClient("ann").enterRoom(room.slug).getDocument("notes");
  const b = newClient("ben").enterRoom(room.slug).getDocument(room.documents.notes);
  await Promise.all([a.ready, b.ready]);
  assert.equal(a.id, room.documents.notes);
  const statuses = [];
  a.subscribe((status) => statuses.push(status));

  const ta = a.doc.getText("content");
  const tb = b.doc.getText("content");
  for (let i = 0; i < 40; i++) {
    ta.insert(boundary(ta), `a${i} `);
    tb.insert(boundary(tb), `b${i} `);
    if (i % 10 === 9) {
      const at = tb.toString().indexOf(`b${i - 5} `);
      tb.delete(at, `b${i - 5} `.length); // b removes one of its own words
    }
    await sleep(3);
  }
  assert.ok(statuses.includes("synchronizing"), "local edits show as not yet saved");
  await Promise.all([a.whenSynced(), b.whenSynced()]);
  await waitFor(() => ta.toString() === tb.toString(), "the two texts converge");
  assert.equal(a.status, "synchronized");
  assert.equal(a.pendingUpdates, 0);
  const words = new Set(ta.toString().trim().split(/ +/));
  for (let i = 0; i < 40; i++) assert.ok(words.has(`a${i}`), `a${i} is there`);
  for (const gone of [4, 14, 24, 34]) assert.ok(!words.has(`b${gone}`), `b${gone} was deleted`);
  assert.equal(words.size, 80 - 4);
  assert.equal(await serverText(room.documents.notes), ta.toString());
});

test("a Y.Doc with content made before connecting sends it; a late joiner gets everything", async () => {
  const room = await newRoom({ documents: ["draft"] });
  const doc = new Y.Doc();
  doc.getText("content").insert(0, "written offline");
  const first = newClient("early").enterRoom(room.slug).getDocument("draft", { doc });
  assert.equal(first.doc, doc);
  await first.ready;
  await first.whenSynced();
  assert.equal(await serverText(room.documents.draft), "written offline");
  const late = newClient("late").enterRoom(room.slug).getDocument("draft");
  await late.ready;
  assert.equal(late.doc.getText("content").toString(), "written offline");
});

test("awareness: each client sees the other's state through documentAwareness", async () => {
  const room = await newRoom({ documents: ["aw"] });
  const a = newClient("aw-a").enterRoom(room.slug).getDocument("aw");
  const b = newClient("aw-b").enterRoom(room.slug).getDocument("aw");
  await Promise.all([a.ready, b.ready]);
  a.awareness.setLocalStateField("user", { name: "aw-a", color: "#ff0000" });
  b.awareness.setLocalStateField("user", { name: "aw-b", color: "#00ff00" });
  await waitFor(() => b.awareness.getStates().get(a.doc.clientID)?.user?.name === "aw-a", "b sees a");
  await waitFor(() => a.awareness.getStates().get(b.doc.clientID)?.user?.name === "aw-b", "a sees b");
});

test("the SDK and a plain Yjs peer (tests/interop/yjs_peer.mjs) editing together converge", async () => {
  const room = await newRoom({ documents: ["interop"] });
  const id = room.documents.interop;
  const sdk = newClient("sdk-peer").enterRoom(room.slug).getDocument("interop");
  await sdk.ready;
  const { token } = await mintToken("plain-peer");
  const peerPath = fileURLToPath(new URL("../../../../tests/interop/yjs_peer.mjs", import.meta.url));
  const peer = spawn(process.execPath, [peerPath, env.wsUrl, JSON.stringify({ apiKey: env.publicKey, token }), id, "P", "30", "7"], {
    stdio: ["pipe", "pipe", "inherit"],
  });
  const lines = createInterface({ input: peer.stdout });
  const output = [];
  lines.on("line", (line) => output.push(JSON.parse(line)));
  const text = sdk.doc.getText("content");
  for (let i = 0; i < 30; i++) {
    text.insert(Math.floor(Math.random() * (text.length + 1)), `S${i} `);
    await sleep(8);
  }
  await waitFor(() => output.some((line) => line.done), "the peer finished its edits", 30_000);
  await sdk.whenSynced();
  peer.stdin.write("check\n");
  await waitFor(() => output.some((line) => "converged" in line), "the peer's verdict", 30_000);
  const verdict = output.find((line) => "converged" in line);
  await once(peer, "exit");
  assert.equal(verdict.converged, true);
  await waitFor(() => text.toString() === verdict.text, "the SDK has the peer's text");
  // The peer deletes random ranges, so some words are cut; the text the peer ended with is the SDK's.
  assert.ok(/S\d+/.test(verdict.text), "the SDK's edits reached the peer");
  assert.equal(await serverText(id), text.toString());
});

test("a refused update (too large) is reported, the document says error, later edits still reach the server", async () => {
  const room = await newRoom({ documents: ["big"] });
  const handle = newClient("big").enterRoom(room.slug).getDocument("big");
  await handle.ready;
  const errors = [];
  handle.onError((error) => errors.push(error));
  handle.doc.getText("content").insert(0, "x".repeat(600 * 1024));
  await waitFor(() => errors.length > 0, "the refusal");
  assert.equal(errors[0].code, "VALIDATION_ERROR");
  assert.equal(handle.status, "error", "a copy holding what the server refused is never 'synchronized'");
  await assert.rejects(handle.whenSynced(), (error) => error.code === "REFUSED");
  handle.doc.getText("other").insert(0, "small");
  await waitFor(() => handle.pendingUpdates === 0, "the small edit is acknowledged");
  const { document } = await backend('query($id: UUID!) { document(id: $id) { text(root: "other") } }', { id: room.documents.big });
  assert.equal(document.text, "small");
});

test("many queued updates go as few merged requests, none over the server's size limit", async () => {
  const room = await newRoom({ documents: ["bulk"] });
  const handle = newClient("bulk").enterRoom(room.slug).getDocument("bulk");
  await handle.ready;
  const text = handle.doc.getText("content");
  // 1,200 separate 1 KiB edits in one go (as after a long offline period): ~1.2 MB in total.
  for (let i = 0; i < 1200; i++) text.insert(text.length, `${String(i).padStart(4, "0")}${"y".repeat(1020)}`);
  await handle.whenSynced();
  assert.equal(await serverText(room.documents.bulk), text.toString());
  const { document } = await backend("query($id: UUID!) { document(id: $id) { seq } }", { id: room.documents.bulk });
  assert.ok(document.seq < 60, `${document.seq} requests for 1,200 edits`);
});
