-- One database and one least-privilege role per Handoff service. Run by psql with these
-- variables (deploy/postgres-init.sh passes them from the compose secrets; on a server of your
-- own, pass them yourself as a superuser, once):
--
--   psql -v directory_db=directory -v directory_role=handoff_directory -v directory_password=... \
--        -v referrals_db=referrals -v referrals_role=handoff_referrals -v referrals_password=... \
--        -v connection_limit=40 -f deploy/postgres-init.sql
--
-- Each role may log in, owns its own database (so `handoff db upgrade` can create its tables
-- there) and nothing else: no superuser, no CREATEDB, no CREATEROLE, and no CONNECT to the other
-- service's database. Tables are created by `handoff db upgrade`, not here.
\set ON_ERROR_STOP on

CREATE ROLE :"directory_role" LOGIN PASSWORD :'directory_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION CONNECTION LIMIT :connection_limit;
CREATE ROLE :"referrals_role" LOGIN PASSWORD :'referrals_password'
    NOSUPERUSER NOCREATEDB NOCREATEROLE NOREPLICATION CONNECTION LIMIT :connection_limit;

-- What shared.database sends at connect, here too for connections through PgBouncer (which
-- refuses per-connection settings): a statement waits at most 5 s for a lock.
ALTER ROLE :"directory_role" SET lock_timeout = '5s';
ALTER ROLE :"referrals_role" SET lock_timeout = '5s';

CREATE DATABASE :"directory_db" OWNER :"directory_role";
CREATE DATABASE :"referrals_db" OWNER :"referrals_role";

-- Every role may connect to every database unless told otherwise: only the owner may.
REVOKE ALL ON DATABASE :"directory_db" FROM PUBLIC;
REVOKE ALL ON DATABASE :"referrals_db" FROM PUBLIC;
