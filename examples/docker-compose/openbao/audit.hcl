# OpenBao 2.x only takes audit devices from its configuration (not the API).
# Every request and response goes to stdout, secrets HMAC'd: `docker compose logs
# openbao` shows shroud's login, reads, renewals and revocations.
audit "file" "stdout" {
  options {
    file_path = "stdout"
  }
}
