#!/usr/bin/env bash
# Configures Vault/OpenBao for the Kubernetes examples. Run with an admin token:
#
#   export BAO_ADDR=https://vault.example.com:8200 BAO_TOKEN=...   # or VAULT_*
#   PG_ADMIN_URL='postgresql://{{username}}:{{password}}@postgres.shop.svc:5432/shop' \
#   PG_ADMIN_USER=vault PG_ADMIN_PASSWORD=... ./vault/setup.sh
#
# `bao` and `vault` take the same arguments here.
set -euo pipefail
cd "$(dirname "$0")"
: "${PG_ADMIN_URL:?}" "${PG_ADMIN_USER:?}" "${PG_ADMIN_PASSWORD:?}"
bao=${BAO:-bao}

# Kubernetes auth: Vault checks each pod's service account token with the
# TokenReview API (run this where the Kubernetes API address below is right).
$bao auth enable kubernetes 2>/dev/null || true
$bao write auth/kubernetes/config kubernetes_host="${KUBERNETES_HOST:-https://kubernetes.default.svc}"

# Policies.
$bao policy write shop-api shop-api.hcl
$bao policy write nightly-report nightly-report.hcl

# Roles: one per workload, bound to its service account and namespace, short TTL.
$bao write auth/kubernetes/role/shop-api \
  bound_service_account_names=shop-api bound_service_account_namespaces=shop \
  token_policies=shop-api token_ttl=1h token_max_ttl=4h audience=vault
$bao write auth/kubernetes/role/nightly-report \
  bound_service_account_names=nightly-report bound_service_account_namespaces=reports \
  token_policies=nightly-report token_ttl=30m token_max_ttl=2h audience=vault

# The secrets the annotations name.
$bao secrets enable database 2>/dev/null || true
$bao write database/config/shop plugin_name=postgresql-database-plugin \
  allowed_roles="shop_api,reports_nightly" connection_url="$PG_ADMIN_URL" \
  username="$PG_ADMIN_USER" password="$PG_ADMIN_PASSWORD"
for role in shop_api reports_nightly; do  # database roles: <namespace>_<name> (the webhook's prefix)
  $bao write "database/roles/$role" db_name=shop default_ttl=1h max_ttl=24h \
    creation_statements="CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';" \
    revocation_statements="DROP ROLE IF EXISTS \"{{name}}\";"
done
$bao secrets enable -path=secret kv-v2 2>/dev/null || true
$bao kv put secret/shop/stripe api_key="${STRIPE_API_KEY:-sk_test_example}"
$bao kv put secret/reports/s3 secret_access_key="${S3_SECRET_KEY:-example}"
