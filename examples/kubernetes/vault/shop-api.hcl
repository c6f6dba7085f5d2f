# Policy for the shop-api pods (Kubernetes auth role `shop-api`).

# One PostgreSQL role per lease; shroud renews it while the pod runs.
path "database/creds/shop_api" {
  capabilities = ["read"]
}

# KV v2 reads go through data/.
path "secret/data/shop/stripe" {
  capabilities = ["read"]
}

# Renew and revoke its own leases (the token's own renew/revoke are in `default`).
path "sys/leases/renew" {
  capabilities = ["update"]
}
path "sys/leases/revoke" {
  capabilities = ["update"]
}
