# What the example workload's shroud may do, and nothing more.

# One dynamic PostgreSQL credential per lease.
path "database/creds/app" {
  capabilities = ["read"]
}

# The app's static API key (KV v2: data/ for reads).
path "secret/data/app" {
  capabilities = ["read"]
}

# Renew and revoke its own leases (revoke_on_exit).
path "sys/leases/renew" {
  capabilities = ["update"]
}
path "sys/leases/revoke" {
  capabilities = ["update"]
}
# Look its leases up when a restarted agent adopts them ([state]).
path "sys/leases/lookup" {
  capabilities = ["update"]
}
