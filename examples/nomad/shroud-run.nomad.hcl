# A batch job whose task runs under `shroud run`: shroud logs in to Vault/OpenBao
# with the token Nomad's workload identity writes to ${NOMAD_SECRETS_DIR}/vault_token,
# renders the secrets into the task's own secrets dir (a per-task tmpfs), runs the
# app with its output masked, and revokes and wipes everything when the app exits.
#
#   nomad job run shroud-run.nomad.hcl
#
# Needs: Nomad >= 1.7 with Vault workload identity configured (a `vault` block in
# the agent config and a JWT auth role, see README.md), the `shroud-app` policy.

job "report-shroud-run" {
  type = "batch"

  group "report" {
    task "report" {
      driver = "docker"

      config {
        # The app's own image; shroud comes in as an artifact, so the image is unchanged.
        image      = "registry.example.com/report:1.4.2"
        entrypoint = ["/local/shroud"]
        args = [
          "run", "--config", "/local/shroud.toml", "--",
          "/app/report", "--from", "yesterday",
        ]
      }

      # The static shroud binary (scripts/build-image), served from your artifact store.
      artifact {
        source      = "https://artifacts.example.com/shroud/0.1.0/shroud"
        destination = "local/"
        mode        = "file"
        options {
          checksum = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
        }
      }

      # Nomad logs in to Vault with the task's workload identity and writes the
      # token to secrets/vault_token. env = false keeps it out of the environment:
      # only shroud reads it.
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
          # Nomad mounts a tmpfs on the task's secrets dir.
          dir = "{{ env "NOMAD_SECRETS_DIR" }}/shroud"
          require_tmpfs = true

          [state]
          # The agent's token and leases, on the same tmpfs (it lives as long as
          # the allocation): when Nomad restarts the task, `shroud run` adopts
          # them instead of taking a second credential.
          dir = "{{ env "NOMAD_SECRETS_DIR" }}/shroud-state"

          [[secret]]
          name = "db"
          path = "database/creds/report"
          kind = "dynamic"
          format = "json"

          [[secret]]
          name = "s3-key"
          path = "secret/data/report"
          kind = "kv2"
          field = "s3_key"

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
