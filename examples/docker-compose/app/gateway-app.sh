#!/bin/busybox sh
# The gateway example's workload: it shows what it holds (its environment and
# the files shroud gave it: only the gateway's local password), then runs psql
# through the gateway, as the dynamic role the agent logged in as.
#
#   SECRETS_DIR  where shroud renders (default /run/shroud)
#   PGHOST, PGPORT, PGDATABASE  the gateway's address (compose.gateway.yaml)
set -eu
dir=${SECRETS_DIR:-/run/shroud}
echo "app: environment: $(env | cut -d= -f1 | sort | tr '\n' ' ')"
echo "app: files: $(ls -A "$dir" | grep -vx '.shroud' | tr '\n' ' ')"
# The local password: what psql sends to the gateway. It is not the database's.
export PGPASSWORD="$(cat "$dir/pg.password")"
who=$(psql -X -At -c 'select current_user')
echo "app: through the gateway as $who"
echo "app: in pg_roles: $(psql -X -At -c 'select rolname from pg_roles where rolname = current_user')"
echo "app: done, exiting with ${APP_EXIT:-0}"
exit "${APP_EXIT:-0}"
