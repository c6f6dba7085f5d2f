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
