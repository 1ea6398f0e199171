-- Tenant-isolation audit: what a DBA checks to trust that one shop cannot see another's rows.
--
-- Run on the application's database (read-only; changes nothing):
--     psql "$DATABASE_URL" -f sql/audit.sql
--
-- Sections 1-4 describe the set-up. Section 5 lists findings: every row there is a way for
-- one shop to read or detect another's data, and `otica-api serve` refuses to start while any
-- of the serious ones exist. A healthy database shows "(0 rows)" under section 5.

\pset footer on
\echo '== 1. Tables carrying organization_id, and their row-level security'
SELECT c.oid::regclass AS "table",
       pg_get_userbyid(c.relowner) AS owner,
       c.relrowsecurity AS rls_enabled,
       c.relforcerowsecurity AS rls_forced,
       (SELECT count(*) FROM pg_policy p WHERE p.polrelid = c.oid) AS policies
  FROM pg_class c
  JOIN pg_namespace n ON n.oid = c.relnamespace
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped
 WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
 ORDER BY 1;

\echo '== 2. Policies and their expressions'
SELECT schemaname, tablename, policyname, permissive, roles, cmd, qual, with_check
  FROM pg_policies
 ORDER BY 1, 2, 3;

\echo '== 3. Roles that bypass row-level security whatever the policies say'
SELECT rolname, rolsuper, rolbypassrls, rolcanlogin
  FROM pg_roles
 WHERE (rolsuper OR rolbypassrls) AND rolname !~ '^pg_'
 ORDER BY 1;

\echo '== 4. What the runtime role otica_runtime may do on each tenant table'
SELECT c.oid::regclass AS "table", string_agg(p.privilege, ', ' ORDER BY p.privilege) AS privileges
  FROM pg_class c
  JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped
 CROSS JOIN unnest(ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p(privilege)
 WHERE c.relkind IN ('r', 'p')
   AND EXISTS (SELECT FROM pg_roles WHERE rolname = 'otica_runtime')
   AND has_table_privilege('otica_runtime', c.oid, p.privilege)
 GROUP BY 1
 ORDER BY 1;

\echo '== 5. Findings (each row is a problem; none is the healthy answer)'
WITH tenant_tables AS (
    SELECT c.oid, c.relrowsecurity, c.relforcerowsecurity, c.relowner
      FROM pg_class c
      JOIN pg_namespace n ON n.oid = c.relnamespace
      JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped
     WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
)
SELECT 'rls disabled' AS finding, oid::regclass::text AS object
  FROM tenant_tables WHERE NOT relrowsecurity
UNION ALL
SELECT 'rls not forced (the owner bypasses it)', oid::regclass::text
  FROM tenant_tables WHERE NOT relforcerowsecurity
UNION ALL
SELECT 'no policy (nobody but bypassing roles sees rows)', oid::regclass::text
  FROM tenant_tables t WHERE NOT EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = t.oid)
UNION ALL
SELECT 'runtime role can become a bypassing role or a table owner', r.rolname::text
  FROM pg_roles r
 WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = 'otica_runtime')
   AND pg_has_role('otica_runtime', r.oid, 'MEMBER')
   AND (r.rolsuper OR r.rolbypassrls OR r.oid IN (SELECT relowner FROM tenant_tables))
UNION ALL
SELECT 'runtime role holds ' || p.privilege, t.oid::regclass::text
  FROM tenant_tables t
 CROSS JOIN unnest(ARRAY['TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p(privilege)
 WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = 'otica_runtime')
   AND has_table_privilege('otica_runtime', t.oid, p.privilege)
UNION ALL
SELECT DISTINCT 'view runs with its owner''s rights over a tenant table (set security_invoker)',
       v.oid::regclass::text
  FROM pg_class v
  JOIN pg_rewrite rw ON rw.ev_class = v.oid
  JOIN pg_depend d ON d.objid = rw.oid AND d.classid = 'pg_rewrite'::regclass
                  AND d.refclassid = 'pg_class'::regclass
  JOIN tenant_tables t ON t.oid = d.refobjid AND t.oid <> v.oid
 WHERE v.relkind IN ('v', 'm')
   AND NOT coalesce(v.reloptions @> ARRAY['security_invoker=true'], false)
UNION ALL
SELECT 'unique index leaves out organization_id (tells one shop what another has)',
       i.indexrelid::regclass::text
  FROM pg_index i
  JOIN tenant_tables t ON t.oid = i.indrelid
  JOIN pg_attribute a ON a.attrelid = t.oid AND a.attname = 'organization_id'
 WHERE i.indisunique AND NOT (a.attnum = ANY (i.indkey::int2[]))
UNION ALL
SELECT 'foreign key between tenant tables leaves out organization_id', con.conname::text
  FROM pg_constraint con
  JOIN tenant_tables t ON t.oid = con.conrelid
  JOIN tenant_tables f ON f.oid = con.confrelid
  JOIN pg_attribute a ON a.attrelid = con.conrelid AND a.attname = 'organization_id'
 WHERE con.contype = 'f' AND NOT (a.attnum = ANY (con.conkey))
UNION ALL
SELECT 'security definer function callable by the runtime role', p.oid::regprocedure::text
  FROM pg_proc p
  JOIN pg_namespace n ON n.oid = p.pronamespace
 WHERE p.prosecdef AND n.nspname NOT IN ('pg_catalog', 'information_schema')
   AND EXISTS (SELECT FROM pg_roles WHERE rolname = 'otica_runtime')
   AND has_function_privilege('otica_runtime', p.oid, 'EXECUTE')
UNION ALL
SELECT 'role or database setting touches row_security or app.*',
       coalesce(r.rolname, '(every role)') || ' in ' || coalesce(d.datname, '(every database)')
  FROM pg_db_role_setting s
  LEFT JOIN pg_roles r ON r.oid = s.setrole
  LEFT JOIN pg_database d ON d.oid = s.setdatabase
 WHERE EXISTS (SELECT FROM unnest(s.setconfig) AS x WHERE x ~* '^(row_security|app\.)')
ORDER BY 1, 2;
