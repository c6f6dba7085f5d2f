# A service whose app reaches PostgreSQL through a shroud gateway and never holds
# a database password: `shroud run` logs in to Vault/OpenBao with the task's
# workload-identity token, takes a dynamic database credential that it hands to
# the gateway only (gateway_only: no file, no environment), listens on
# 127.0.0.1:6432 in the task, and runs the app against that address. The app reads
# the gateway's per-run local password from the secrets dir; it opens nothing but
# the gateway. When the app exits the gateway closes and the role is revoked.
#
#   nomad job run shroud-gateway.nomad.hcl
#
# Needs: Nomad >= 1.7 with Vault workload identity configured (see README.md), the
# `shroud-app` policy, and a database secrets engine role `report`.
# Not run in CI (no Nomad on the test machines): tests/examples/check_nomad.py
# parses it and runs `shroud config validate` on its configuration.

job "report-shroud-gateway" {
  type = "service"

  group "report" {
    task "report" {
      driver = "docker"

      config {
        image      = "registry.example.com/report:1.4.2"
        entrypoint = ["/local/shroud"]
        args = [
          "run", "--config", "/local/shroud.toml", "--",
          "/app/report", "--serve",
        ]
      }

      # What the app gets: the gateway's address and the local password file.
      # No database password, user or URL with credentials.
      env {
        PGHOST           = "127.0.0.1"
        PGPORT           = "6432"
        PGDATABASE       = "reports"
        PG_PASSWORD_FILE = "${NOMAD_SECRETS_DIR}/shroud/pg.password"
      }

      artifact {
        source      = "https://artifacts.example.com/shroud/0.1.0/shroud"
        destination = "local/"
        mode        = "file"
        options {
          checksum = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
        }
      }

      vault {
        role        = "report"
        env         = false
        change_mode = "noop"
      }

      identity {
        name = "vault_default"
        aud  = ["vault.io"]
        ttl  = "1h"
      }

      template {
        destination = "local/shroud.toml"
        change_mode = "noop"
        data        = <<-EOT
          [vault]
          address = "https://vault.service.consul:8200"
          ca_cert = "/local/vault-ca.pem"

          [auth]
          method = "token"
          token_file = "{{ env "NOMAD_SECRETS_DIR" }}/vault_token"

          [output]
          dir = "{{ env "NOMAD_SECRETS_DIR" }}/shroud"
          require_tmpfs = true

          [state]
          dir = "{{ env "NOMAD_SECRETS_DIR" }}/shroud-state"

          [[secret]]
          # Handed to the gateway only: written to no file, in no environment.
          name = "db"
          path = "database/creds/report"
          kind = "dynamic"
          gateway_only = true

          [[gateway]]
          # The local password is {{ env "NOMAD_SECRETS_DIR" }}/shroud/pg.password.
          name = "pg"
          kind = "postgres"
          secret = "db"
          listen = "127.0.0.1:6432"
          upstream = "postgres.service.consul:5432"
          sslmode = "verify-full"
          max_connections = 32

          [lifecycle]
          revoke_on_exit = true
        EOT
      }

      template {
        destination = "local/vault-ca.pem"
        change_mode = "noop"
        data        = "{{ key \"vault/ca.pem\" }}"
      }

      resources {
        cpu    = 200
        memory = 128
      }
    }
  }
}
