-- Signed state statements (freeze and rollback defence): each is the marketplace's signed
-- account, at a time, of what no host may run and of the install set. `body` is the signed
-- statement as JSON, exactly as `GET /v1/state` serves it. Only the newest ones are kept.
CREATE TABLE state_statements (
    sequence   INTEGER PRIMARY KEY,
    issued_at  INTEGER NOT NULL,
    expires_at INTEGER NOT NULL,
    body       TEXT NOT NULL
);
