#!/bin/sh
# Two databases on one server: Airflow's metadata (POSTGRES_DB) and the steppewatch index.
set -eu
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" <<SQL
CREATE USER steppewatch WITH PASSWORD '${STEPPEWATCH_DB_PASSWORD}';
CREATE DATABASE steppewatch OWNER steppewatch;
SQL
