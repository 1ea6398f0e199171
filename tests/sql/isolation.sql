-- pgTAP: the row-level security set-up of staff_members, and how it behaves for the
-- runtime role. Run by tests/api/pgtap.rs with pg_prove on a freshly migrated database.
BEGIN;
SELECT plan(16);

-- Structure: exactly one policy, for every command, for the runtime role only.
SELECT policies_are('public'::name, 'staff_members'::name, ARRAY['staff_members_tenant_isolation']::name[]);
SELECT policy_roles_are('public'::name, 'staff_members'::name, 'staff_members_tenant_isolation'::name,
                        ARRAY['otica_runtime']::name[]);
SELECT policy_cmd_is('public'::name, 'staff_members'::name, 'staff_members_tenant_isolation'::name, 'all');
SELECT ok((SELECT relrowsecurity AND relforcerowsecurity FROM pg_class WHERE oid = 'staff_members'::regclass),
          'row-level security is enabled and forced');

-- The runtime role: plain, with exactly the privileges it needs and nothing that bypasses.
SELECT table_privs_are('public'::name, 'staff_members'::name, 'otica_runtime'::name,
                       ARRAY['SELECT', 'INSERT', 'UPDATE', 'DELETE']);
SELECT function_privs_are('public'::name, 'app_current_org_id'::name, ARRAY[]::name[], 'otica_runtime'::name,
                          ARRAY['EXECUTE']);
SELECT ok((SELECT NOT rolsuper AND NOT rolbypassrls AND NOT rolcanlogin FROM pg_roles WHERE rolname = 'otica_runtime'),
          'the runtime role is no superuser, cannot bypass RLS and cannot log in');
SELECT is_empty($$ SELECT r.rolname FROM pg_roles r
                    WHERE pg_has_role('otica_runtime', r.oid, 'MEMBER')
                      AND (r.rolsuper OR r.rolbypassrls) $$,
                'no superuser or bypassing role is reachable from the runtime role');
SELECT is_empty($$ SELECT relname FROM pg_class WHERE relowner = 'otica_runtime'::regrole $$,
                'the runtime role owns nothing');

-- Behaviour: two shops' rows, inserted by the owner; then act as shop A.
INSERT INTO staff_members (organization_id, full_name, email, role)
VALUES ('org_2A', 'Ana', 'ana@a.example', 'ADMIN'), ('org_2B', 'Bia', 'bia@b.example', 'STAFF');
SET LOCAL ROLE otica_runtime;
SELECT set_config('app.org_id', 'org_2A', true);

SELECT is((SELECT count(*)::int FROM staff_members), 1, 'shop A sees one row without any WHERE');
SELECT is((SELECT count(*)::int FROM staff_members WHERE organization_id = 'org_2B'), 0,
          'shop B''s rows are invisible to shop A');
SELECT throws_ok($$ INSERT INTO staff_members (organization_id, full_name, email, role)
                    VALUES ('org_2B', 'Eve', 'eve@b.example', 'STAFF') $$,
                 '42501', NULL, 'inserting into shop B is refused');
SELECT throws_ok($$ UPDATE staff_members SET organization_id = 'org_2B' $$,
                 '42501', NULL, 'moving a row to shop B is refused');
SELECT results_eq($$ WITH u AS (UPDATE staff_members SET full_name = 'Hijacked'
                                 WHERE organization_id = 'org_2B' RETURNING 1)
                     SELECT count(*)::int FROM u $$,
                  ARRAY[0], 'updating shop B''s rows touches none');
SELECT results_eq($$ WITH d AS (DELETE FROM staff_members WHERE organization_id = 'org_2B' RETURNING 1)
                     SELECT count(*)::int FROM d $$,
                  ARRAY[0], 'deleting shop B''s rows touches none');

-- With the setting cleared, nothing at all.
SELECT set_config('app.org_id', '', true);
SELECT is((SELECT count(*)::int FROM staff_members), 0, 'no shop set: no rows');

SELECT * FROM finish();
ROLLBACK;
