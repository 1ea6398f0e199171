-- Team members of each shop, isolated by row-level security.
--
-- The migrating user (DATABASE_URL) owns every object created here. Requests never run
-- as that user: each request transaction switches to otica_runtime, a role that is not a
-- superuser, cannot bypass row-level security and owns nothing.

-- The runtime role is cluster-wide, so another database of the same cluster may have made
-- it already; a concurrent migration of another database may be making it right now.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'otica_runtime') THEN
        CREATE ROLE otica_runtime NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
    END IF;
EXCEPTION WHEN duplicate_object OR unique_violation THEN
    NULL;
END
$$;

-- The migrating user switches to the runtime role with SET LOCAL ROLE, which needs membership.
DO $$
BEGIN
    IF NOT pg_has_role(current_user, 'otica_runtime', 'MEMBER') THEN
        EXECUTE format('GRANT otica_runtime TO %I', current_user);
    END IF;
END
$$;

-- The shop of the current transaction, or NULL when none was set. After a transaction that
-- set it ends, PostgreSQL reads a custom setting back as '' rather than NULL; both mean
-- "no shop", so a forgotten set_config sees no rows and can write none.
CREATE FUNCTION app_current_org_id() RETURNS text
    LANGUAGE sql STABLE PARALLEL SAFE
    AS $$ SELECT nullif(current_setting('app.org_id', true), '') $$;

REVOKE ALL ON FUNCTION app_current_org_id() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION app_current_org_id() TO otica_runtime;

CREATE TABLE staff_members (
    organization_id text NOT NULL,
    id uuid NOT NULL DEFAULT gen_random_uuid(),
    clerk_id text,
    full_name text NOT NULL,
    email text NOT NULL,
    role text NOT NULL DEFAULT 'STAFF',
    department text,
    is_active boolean NOT NULL DEFAULT true,
    avatar_url text,
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now(),

    CONSTRAINT staff_members_pkey PRIMARY KEY (organization_id, id),
    -- A Clerk user may work in several shops, so clerk_id is unique within one shop only.
    CONSTRAINT staff_members_org_clerk_id_key UNIQUE (organization_id, clerk_id),
    -- Clerk organization ids look like org_2abc...; an empty or malformed one can never be stored.
    CONSTRAINT staff_members_organization_id_check CHECK (organization_id ~ '^org_[A-Za-z0-9]+$'),
    CONSTRAINT staff_members_role_check CHECK (role IN ('ADMIN', 'MANAGER', 'STAFF', 'ASSISTANT')),
    CONSTRAINT staff_members_full_name_check CHECK (length(btrim(full_name)) BETWEEN 2 AND 200),
    CONSTRAINT staff_members_email_check CHECK (email ~ '^[^@[:space:]]+@[^@[:space:]]+$')
);

-- Email is unique within a shop, ignoring case: Ana@x.com and ana@x.com are one person.
CREATE UNIQUE INDEX staff_members_org_email_key ON staff_members (organization_id, lower(email));
CREATE INDEX staff_members_org_role_idx ON staff_members (organization_id, role);
-- The list is ordered by name, then id, within one shop.
CREATE INDEX staff_members_org_name_idx ON staff_members (organization_id, full_name, id);

ALTER TABLE staff_members ENABLE ROW LEVEL SECURITY;
-- FORCE makes the owner subject to the policy too.
ALTER TABLE staff_members FORCE ROW LEVEL SECURITY;

-- The helper is called as a sub-select so it runs once per query, not once per row.
CREATE POLICY staff_members_tenant_isolation ON staff_members
    AS PERMISSIVE FOR ALL TO otica_runtime
    USING (organization_id = (SELECT app_current_org_id()))
    WITH CHECK (organization_id = (SELECT app_current_org_id()));

REVOKE ALL ON staff_members FROM PUBLIC;
GRANT SELECT, INSERT, UPDATE, DELETE ON staff_members TO otica_runtime;
