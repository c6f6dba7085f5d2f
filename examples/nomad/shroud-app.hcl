# The Vault/OpenBao policy for the Nomad examples' workload identities.
path "database/creds/report" { capabilities = ["read"] }
path "database/creds/api"    { capabilities = ["read"] }
path "secret/data/report"    { capabilities = ["read"] }
path "sys/leases/renew"      { capabilities = ["update"] }
path "sys/leases/revoke"     { capabilities = ["update"] }
path "sys/leases/lookup"     { capabilities = ["update"] }
