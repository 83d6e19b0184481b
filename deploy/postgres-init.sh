#!/bin/sh
# Run once by the postgres image on an empty data volume (as /docker-entrypoint-initdb.d/*.sh):
# creates each service's database and role with the passwords of the compose secrets.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname postgres \
  -v directory_db=directory -v directory_role=handoff_directory \
  -v directory_password="$(cat /run/secrets/directory_db_password)" \
  -v referrals_db=referrals -v referrals_role=handoff_referrals \
  -v referrals_password="$(cat /run/secrets/referrals_db_password)" \
  -v connection_limit="${ROLE_CONNECTION_LIMIT:-40}" \
  -f /etc/handoff/postgres-init.sql
