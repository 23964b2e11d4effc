-- Lesson 13: the pgbouncer service logs in whatever role a client names,
-- including the login roles the harness makes for each run, without a list of
-- their passwords: it asks the server for a role's SCRAM secret (auth_query) as
-- pgbouncer_auth, a role that may do nothing else, through a SECURITY DEFINER
-- function, owned by the superuser, that returns one role's secret. PgBouncer
-- 1.18 runs auth_query in the database the client asked for, so the function
-- is in template1 (every database the harness creates copies it) and in
-- postgres.
CREATE ROLE pgbouncer_auth LOGIN PASSWORD 'workshop';

\connect template1
CREATE FUNCTION public.pgbouncer_user_lookup(wanted text, OUT usename name, OUT passwd text)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
    AS $$ SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename = wanted $$;
REVOKE ALL ON FUNCTION public.pgbouncer_user_lookup(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.pgbouncer_user_lookup(text) TO pgbouncer_auth;

\connect postgres
CREATE FUNCTION public.pgbouncer_user_lookup(wanted text, OUT usename name, OUT passwd text)
    LANGUAGE sql SECURITY DEFINER SET search_path = pg_catalog
    AS $$ SELECT usename, passwd FROM pg_catalog.pg_shadow WHERE usename = wanted $$;
REVOKE ALL ON FUNCTION public.pgbouncer_user_lookup(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION public.pgbouncer_user_lookup(text) TO pgbouncer_auth;
