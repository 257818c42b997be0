-- Several processes on one database learn of each other's changes through LISTEN/NOTIFY:
-- every change another process must react to (a host re-reading an install, a cache
-- dropping an entry) notifies channel `plinth_changes` with
-- `<schema>|<what>|<tenant id>|<plugin id or plan name>`. Triggers make it impossible for a
-- code path to forget; the notification is delivered when the transaction commits, never
-- for one that rolls back.

CREATE FUNCTION plinth_notify_change() RETURNS trigger AS $$
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

CREATE TRIGGER installs_changed AFTER INSERT OR UPDATE OR DELETE ON installs
    FOR EACH ROW EXECUTE FUNCTION plinth_notify_change();

-- Tenants' plans, deletion and restoration (not renames), and purges.
CREATE TRIGGER tenants_changed AFTER UPDATE ON tenants
    FOR EACH ROW WHEN (OLD.plan IS DISTINCT FROM NEW.plan
        OR OLD.deleted_at IS DISTINCT FROM NEW.deleted_at)
    EXECUTE FUNCTION plinth_notify_change();
CREATE TRIGGER tenants_purged AFTER DELETE ON tenants
    FOR EACH ROW EXECUTE FUNCTION plinth_notify_change();

CREATE TRIGGER plans_changed AFTER UPDATE ON plans
    FOR EACH ROW EXECUTE FUNCTION plinth_notify_change();

-- Blocking a plugin disables it everywhere; install counters and listings do not matter here.
CREATE TRIGGER plugins_blocked AFTER UPDATE ON plugins
    FOR EACH ROW WHEN (OLD.blocked_at IS DISTINCT FROM NEW.blocked_at)
    EXECUTE FUNCTION plinth_notify_change();

-- Revoked (or restored) API keys and sessions.
CREATE TRIGGER tokens_revoked AFTER UPDATE ON tokens
    FOR EACH ROW WHEN (OLD.revoked_at IS DISTINCT FROM NEW.revoked_at)
    EXECUTE FUNCTION plinth_notify_change();
