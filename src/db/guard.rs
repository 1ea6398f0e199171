//! The start-up check: `serve` refuses to run when row-level security could be bypassed.
//!
//! Each finding is a sentence naming the object and the problem. The same questions, asked
//! by a DBA in psql, are in `sql/audit.sql`.

use tokio_postgres::Client;

use super::RUNTIME_ROLE;

/// Each query returns one text column: a finding. No rows means nothing is wrong.
const CHECKS: &[&str] = &[
    // Neither the runtime role nor any role it belongs to (directly or not) may bypass RLS or
    // own a table that carries organization_id.
    "SELECT format('role %s (reachable from %s) is %s', r.rolname, $1::text,
                   concat_ws(' and ',
                     CASE WHEN r.rolsuper THEN 'a superuser' END,
                     CASE WHEN r.rolbypassrls THEN 'allowed to bypass row-level security' END,
                     CASE WHEN EXISTS (SELECT FROM pg_class c
                                        JOIN pg_attribute a ON a.attrelid = c.oid
                                       WHERE a.attname = 'organization_id' AND NOT a.attisdropped
                                         AND c.relkind IN ('r','p') AND c.relowner = r.oid)
                          THEN 'the owner of a tenant table' END))
       FROM pg_roles r
      WHERE pg_has_role($1::name, r.oid, 'MEMBER')
        AND (r.rolsuper OR r.rolbypassrls OR EXISTS (
               SELECT FROM pg_class c JOIN pg_attribute a ON a.attrelid = c.oid
                WHERE a.attname = 'organization_id' AND NOT a.attisdropped
                  AND c.relkind IN ('r','p') AND c.relowner = r.oid))",
    // Every table with organization_id: RLS enabled, forced, and at least one policy.
    "SELECT format('table %s carries organization_id but %s', c.oid::regclass,
                   concat_ws(' and ',
                     CASE WHEN NOT c.relrowsecurity THEN 'has row-level security disabled' END,
                     CASE WHEN NOT c.relforcerowsecurity THEN 'does not FORCE row-level security' END,
                     CASE WHEN NOT EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid)
                          THEN 'has no policy' END))
       FROM pg_class c
       JOIN pg_namespace n ON n.oid = c.relnamespace
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped
      WHERE c.relkind IN ('r','p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
        AND (NOT c.relrowsecurity OR NOT c.relforcerowsecurity
             OR NOT EXISTS (SELECT FROM pg_policy p WHERE p.polrelid = c.oid))
        AND $1::text IS NOT NULL",
    // Views over tenant tables must run with the caller's rights, or they skip the policies.
    "SELECT DISTINCT format('view %s reads tenant table %s with its owner''s rights (set security_invoker = true)',
                            v.oid::regclass, t.oid::regclass)
       FROM pg_class v
       JOIN pg_rewrite rw ON rw.ev_class = v.oid
       JOIN pg_depend d ON d.objid = rw.oid AND d.classid = 'pg_rewrite'::regclass
                       AND d.refclassid = 'pg_class'::regclass
       JOIN pg_class t ON t.oid = d.refobjid AND t.oid <> v.oid
       JOIN pg_attribute a ON a.attrelid = t.oid AND a.attname = 'organization_id' AND NOT a.attisdropped
      WHERE v.relkind IN ('v', 'm')
        AND NOT coalesce(v.reloptions @> ARRAY['security_invoker=true'], false)
        AND $1::text IS NOT NULL",
    // A unique index without organization_id tells one shop what exists in another.
    "SELECT format('unique index %s on tenant table %s leaves out organization_id',
                   i.indexrelid::regclass, i.indrelid::regclass)
       FROM pg_index i
       JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attname = 'organization_id' AND NOT a.attisdropped
      WHERE i.indisunique AND NOT (a.attnum = ANY (i.indkey::int2[]))
        AND $1::text IS NOT NULL",
    // Whole-table commands and side doors are not subject to row-level security.
    "SELECT format('role %s holds %s on tenant table %s (row-level security does not apply to it)',
                   $1::text, p.privilege, c.oid::regclass)
       FROM pg_class c
       JOIN pg_attribute a ON a.attrelid = c.oid AND a.attname = 'organization_id' AND NOT a.attisdropped
      CROSS JOIN unnest(ARRAY['TRUNCATE', 'REFERENCES', 'TRIGGER']) AS p(privilege)
      WHERE c.relkind IN ('r','p') AND has_table_privilege($1::text::name, c.oid, p.privilege)",
    // The service must be able to switch to the runtime role.
    "SELECT format('the database user %s cannot SET ROLE %s; GRANT %s TO %s', current_user, $1::text, $1::text, current_user)
      WHERE EXISTS (SELECT FROM pg_roles WHERE rolname = $1::text)
        AND NOT pg_has_role(current_user, $1::name, 'MEMBER')",
];

/// Every way the database could let one shop see another's rows, as sentences.
pub async fn findings(client: &Client) -> Result<Vec<String>, tokio_postgres::Error> {
    let exists = client
        .query_opt("SELECT FROM pg_roles WHERE rolname = $1", &[&RUNTIME_ROLE])
        .await?
        .is_some();
    if !exists {
        return Ok(vec![format!(
            "role {RUNTIME_ROLE} does not exist; run the migrations"
        )]);
    }
    let mut found = Vec::new();
    for sql in CHECKS {
        for row in client.query(*sql, &[&RUNTIME_ROLE]).await? {
            found.push(row.get(0));
        }
    }
    Ok(found)
}
