# ensure_dockerd: starts the Docker engine in the background when it is not
# answering, the way the test machines can run it (no bridge, no iptables: every
# container uses the host network), and waits for its socket. Source, do not run.
#
# overlay2 is tried first and vfs after it, for hosts whose root filesystem cannot
# carry overlayfs. The daemon's log is /tmp/shroud-dockerd.log.
ensure_dockerd() {
  docker info >/dev/null 2>&1 && return 0
  command -v dockerd >/dev/null || { printf 'error: dockerd not found: apt-get install docker.io\n' >&2; return 1; }
  local log=/tmp/shroud-dockerd.log driver i
  for driver in "" vfs; do
    step "starting dockerd ${driver:+(storage driver $driver)}"
    # setsid: the daemon outlives this script and is not hit by its signals.
    setsid dockerd --bridge=none --iptables=false ${driver:+--storage-driver=$driver} \
      >"$log" 2>&1 </dev/null &
    local pid=$!
    for i in $(seq 1 120); do
      docker info >/dev/null 2>&1 && return 0
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    kill "$pid" 2>/dev/null || true
    wait "$pid" 2>/dev/null || true
    printf 'dockerd%s did not come up; last lines of %s:\n' "${driver:+ --storage-driver=$driver}" "$log" >&2
    tail -n 15 "$log" >&2
  done
  printf 'error: the Docker engine cannot run here (see %s); the image and docker-compose tests will fail\n' "$log" >&2
  return 1
}
