"""Shared helpers for the example checks (run from tests/e2e/examples.rs).

Every missing prerequisite raises `Missing` with how to install it: nothing is
skipped. Secret values never reach an assertion message: failures name the secret
and the encoding, not the bytes.
"""

import base64
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import quote

REPO = Path(__file__).resolve().parents[2]
TRIPLE = "x86_64-unknown-linux-gnu"


class Missing(Exception):
    """A prerequisite is not installed; the message says how to get it."""


class Failed(AssertionError):
    """An example does not behave as documented."""


def check(cond, message):
    if not cond:
        raise Failed(message)


def log(*parts):
    print("examples:", *parts, file=sys.stderr, flush=True)


def target_dir():
    return Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))


def shroud_bin():
    """The ordinary (dynamic, debug) shroud that cargo test built."""
    p = Path(os.environ.get("SHROUD_BIN") or target_dir() / "debug" / "shroud")
    if not p.is_file():
        raise Missing(f"{p} is missing: run `cargo build -p shroud-agent` (scripts/test does)")
    return p


def static_shroud_bin():
    """The static shroud for the images: scripts/build-image --debug --no-image."""
    p = Path(os.environ.get("SHROUD_STATIC_BIN") or target_dir() / TRIPLE / "debug" / "shroud")
    if not p.is_file():
        raise Missing(
            f"{p} is missing: run `scripts/build-image --debug --no-image` "
            "(scripts/test does) or set SHROUD_STATIC_BIN"
        )
    return p


def require_tool(name, how):
    p = shutil.which(name)
    if not p:
        raise Missing(f"`{name}` not found on PATH: {how}")
    return p


def require_module(module, package):
    try:
        return __import__(module)
    except ImportError:
        raise Missing(f"Python module `{module}` missing: python3 -m pip install {package} (scripts/test does)")


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def run(cmd, timeout=120, check_rc=True, **kw):
    """Runs a command, returning CompletedProcess with text output."""
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    if check_rc and r.returncode != 0:
        raise Failed(f"{' '.join(map(str, cmd))} exited {r.returncode}:\n{r.stdout}\n{r.stderr}")
    return r


def secret_forms(value: str):
    """The forms of a secret the redactor masks (redactor/src/encodings.rs): raw,
    JSON-escaped, percent-encoded (two alphabets), HTML-escaped, and standard and
    URL-safe base64 at byte offsets 0-2 (only the characters the value fixes).
    Yields (encoding name, bytes)."""
    raw = value.encode()
    yield "raw", raw
    yield "json", json.dumps(value)[1:-1].encode()
    yield "url", quote(value, safe="-_.!~*'()").encode()
    yield "url-strict", quote(value, safe="-_.~").encode()
    html = value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")
    yield "html", html.replace("'", "&#39;").encode()
    for name, enc in (("base64", base64.b64encode), ("base64url", base64.urlsafe_b64encode)):
        yield name, enc(raw)
        for offset in range(3):
            padded = b"\0" * offset + raw
            full = enc(padded)
            skip = [0, 2, 3][offset]
            keep = len(padded) // 3 * 4 + len(padded) % 3
            yield f"{name}@{offset}", full[skip:keep]


def assert_no_secret(text: str, secrets: dict, where: str, min_len=6):
    """Fails naming the secret and encoding found in `text` (never the value)."""
    data = text.encode(errors="surrogateescape")
    for name, value in secrets.items():
        for enc, form in secret_forms(value):
            if len(form) >= min_len and form in data:
                raise Failed(f"{where}: secret `{name}` appears unmasked ({enc} form)")


# --- the real binary's command line ---------------------------------------------

# Subcommands that take a sub-subcommand.
NESTED = {"config", "probe", "audit", "mask"}
_help_cache = {}


def accepted_flags(words):
    """The long flags `shroud <words> --help` lists (global ones included)."""
    key = tuple(words)
    if key not in _help_cache:
        r = run([str(shroud_bin()), *words, "--help"], check_rc=False)
        check(r.returncode == 0, f"`shroud {' '.join(words)} --help` failed: {r.stderr.strip()}")
        import re
        _help_cache[key] = set(re.findall(r"--[a-z][a-z0-9-]*", r.stdout)) | {"--help"}
    return _help_cache[key]


def check_shroud_argv(argv, where):
    """Checks a shroud command line (argv without the binary): the subcommand exists
    and every long flag before `--` is one the real binary accepts. Returns
    (subcommand words, {flag: value or True}, command after --)."""
    check(argv, f"{where}: an empty shroud command line")
    words = [argv[0]]
    rest = argv[1:]
    if argv[0] in NESTED and rest and not rest[0].startswith("-"):
        words.append(rest[0])
        rest = rest[1:]
    flags = accepted_flags(words)
    parsed, after, i = {}, [], 0
    while i < len(rest):
        a = rest[i]
        if a == "--":
            after = rest[i + 1:]
            break
        if a.startswith("--"):
            name, eq, value = a.partition("=")
            check(name in flags, f"{where}: `shroud {' '.join(words)}` has no flag {name} "
                                 f"(it accepts {', '.join(sorted(flags))})")
            if not eq and i + 1 < len(rest) and not rest[i + 1].startswith("-") and \
                    _takes_value(words, name):
                value = rest[i + 1]
                i += 1
            parsed[name] = value if (eq or value) else True
        i += 1
    return words, parsed, after


def _takes_value(words, flag):
    """Whether clap shows the flag with a value placeholder (`--flag <X>`)."""
    import re
    r = run([str(shroud_bin()), *words, "--help"], check_rc=False)
    return re.search(rf"{re.escape(flag)}[ =]<", r.stdout) is not None


# --- agent configuration ----------------------------------------------------------

# The configuration keys of `shroud agent`/`shroud run` (docs/agent.md); used when
# `shroud config validate` is not in the build yet, in addition to it otherwise.
def _config_keys():
    """The agent configuration's sections and keys, read from the serde structs in
    agent/src/config/raw.rs (which deny unknown fields), so this list cannot drift
    from what the binary accepts."""
    import re
    text = (REPO / "agent/src/config/raw.rs").read_text()
    structs = {}
    for m in re.finditer(r"pub struct (Raw\w+) \{(.*?)\n\}", text, re.S):
        structs[m.group(1)] = re.findall(r"^\s*pub (\w+):\s*([^,]+),", m.group(2), re.M)
    keys = {}
    for field, ty in structs["RawConfig"]:
        inner = re.search(r"(Raw\w+)", ty).group(1)
        keys[field] = {name for name, _ in structs[inner]}
    return keys


CONFIG_KEYS = _config_keys()


def check_config_text(text, where):
    """Parses an agent configuration (TOML), checks its keys and enumerations, and
    runs the real `shroud config validate` on it. Returns the parsed dict."""
    import tomllib
    try:
        cfg = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        raise Failed(f"{where}: not valid TOML: {e}")
    for section, value in cfg.items():
        check(section in CONFIG_KEYS, f"{where}: unknown section [{section}]")
        for table in value if isinstance(value, list) else [value]:
            unknown = set(table) - CONFIG_KEYS[section]
            check(not unknown, f"{where}: unknown keys in [{section}]: {sorted(unknown)}")
    # Enumerations (auth methods, kinds, formats) are the binary's to check.
    validate_with_binary(text, where)
    return cfg


def validate_with_binary(text, where):
    """`shroud config validate` on the text."""
    import tempfile
    with tempfile.NamedTemporaryFile("w", suffix=".toml", delete=False) as f:
        f.write(text)
        path = f.name
    try:
        r = run([str(shroud_bin()), "config", "validate", path], check_rc=False)
    finally:
        os.unlink(path)
    check(r.returncode == 0, f"{where}: `shroud config validate` rejected it: {r.stderr.strip()}")
