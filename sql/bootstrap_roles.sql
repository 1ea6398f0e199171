-- Creates the roles otica-api needs, for a DBA who prefers to make them by hand (managed
-- PostgreSQL services often give the application user no CREATEROLE).
--
-- Run once per cluster as a user with CREATEROLE (or a superuser), naming the user the
-- service will connect as (DATABASE_URL) and the database it owns:
--     psql -v app_user=otica -v app_db=otica -f sql/bootstrap_roles.sql
--
-- Afterwards the migrations (run by `otica-api serve` or `otica-api migrate`) find the
-- runtime role in place and only grant it privileges on the objects they create.

\if :{?app_user}
\else
  \echo 'usage: psql -v app_user=<DATABASE_URL user> -v app_db=<database> -f sql/bootstrap_roles.sql'
  \quit
\endif

-- The role requests run as: cannot log in, cannot bypass row-level security, owns nothing.
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'otica_runtime') AS create_runtime \gset
\if :create_runtime
  CREATE ROLE otica_runtime NOLOGIN NOSUPERUSER NOBYPASSRLS NOCREATEDB NOCREATEROLE NOINHERIT;
\endif

-- The application user owns the schema's objects and switches to the runtime role per request.
SELECT NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'app_user') AS create_app \gset
\if :create_app
  \echo 'creating login role' :app_user '(set its password with \\password)'
  CREATE ROLE :"app_user" LOGIN NOSUPERUSER NOBYPASSRLS;
\endif
GRANT otica_runtime TO :"app_user";

-- The application user creates its tables in the database's public schema.
SELECT NOT EXISTS (SELECT FROM pg_database WHERE datname = :'app_db') AS create_db \gset
\if :create_db
  CREATE DATABASE :"app_db" OWNER :"app_user";
\endif
