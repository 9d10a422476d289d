"""Security primitives: password hashing, token hashing, JWTs, encryption of stored secrets."""
