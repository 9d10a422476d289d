// Your backend's token endpoint (Node ≥ 18, no framework): sign your user in your own way, then
// mint their SyncForge token with your secret key. The browser's createClient({ authEndpoint })
// POSTs here. Run: SYNCFORGE_SECRET_API_KEY=sk_live_... node token-endpoint.mjs
import { createServer } from "node:http";

const SYNCFORGE = process.env.SYNCFORGE_URL ?? "http://127.0.0.1:8000";
const MINT = `mutation($input: CreateEndUserTokenInput!) { createEndUserToken(input: $input) { token expiresAt } }`;

export const server = createServer(async (request, response) => {
  const userId = request.headers["x-demo-user"]; // pretend auth: use your session here
  if (request.method !== "POST" || !userId) return response.writeHead(401).end();
  const answer = await fetch(`${SYNCFORGE}/graphql`, {
    method: "POST",
    headers: { "Content-Type": "application/json", Authorization: `Bearer ${process.env.SYNCFORGE_SECRET_API_KEY}` },
    body: JSON.stringify({ query: MINT, variables: { input: { userId, userInfo: { name: userId }, permissions: [{ room: "team-42:*", access: ["read", "write", "presence"] }] } } }),
  }).then((r) => r.json());
  response.writeHead(answer.data ? 200 : 502, { "Content-Type": "application/json" });
  response.end(JSON.stringify(answer.data?.createEndUserToken ?? { error: answer.errors?.[0]?.message }));
});

if (import.meta.url === `file://${process.argv[1]}`) server.listen(Number(process.env.PORT ?? 3001));
