// A real Yjs peer in Node (npm `yjs` + `graphql-ws`) for tests/test_document_interop.py.
//
//   node yjs_peer.mjs <ws url> <connection_init JSON> <document id> <name> <edits> <seed>
//
// Syncs the document, subscribes to everyone else's updates, makes <edits> random edits to the
// Y.Text "content" (inserts and deletes, while the others edit too), sending each as an update.
// When every edit is acknowledged it prints {"done": ...} and waits for a line on stdin; then it
// checks that it has every update the server has (the stream brought them all: its state vector
// equals the server's), and prints {"text", "converged"} and exits.
import * as readline from "node:readline";
import { createClient } from "graphql-ws";
import WebSocket from "ws";
import * as Y from "yjs";

const [url, initJson, documentId, name, editsArg, seedArg] = process.argv.slice(2);
const edits = Number(editsArg);
let seed = Number(seedArg);
const random = () => ((seed = (seed * 1103515245 + 12345) % 2147483648) / 2147483648);
const b64 = (bytes) => Buffer.from(bytes).toString("base64");
const unb64 = (text) => new Uint8Array(Buffer.from(text, "base64"));

const client = createClient({ url, webSocketImpl: WebSocket, connectionParams: JSON.parse(initJson), lazy: false });
const request = (query, variables) =>
  new Promise((resolve, reject) => {
    let result;
    client.subscribe({ query, variables }, {
      next: (value) => { result = value; },
      error: reject,
      complete: () => (result?.errors ? reject(new Error(JSON.stringify(result.errors))) : resolve(result.data)),
    });
  });

const SYNC = "query($id: UUID!, $sv: String) { documentSync(documentId: $id, stateVector: $sv) { update seq stateVector } }";
const APPLY = "mutation($id: UUID!, $u: String!, $o: String) { applyDocumentUpdate(documentId: $id, update: $u, origin: $o) { seq } }";
const UPDATES = "subscription($id: UUID!, $since: Int) { documentUpdates(documentId: $id, since: $since) { seq update } }";

const doc = new Y.Doc();
const text = doc.getText("content");
const first = (await request(SYNC, { id: documentId })).documentSync;
Y.applyUpdate(doc, unb64(first.update), "server");

let received = 0;
client.subscribe({ query: UPDATES, variables: { id: documentId, since: first.seq } }, {
  next: ({ data, errors }) => {
    if (errors) { console.error(JSON.stringify(errors)); process.exit(3); }
    Y.applyUpdate(doc, unb64(data.documentUpdates.update), "server");
    received += 1;
  },
  error: (error) => { console.error(String(error)); process.exit(3); },
  complete: () => {},
});

const pending = [];
doc.on("update", (update, origin) => {
  if (origin !== "server") pending.push(request(APPLY, { id: documentId, u: b64(update), o: name }));
});

for (let i = 0; i < edits; i++) {
  const length = text.length;
  if (length > 10 && random() < 0.25) {
    const at = Math.floor(random() * (length - 3));
    text.delete(at, 1 + Math.floor(random() * 3));
  } else {
    text.insert(Math.floor(random() * (length + 1)), `${name}${i} `);
  }
  await new Promise((resolve) => setTimeout(resolve, 5 + random() * 15));
}
const acks = await Promise.all(pending);
console.log(JSON.stringify({ done: name, acked: acks.length, received }));

const lines = readline.createInterface({ input: process.stdin });
await new Promise((resolve) => lines.once("line", resolve));
// Give the stream a moment to bring the last updates of the others.
const same = (a, b) => a.size === b.size && [...a].every(([client, clock]) => b.get(client) === clock);
let converged = false;
for (let attempt = 0; attempt < 50 && !converged; attempt++) {
  const sync = (await request(SYNC, { id: documentId })).documentSync;
  converged = same(Y.decodeStateVector(unb64(sync.stateVector)), Y.decodeStateVector(Y.encodeStateVector(doc)));
  if (!converged) await new Promise((resolve) => setTimeout(resolve, 100));
}
console.log(JSON.stringify({ text: text.toString(), converged }));
await client.dispose();
process.exit(0);
