-- RRIEF PostgreSQL bootstrap: two databases and the login roles, nothing else.
--
-- The postgres image runs this once, on the first start with an empty data volume, as the
-- superuser (psql, ON_ERROR_STOP). Passwords come from the container environment (the .env file
-- through docker-compose.yml) via \getenv, never from this file. It is idempotent, so running it
-- again by hand (psql -f) is safe.
--
--   airflow      owns the database "airflow" (Airflow metadata: DAG runs, XCom, connections).
--   rrief        owns the database "rrief" (the research warehouse); the pipeline and dbt log in
--                as rrief, run the Alembic migrations and build the marts.
--   rrief_loader NOLOGIN role that may write raw/ops (extractors.warehouse.roles.LOADER_ROLE);
--                rrief is a member so it can set default privileges for it.
--   researcher   read-only login for people: the marts schema only, read-only transactions
--                (named by RRIEF_RESEARCHER_ROLE, default "researcher").
--   rrief_annotator NOLOGIN role of the annotation workbench (`rrief annotate serve` connects as
--                rrief and SETs ROLE to it): reads the annotation schema, appends labels
--                (extractors.warehouse.roles.ANNOTATOR_ROLE).
--
-- Schema grants (researcher: SELECT on marts, nothing on raw/ops/staging/intermediate) are NOT
-- made here: airflow-init runs extractors.warehouse.roles.ensure_roles as rrief after the
-- migrations, and the DAG's prepare_warehouse task re-applies them every day.

\set ON_ERROR_STOP on
\getenv airflow_password AIRFLOW_DB_PASSWORD
\getenv warehouse_password WAREHOUSE_DB_PASSWORD
\getenv researcher_password RESEARCHER_DB_PASSWORD
\getenv researcher_role RRIEF_RESEARCHER_ROLE
\if :{?researcher_role}
\else
  \set researcher_role ''
\endif
SELECT coalesce(nullif(:'researcher_role', ''), 'researcher') AS researcher_role \gset

-- Refuse to start with a missing or empty password (compose checks too; this covers psql -f).
\if :{?airflow_password}
\else
  \set airflow_password ''
\endif
\if :{?warehouse_password}
\else
  \set warehouse_password ''
\endif
\if :{?researcher_password}
\else
  \set researcher_password ''
\endif
SELECT concat_ws(', ',
         CASE WHEN :'airflow_password' = '' THEN 'AIRFLOW_DB_PASSWORD' END,
         CASE WHEN :'warehouse_password' = '' THEN 'WAREHOUSE_DB_PASSWORD' END,
         CASE WHEN :'researcher_password' = '' THEN 'RESEARCHER_DB_PASSWORD' END) AS missing
\gset
SELECT format('DO $do$ BEGIN RAISE EXCEPTION %L; END $do$',
              'rrief init: set ' || :'missing' || ' in .env (empty or missing)')
WHERE :'missing' <> ''
\gexec

-- Login roles (created when missing; the password is (re)set every run).
SELECT format('CREATE ROLE %I LOGIN', name)
FROM (VALUES ('airflow'), ('rrief'), (:'researcher_role')) AS r(name)
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = r.name)
\gexec
SELECT format('ALTER ROLE airflow LOGIN PASSWORD %L', :'airflow_password') \gexec
SELECT format('ALTER ROLE rrief LOGIN PASSWORD %L', :'warehouse_password') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'researcher_role', :'researcher_password')
\gexec
-- The researcher can never write, even where a grant slips through.
SELECT format('ALTER ROLE %I SET default_transaction_read_only = on', :'researcher_role') \gexec

-- The loader role of extractors.warehouse.roles (NOLOGIN); rrief may SET ROLE to it, which
-- ALTER DEFAULT PRIVILEGES FOR ROLE rrief_loader (in ensure_roles) requires.
SELECT 'CREATE ROLE rrief_loader NOLOGIN'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rrief_loader')
\gexec
GRANT rrief_loader TO rrief;
SELECT 'CREATE ROLE rrief_annotator NOLOGIN'
WHERE NOT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = 'rrief_annotator')
\gexec
GRANT rrief_annotator TO rrief;

-- Two separate databases: Airflow's metadata never shares a database with patient data.
SELECT 'CREATE DATABASE airflow OWNER airflow'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'airflow')
\gexec
SELECT 'CREATE DATABASE rrief OWNER rrief'
WHERE NOT EXISTS (SELECT 1 FROM pg_database WHERE datname = 'rrief')
\gexec

-- Nobody connects by default (PUBLIC has CONNECT on new databases); grant it explicitly.
REVOKE ALL ON DATABASE airflow FROM PUBLIC;
REVOKE ALL ON DATABASE rrief FROM PUBLIC;
GRANT CONNECT ON DATABASE rrief TO rrief_loader;
GRANT CONNECT ON DATABASE rrief TO rrief_annotator;
SELECT format('GRANT CONNECT ON DATABASE rrief TO %I', :'researcher_role') \gexec

-- Inside the warehouse: nobody but its owner creates objects in the public schema.
\connect rrief
REVOKE CREATE ON SCHEMA public FROM PUBLIC;
