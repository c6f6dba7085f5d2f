# Policy for the nightly-report Job (Kubernetes auth role `nightly-report`).
path "database/creds/reports_nightly" {
  capabilities = ["read"]
}
path "secret/data/reports/s3" {
  capabilities = ["read"]
}
path "sys/leases/renew" {
  capabilities = ["update"]
}
path "sys/leases/revoke" {
  capabilities = ["update"]
}
