"""The live demo at /demo and developer onboarding (`syncforge dev-keys`).

- seed.py: the demo organization, room, document and publishable key, made on first start.
- visitor_tokens.py: end-user tokens for demo visitors, limited to the demo's rooms.
- routes.py: GET /demo (the page), GET /demo/config, POST /demo/token, the /demo-assets mount.
- landing.py: the page at / that leads a newcomer to GraphiQL and the demo.
- derived_keys.py: API keys the server can show again although it stores only their hash.
- dev_keys.py: the development organization and keys `syncforge dev-keys` prints.

The browser side (a React app) is built by `npm ci && npm run build` into static/ (build output).
"""
