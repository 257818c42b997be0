-- Signed state statements (freeze and rollback defence): each is the marketplace's signed
-- account, at a time, of what no host may run and of the install set. `body` is the signed
-- statement as JSON, exactly as `GET /v1/state` serves it. Only the newest ones are kept.
CREATE TABLE state_statements (
    sequence   BIGINT PRIMARY KEY,
    issued_at  BIGINT NOT NULL,
    expires_at BIGINT NOT NULL,
    body       TEXT NOT NULL
);

-- A new statement reaches every host process at once: `<schema>|statement||<sequence>`.
CREATE OR REPLACE FUNCTION plinth_notify_change() RETURNS trigger AS $$
DECLARE
    row_data RECORD;
    what TEXT;
    first TEXT := '';
    second TEXT := '';
BEGIN
    IF TG_OP = 'DELETE' THEN
        row_data := OLD;
    ELSE
        row_data := NEW;
    END IF;
    IF TG_TABLE_NAME = 'installs' THEN
        what := 'install';
        first := row_data.tenant_id;
        second := row_data.plugin_id;
    ELSIF TG_TABLE_NAME = 'tenants' THEN
        what := 'tenant';
        first := row_data.id;
    ELSIF TG_TABLE_NAME = 'plans' THEN
        what := 'plan';
        second := row_data.name;
    ELSIF TG_TABLE_NAME = 'plugins' THEN
        what := 'plugin';
        second := row_data.id;
    ELSIF TG_TABLE_NAME = 'state_statements' THEN
        what := 'statement';
        second := row_data.sequence::text;
    ELSE
        what := 'access';
    END IF;
    PERFORM pg_notify(
        'plinth_changes',
        current_schema() || '|' || what || '|' || first || '|' || second
    );
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER state_statements_issued AFTER INSERT ON state_statements
    FOR EACH ROW EXECUTE FUNCTION plinth_notify_change();
