# shroud as a prestart sidecar task: it renders before the app starts, keeps the
# leases renewed while the app runs, and revokes and wipes when the app's
# `shroud exec` writes the exit marker.
#
#   nomad job run shroud-sidecar.nomad.hcl
#
# Nomad gives every task its own tmpfs secrets dir and none shared by a group, so
# the sidecar renders into ITS secrets dir and the app container bind-mounts that
# directory (a relative path inside the allocation dir: no docker
# `volumes.enabled` needed). Nothing touches the disk.

job "api-shroud-sidecar" {
  type = "service"

  group "api" {
    task "shroud" {
      driver = "docker"
      # The image runs as 65532; root here so the agent can create and chown its
      # output in the secrets dir Nomad made, and mlock with IPC_LOCK.
      user = "root"

      lifecycle {
        hook    = "prestart"
        sidecar = true
      }

      config {
        image = "registry.example.com/shroud:0.1.0" # scripts/build-image
        args  = ["agent", "--config", "/local/shroud.toml"]
        # mlock the agent's memory so secrets never reach swap.
        cap_add = ["ipc_lock"]
      }

      vault {
        role        = "api"
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

          [auth]
          method = "token"
          token_file = "{{ env "NOMAD_SECRETS_DIR" }}/vault_token"

          [output]
          dir = "{{ env "NOMAD_SECRETS_DIR" }}/shroud"
          require_tmpfs = true
          mode = "0440"

          [state]
          # The agent's own token and leases, beside (not inside) the directory
          # the app mounts: when Nomad restarts this task (OOM kill, crash), the
          # new agent adopts them instead of taking a second credential.
          dir = "{{ env "NOMAD_SECRETS_DIR" }}/shroud-state"

          [[secret]]
          name = "db"
          path = "database/creds/api"
          kind = "dynamic"
          format = "json"

          [lifecycle]
          revoke_on_exit = true
          on_rotate = "signal:SIGHUP"
        EOT
      }

      resources {
        cpu    = 50
        memory = 32
      }
    }

    task "api" {
      driver = "docker"

      config {
        image      = "registry.example.com/api:2.0.1"
        entrypoint = ["/local/shroud"]
        args = [
          "exec", "--secrets-dir", "/run/shroud", "--wait-ready",
          "--on-rotate", "signal:SIGHUP", "--",
          "/app/api", "--listen", ":8080",
        ]
        # The sidecar's secrets dir (a tmpfs) at /run/shroud, read-write: exec
        # writes its acks and the exit marker there.
        volumes = ["../shroud/secrets/shroud:/run/shroud"]
      }

      artifact {
        source      = "https://artifacts.example.com/shroud/0.1.0/shroud"
        destination = "local/"
        mode        = "file"
        options {
          checksum = "sha256:0000000000000000000000000000000000000000000000000000000000000000"
        }
      }

      resources {
        cpu    = 500
        memory = 256
      }
    }
  }
}
