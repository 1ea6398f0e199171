-- Look at the data as one shop sees it, exactly as the service does, and change nothing.
--
--     psql "$DATABASE_URL" -v org=org_2abc -f sql/as_tenant.sql
--
-- Inside one transaction it switches to the runtime role, sets the shop, shows what that
-- shop sees, and rolls everything back. To explore by hand, run the first three statements
-- yourself in psql and finish with ROLLBACK.

\if :{?org}
\else
  \echo 'usage: psql "$DATABASE_URL" -v org=org_<id> -f sql/as_tenant.sql'
  \quit
\endif

BEGIN;
SET LOCAL ROLE otica_runtime;
SELECT set_config('app.org_id', :'org', true);

\echo '== who am I'
SELECT current_user AS acting_as, app_current_org_id() AS shop;

\echo '== what this shop sees (no WHERE clause: row-level security alone filters)'
SELECT count(*) AS staff_visible FROM staff_members;
SELECT id, full_name, email, role, is_active FROM staff_members ORDER BY full_name, id LIMIT 20;

ROLLBACK;
