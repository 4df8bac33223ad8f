-- One name per thing: every core table is named by its source code (core.<source>), as its DAG
-- (ingest_<source>), suite, projection and Asset are. Renames the tables that had their own
-- names, with their primary keys, checks and indexes (<old>_... -> <new>_...). The ioc.* views
-- are unchanged (ioc_views.md fixes them); core tables are ours.
DO $$
DECLARE
    t record;
    r record;
BEGIN
    FOR t IN SELECT * FROM (VALUES ('population_snapshot', 'population'),
                                   ('land_certificate', 'land'),
                                   ('tuition_payment', 'tuition'),
                                   ('health_visit', 'health_visits'),
                                   ('social_payment', 'social_payments'),
                                   ('project06_item', 'project06_tracker')) v(old, new)
    LOOP
        EXECUTE format('ALTER TABLE core.%I RENAME TO %I', t.old, t.new);
        FOR r IN SELECT conname FROM pg_constraint
                  WHERE conrelid = format('core.%I', t.new)::regclass AND conname LIKE t.old || '\_%'
        LOOP
            EXECUTE format('ALTER TABLE core.%I RENAME CONSTRAINT %I TO %I',
                           t.new, r.conname, t.new || substr(r.conname, length(t.old) + 1));
        END LOOP;
        FOR r IN SELECT c.relname FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
                  WHERE i.indrelid = format('core.%I', t.new)::regclass AND c.relname LIKE t.old || '\_%'
        LOOP
            EXECUTE format('ALTER INDEX core.%I RENAME TO %I', r.relname, t.new || substr(r.relname, length(t.old) + 1));
        END LOOP;
    END LOOP;
END $$;
