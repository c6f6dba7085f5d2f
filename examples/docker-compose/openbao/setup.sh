#!/bin/busybox sh
# Runs OpenBao's dev server and configures what the example needs:
#   - the database secrets engine against the PostgreSQL on the host (role `app`:
#     one PostgreSQL role per lease, dropped when the lease is revoked),
#   - a KV v2 secret `secret/app` with an API key,
#   - the `shroud-app` policy and an AppRole `app` whose role_id and one-use
#     secret_id go to /bootstrap (a tmpfs volume the agent mounts read-only),
#   - a file audit device on stdout, declared in audit.hcl (`docker compose logs
#     openbao` shows every request, secrets HMAC'd).
# The healthcheck waits for /bootstrap/.configured.
#
# THE DEV SERVER KEEPS EVERYTHING IN MEMORY AND USES A FIXED ROOT TOKEN: it is for
# this example only. Point shroud at your real Vault/OpenBao instead.
set -eu
: "${BAO_PORT:=8200}" "${PG_HOST:=127.0.0.1}" "${PG_PORT:=5432}" "${PG_DATABASE:=postgres}"
: "${PG_ADMIN_USER:?set PG_ADMIN_USER (a PostgreSQL role that may CREATE ROLE)}"
: "${PG_ADMIN_PASSWORD:?set PG_ADMIN_PASSWORD}"
export BAO_ADDR="http://127.0.0.1:$BAO_PORT"
export BAO_TOKEN=example-root-token
bao=/bin/bao

rm -f /bootstrap/.configured /bootstrap/role_id /bootstrap/secret_id
$bao server -dev -dev-root-token-id="$BAO_TOKEN" -config=/setup/audit.hcl \
  -dev-listen-address="127.0.0.1:$BAO_PORT" -log-level=warn &
server=$!
trap 'kill -TERM $server; wait $server; exit 0' TERM INT

tries=0
until $bao status >/dev/null 2>&1; do
  tries=$((tries + 1))
  [ $tries -lt 300 ] || { echo "setup: OpenBao did not come up" >&2; exit 1; }
  kill -0 $server 2>/dev/null || { echo "setup: OpenBao exited" >&2; exit 1; }
  sleep 0.1
done

$bao secrets enable database >/dev/null
$bao write database/config/app \
  plugin_name=postgresql-database-plugin allowed_roles=app \
  connection_url="postgresql://{{username}}:{{password}}@$PG_HOST:$PG_PORT/$PG_DATABASE?sslmode=disable" \
  username="$PG_ADMIN_USER" password="$PG_ADMIN_PASSWORD" >/dev/null
$bao write database/roles/app db_name=app default_ttl=1h max_ttl=2h \
  creation_statements="CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';" \
  revocation_statements="DROP ROLE IF EXISTS \"{{name}}\";" >/dev/null

# APP_API_KEY lets a test know the value; otherwise a random one.
api_key=${APP_API_KEY:-$(head -c 24 /dev/urandom | base64 | tr -d '/+=')}
$bao kv put secret/app api_key="$api_key" >/dev/null

$bao policy write shroud-app /setup/shroud-app.hcl >/dev/null
$bao auth enable approle >/dev/null
$bao write auth/approle/role/app token_policies=shroud-app \
  token_ttl=1h token_max_ttl=2h secret_id_num_uses=1 secret_id_ttl=10m >/dev/null
$bao read -field=role_id auth/approle/role/app/role-id > /bootstrap/role_id
$bao write -f -field=secret_id auth/approle/role/app/secret-id > /bootstrap/secret_id
chmod 0444 /bootstrap/role_id /bootstrap/secret_id
touch /bootstrap/.configured
echo "setup: OpenBao configured"

wait $server
