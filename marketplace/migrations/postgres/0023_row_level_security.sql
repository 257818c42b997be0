-- Row-level security (issue 24): every table with a `tenant_id` (and `tenants` by its `id`)
-- gets the policy `tenant_rows`. A row passes when the session works across tenants
-- (`plinth.scope` = 'all', set on every connection of the marketplace's pool) or when the
-- transaction is scoped to the row's tenant (`Db::begin_tenant`: `plinth.scope` = 'tenant',
-- `plinth.tenant` = its id). FORCE makes the policies hold for the tables' owner too.
-- A table without a `tenant_id` whose rows belong to a scoped table's row (a single-column
-- foreign key: an event's results, a transaction's postings) gets a policy that follows it.
-- The audit log is exempt: it is one hash chain across tenants. A table added later must
-- add its own policy; a test lists the tenant-scoped tables and fails on one without.
DO $$
DECLARE
    scoped RECORD;
    child RECORD;
    rule TEXT;
BEGIN
    FOR scoped IN
        SELECT c.table_name, c.column_name
        FROM information_schema.columns c
        JOIN information_schema.tables t
          ON t.table_schema = c.table_schema AND t.table_name = c.table_name
        WHERE c.table_schema = current_schema()
          AND t.table_type = 'BASE TABLE'
          AND ((c.column_name = 'tenant_id' AND c.table_name <> 'audit_log')
               OR (c.table_name = 'tenants' AND c.column_name = 'id'))
    LOOP
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', scoped.table_name);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', scoped.table_name);
        EXECUTE format(
            'CREATE POLICY tenant_rows ON %I USING ('
            || 'current_setting(''plinth.scope'', true) = ''all'' '
            || 'OR %I = current_setting(''plinth.tenant'', true)) WITH CHECK ('
            || 'current_setting(''plinth.scope'', true) = ''all'' '
            || 'OR %I = current_setting(''plinth.tenant'', true))',
            scoped.table_name, scoped.column_name, scoped.column_name);
    END LOOP;
    FOR child IN
        SELECT c.relname AS child, a.attname AS fk, p.relname AS parent, pa.attname AS key
        FROM pg_constraint k
        JOIN pg_class c ON c.oid = k.conrelid
        JOIN pg_class p ON p.oid = k.confrelid
        JOIN pg_namespace n ON n.oid = c.relnamespace
        JOIN pg_attribute a ON a.attrelid = k.conrelid AND a.attnum = k.conkey[1]
        JOIN pg_attribute pa ON pa.attrelid = k.confrelid AND pa.attnum = k.confkey[1]
        WHERE k.contype = 'f' AND array_length(k.conkey, 1) = 1
          AND n.nspname = current_schema()
          AND p.relrowsecurity AND NOT c.relrowsecurity AND c.oid <> p.oid
          AND c.relname <> 'audit_log'
    LOOP
        rule := format(
            'current_setting(''plinth.scope'', true) = ''all'' '
            || 'OR EXISTS (SELECT 1 FROM %I parent WHERE parent.%I = %I.%I)',
            child.parent, child.key, child.child, child.fk);
        EXECUTE format('ALTER TABLE %I ENABLE ROW LEVEL SECURITY', child.child);
        EXECUTE format('ALTER TABLE %I FORCE ROW LEVEL SECURITY', child.child);
        EXECUTE format('CREATE POLICY tenant_rows ON %I USING (%s) WITH CHECK (%s)',
            child.child, rule, rule);
    END LOOP;
END
$$;
