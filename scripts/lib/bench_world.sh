# Shared set-up of the agent benchmarks (scripts/bench-agent, scripts/bench-pod):
# an OpenBao dev server, a private PostgreSQL 15 with the database engine, a kv2
# value and an AppRole, in "$work". Source after common.sh; needs root.
# Sets: work, BAO_ADDR, BAO_TOKEN, PG_PORT, PGBIN; a trap cleans everything up.
PGBIN=/usr/lib/postgresql/15/bin
BENCH_CLEANUP_EXTRA=${BENCH_CLEANUP_EXTRA:-}
work=$(mktemp -d /tmp/shroud-bench.XXXXXX)
chmod 755 "$work"
mkdir -p "$work/pg" "$work/out"
BAO_PID=
cleanup() {
  set +e
  [ -n "$BENCH_CLEANUP_EXTRA" ] && eval "$BENCH_CLEANUP_EXTRA"
  [ -n "$BAO_PID" ] && kill "$BAO_PID" 2>/dev/null && wait "$BAO_PID" 2>/dev/null
  [ -f "$work/pg/data/postmaster.pid" ] && runuser -u postgres -- "$PGBIN/pg_ctl" -D "$work/pg/data" -m immediate stop >/dev/null 2>&1
  mountpoint -q "$work/out" && umount -l "$work/out"
  rm -rf "$work"
}
trap cleanup EXIT
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

step "OpenBao dev server, PostgreSQL 15, database engine, kv2, AppRole"
BAO_PORT=$(free_port)
export BAO_ADDR=http://127.0.0.1:$BAO_PORT BAO_TOKEN=bench-root
bao server -dev -dev-root-token-id=bench-root -dev-listen-address=127.0.0.1:$BAO_PORT >"$work/bao.log" 2>&1 &
BAO_PID=$!
PG_PORT=$(free_port)
printf 'bench-superuser' >"$work/pg/pw"
chown -R postgres:postgres "$work/pg"
runuser -u postgres -- "$PGBIN/initdb" -D "$work/pg/data" -U postgres --auth-local=trust \
  --auth-host=scram-sha-256 --pwfile="$work/pg/pw" >/dev/null
runuser -u postgres -- "$PGBIN/pg_ctl" -D "$work/pg/data" -w -l "$work/pg/log" \
  -o "-p $PG_PORT -k $work/pg -c listen_addresses=127.0.0.1 -c fsync=off" start >/dev/null
for _ in $(seq 100); do bao status >/dev/null 2>&1 && break; sleep 0.1; done
bao secrets enable database >/dev/null
bao write database/config/pg plugin_name=postgresql-database-plugin allowed_roles=app \
  connection_url="postgresql://{{username}}:{{password}}@127.0.0.1:$PG_PORT/postgres?sslmode=disable" \
  username=postgres password=bench-superuser >/dev/null
bao write database/roles/app db_name=pg default_ttl=1h max_ttl=2h \
  creation_statements="CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';" >/dev/null
bao kv put secret/app api_key=bench-api-key-0123456789 >/dev/null
cat >"$work/policy.hcl" <<'HCL'
path "database/creds/app" { capabilities = ["read"] }
path "secret/data/app"    { capabilities = ["read"] }
path "sys/leases/*"       { capabilities = ["update"] }
HCL
bao policy write app "$work/policy.hcl" >/dev/null
bao auth enable approle >/dev/null
bao write auth/approle/role/app token_policies=app token_ttl=1h >/dev/null
bao read -field=role_id auth/approle/role/app/role-id >"$work/role-id"
bao write -f -field=secret_id auth/approle/role/app/secret-id >"$work/secret-id"
mount -t tmpfs -o size=4m tmpfs "$work/out"

