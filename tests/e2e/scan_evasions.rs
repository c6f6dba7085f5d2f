//! `shroud scan` against files built to slip past it (issue 22, items 10-12),
//! each made with the real tools: archives after a prefix (self-extracting jar,
//! makeself installer), package formats (`.deb`, `.rpm`, raw `.lzma`, 7z), data
//! the parsers do not list (GNU sparse and unknown tar types, a second tar after
//! the end blocks, trailing data after compressed streams, a zip entry missing
//! from the central directory, a deflated entry named like a directory), and a
//! secret source linked into the scanned tree. Each is found (exit 1) or the
//! scan is incomplete (exit 2): never clean.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use shroud_e2e::*;

const SECRET: &[u8] = b"e2e-evasive-deploy-token-7d41b0e2";

/// The Debian packages the builders below come from.
const TOOLS: &str = "scripts/test --prereqs (tar gzip bzip2 xz-utils zstd zip python3 \
                     makeself dpkg rpm cpio p7zip-full)";

fn sh(dir: &Path, script: &str) {
    for tool in [
        "tar", "gzip", "bzip2", "xz", "zstd", "zip", "python3", "makeself", "dpkg-deb", "rpmbuild",
        "cpio", "7z",
    ] {
        require_tool(tool, TOOLS);
    }
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Tree {
    root: tempfile::TempDir,
    secret: PathBuf,
}

impl Tree {
    /// `secrets/deploy_token` (the source), `work/secret.txt` (a copy for the
    /// builders), an empty `dist/` to scan.
    fn new() -> Tree {
        let root = tempfile::tempdir().unwrap();
        for d in ["secrets", "dist", "work"] {
            std::fs::create_dir(root.path().join(d)).unwrap();
        }
        let secret = secret_file(&root.path().join("secrets"), "deploy_token", SECRET);
        std::fs::write(root.path().join("work/secret.txt"), SECRET).unwrap();
        Tree { root, secret }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    fn work(&self, script: &str) {
        sh(&self.path("work"), script);
    }

    fn scan(&self, paths: &[&str]) -> Finished {
        let mut cmd = shroud();
        cmd.current_dir(self.root.path())
            .args(["scan", "--secret-file"])
            .arg(&self.secret)
            .args(paths);
        run_with_input(&mut cmd, b"", Duration::from_secs(120))
    }

    /// Scans `path` alone: exit 1 with a finding whose name starts with
    /// `prefix` and ends with `suffix`, the value never printed.
    fn found(&self, path: &str, prefix: &str, suffix: &str) {
        let f = self.scan(&[path]);
        assert!(
            !contains(&f.stdout, SECRET) && !contains(&f.stderr, SECRET),
            "{path}: the value was printed"
        );
        assert_eq!(code(&f), 1, "{path}: {}{}", f.out(), f.err());
        let out = f.out();
        let hit = out
            .lines()
            .filter_map(|l| l.rsplit_once(": deploy_token"))
            .filter_map(|(head, _)| head.rsplit_once(':'))
            .any(|(name, _)| name.starts_with(prefix) && name.ends_with(suffix));
        assert!(hit, "{path}: no finding named {prefix}…{suffix} in:\n{out}");
    }
}

fn code(f: &Finished) -> i32 {
    f.status.code().expect("exited normally")
}

/// A JSON file holding the value among enough text that every compressor
/// really compresses it (a stored value would be found as plain bytes).
const CONFIG: &str = r#"
    { printf '{"token": "%s",\n' "$(cat secret.txt)"
      for i in $(seq 1 200); do printf '"padding%d": "the quick brown fox",\n' "$i"; done
      printf '"end": 1}\n'; } > settings.json
"#;

#[test]
fn archives_after_a_prefix_and_package_formats_are_found() {
    let t = Tree::new();
    t.work(&format!(
        r#"
        {CONFIG}
        mkdir -p jar/META-INF && cp settings.json jar/META-INF/
        echo 'Main-Class: app' > jar/META-INF/MANIFEST.MF
        (cd jar && zip -q -9 -r ../app.jar .)
        printf '#!/bin/sh\nexec java -jar "$0" "$@"\n' > launcher.sh
        cat launcher.sh app.jar > ../dist/app.run

        mkdir -p payload && cp settings.json payload/config.json
        printf '#!/bin/sh\necho installed\n' > payload/setup.sh && chmod +x payload/setup.sh
        makeself --quiet --gzip payload ../dist/install-gz.run "app" ./setup.sh >/dev/null
        makeself --quiet --xz payload ../dist/install-xz.run "app" ./setup.sh >/dev/null

        mkdir -p lib && cp app.jar lib/
        tar -cf - lib | gzip -9 > bundle.tar.gz
        cat launcher.sh bundle.tar.gz > ../dist/bundle.run

        for z in xz zstd gzip; do
            rm -rf deb && mkdir -p deb/DEBIAN deb/etc/app
            printf 'Package: app\nVersion: 1.0\nArchitecture: all\nMaintainer: ci <ci@example.com>\nDescription: test\n' > deb/DEBIAN/control
            cp settings.json deb/etc/app/
            dpkg-deb -Z"$z" --root-owner-group --build deb "../dist/app-$z.deb" >/dev/null
        done

        xz --format=lzma -c settings.json > ../dist/settings.json.lzma

        mkdir -p rpm/SOURCES rpm/SPECS
        cp settings.json rpm/SOURCES/
        cat > rpm/SPECS/app.spec <<'SPEC'
Name: app
Version: 1.0
Release: 1
Summary: test
License: none
BuildArch: noarch
%description
test
%install
mkdir -p %{{buildroot}}/etc/app
cp %{{_sourcedir}}/settings.json %{{buildroot}}/etc/app/
%files
/etc/app/settings.json
SPEC
        rpmbuild --quiet -bb --define "_topdir $PWD/rpm" --define '_binary_payload w9.xzdio' rpm/SPECS/app.spec
        cp rpm/RPMS/noarch/app-1.0-1.noarch.rpm ../dist/app.rpm

        7z a -bd -mx=9 ../dist/settings.7z settings.json >/dev/null
        cat launcher.sh ../dist/settings.7z > ../dist/settings-7z.run
        "#
    ));
    t.found("dist/app.run", "dist/app.run@", "!META-INF/settings.json");
    t.found(
        "dist/install-gz.run",
        "dist/install-gz.run@",
        "!./config.json",
    );
    t.found(
        "dist/install-xz.run",
        "dist/install-xz.run@",
        "!./config.json",
    );
    t.found(
        "dist/bundle.run",
        "dist/bundle.run@",
        "!lib/app.jar!META-INF/settings.json",
    );
    for z in ["xz", "zstd", "gzip"] {
        let deb = format!("dist/app-{z}.deb");
        t.found(
            &deb,
            &format!("{deb}!data.tar."),
            "!./etc/app/settings.json",
        );
    }
    t.found("dist/settings.json.lzma", "dist/settings.json.lzma", "lzma");
    t.found("dist/app.rpm", "dist/app.rpm!", "etc/app/settings.json");

    // 7z is recognised, not read: incomplete, with the file named; after a
    // prefix too.
    for (file, at) in [
        ("dist/settings.7z", "dist/settings.7z: "),
        ("dist/settings-7z.run", "dist/settings-7z.run@"),
    ] {
        let f = t.scan(&[file]);
        assert_eq!(code(&f), 2, "{file}: {}{}", f.out(), f.err());
        assert!(
            f.err().contains(at) && f.err().contains("7z archives are not read"),
            "{}",
            f.err()
        );
    }
}

#[test]
fn data_the_parsers_do_not_list_is_scanned() {
    let t = Tree::new();
    t.work(&format!(
        r#"
        {CONFIG}
        echo 'nothing here' > clean.txt
        python3 - <<'PY'
import tarfile, zipfile, io, struct
secret = open("secret.txt").read()
# A sparse file: the value after a hole, stored as a GNU sparse member below.
with open("sparse.img", "wb") as f:
    f.seek(1 << 20)
    f.write(secret.encode())
    f.seek(2 << 20)
    f.write(b"end")
# An entry of a type tar does not define (GNU tar extracts it as a file).
with tarfile.open("../dist/odd.tar", "w", format=tarfile.GNU_FORMAT) as tar:
    data = ("key = " + secret + "\n").encode()
    info = tarfile.TarInfo("odd.cfg")
    info.size = len(data)
    info.type = b"Z"
    tar.addfile(info, io.BytesIO(data))
# A deflated entry whose name ends in "/".
with zipfile.ZipFile("../dist/dir.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr(zipfile.ZipInfo("data/"), open("settings.json").read(), zipfile.ZIP_DEFLATED)
# A local entry the central directory does not list.
with zipfile.ZipFile("full.zip", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("clean.txt", "nothing here\n")
    z.writestr("hidden.json", open("settings.json").read())
    z.writestr("other.txt", "nothing here either\n")
raw = open("full.zip", "rb").read()
size, offset = struct.unpack("<II", raw[-10:-2])
cd, kept, pos = raw[offset:offset + size], [], 0
while pos < len(cd):
    n, x, c = struct.unpack("<HHH", cd[pos + 28:pos + 34])
    entry = cd[pos:pos + 46 + n + x + c]
    if cd[pos + 46:pos + 46 + n] != b"hidden.json":
        kept.append(entry)
    pos += 46 + n + x + c
new_cd = b"".join(kept)
eocd = b"PK\x05\x06" + struct.pack("<HHHHIIH", 0, 0, len(kept), len(kept), len(new_cd), offset, 0)
open("../dist/hidden.zip", "wb").write(raw[:offset] + new_cd + eocd)
assert [i.filename for i in zipfile.ZipFile("../dist/hidden.zip").infolist()] == ["clean.txt", "other.txt"]
PY
        tar --sparse -cf ../dist/sparse.tar sparse.img
        tar -cf first.tar clean.txt && tar -cf second.tar settings.json
        cat first.tar second.tar > ../dist/two.tar
        for c in gzip bzip2 xz zstd; do
            {{ "$c" -c clean.txt; cat secret.txt; }} > "../dist/trailing.$c"
        done
        {{ gzip -c clean.txt; gzip -c settings.json; }} > ../dist/members.gz
        tar -cf - settings.json | gzip -9 > inner.tar.gz
        {{ cat clean.txt; cat inner.tar.gz; }} > ../dist/prefixed.tgz
        "#
    ));
    t.found("dist/sparse.tar", "dist/sparse.tar!sparse.img", "");
    t.found("dist/odd.tar", "dist/odd.tar!odd.cfg", "");
    t.found("dist/two.tar", "dist/two.tar@", "!settings.json");
    for c in ["gzip", "bzip2", "xz", "zstd"] {
        let file = format!("dist/trailing.{c}");
        t.found(&file, &format!("{file}@"), "");
    }
    t.found("dist/members.gz", "dist/members.gz", "");
    t.found("dist/hidden.zip", "dist/hidden.zip@", "!hidden.json");
    t.found("dist/dir.zip", "dist/dir.zip!data/", "");
    t.found("dist/prefixed.tgz", "dist/prefixed.tgz@", "!settings.json");
}

#[test]
fn a_secret_source_linked_into_the_tree_is_found() {
    let t = Tree::new();
    std::fs::hard_link(&t.secret, t.path("dist/hard-link")).unwrap();
    std::os::unix::fs::symlink(&t.secret, t.path("dist/sym-link")).unwrap();
    let f = t.scan(&["dist"]);
    assert_eq!(code(&f), 1, "{}{}", f.out(), f.err());
    for name in [
        "dist/hard-link:0: deploy_token (raw)",
        "dist/sym-link:0: deploy_token (raw)",
    ] {
        assert!(f.out().contains(name), "{name}: {}", f.out());
    }
    // The source itself, in a scanned tree, ships the value too.
    let f = t.scan(&["secrets"]);
    assert_eq!(code(&f), 1, "{}{}", f.out(), f.err());
    assert!(
        f.out()
            .contains("secrets/deploy_token:0: deploy_token (raw)"),
        "{}",
        f.out()
    );
}

/// Item 13: a key encoded with `base64 -w 76` (a PEM body, a Kubernetes secret
/// manifest) is cut by newlines wherever the columns fall; it is found at every
/// alignment of the value inside the encoded bytes. Relies on the redactor's
/// piece rule (no run of 12 bytes of a secret form is let through), shared by
/// the scanner.
#[test]
fn base64_wrapped_at_76_columns_is_found() {
    let t = Tree::new();
    // Long enough to span two lines of the encoding.
    let key: String = (0..96)
        .map(|i| {
            char::from(
                b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                    [(i * 37 + 11) % 62],
            )
        })
        .collect();
    let source = secret_file(&t.path("secrets"), "signing_key", key.as_bytes());
    for prefix in ["", "k", "ke", "key: ", "-----BEGIN KEY-----\n"] {
        let file = t.path(&format!("dist/wrapped-{}.yaml", prefix.len()));
        std::fs::write(t.path("work/plain.txt"), format!("{prefix}{key}\n")).unwrap();
        t.work(&format!(
            "{{ echo 'data: |'; base64 -w 76 plain.txt | sed 's/^/  /'; }} > {}",
            file.display()
        ));
        let mut cmd = shroud();
        cmd.current_dir(t.root.path())
            .args(["scan", "--secret-file"])
            .arg(&source)
            .arg(&file);
        let f = run_with_input(&mut cmd, b"", Duration::from_secs(120));
        assert_eq!(code(&f), 1, "prefix {prefix:?}: {}{}", f.out(), f.err());
        assert!(f.out().contains("signing_key"), "{}", f.out());
    }
}

/// A value as programs print it (issue 21 item 2): the scan reads the files
/// through the redactor's decoded views, so a value escaped, quoted, encoded
/// or wrapped by a real tool is a finding named after the secret, at the
/// offset of the first of its printed bytes.
mod views {
    use super::*;

    /// Secrets with the characters that make each producer escape.
    const QUOTED: &[u8] = b"Xq7'Lm2\"Vz9\\Rt4 Kp3$Wn8&Bc5<Hd6";
    const WRAPPED: &[u8] = b"7fQ2-zP9vL4xK8mR3tW6yN1bC5hJ0gD";

    /// Runs `script` (bash, in `work/`, `$V` holding the secret file's path)
    /// to write `dist/NAME`, scans it with the secret `token` = `value`, and
    /// returns the findings of `token` as (offset, encoding) and the file.
    fn printed(value: &[u8], name: &str, script: &str) -> (Vec<(u64, String)>, Vec<u8>) {
        let t = Tree::new();
        let source = secret_file(&t.path("secrets"), "token", value);
        let file = t.path(&format!("dist/{name}"));
        t.work(&format!(
            "V={}; OUT={}; {script}",
            source.display(),
            file.display()
        ));
        let bytes = std::fs::read(&file).unwrap();
        let mut cmd = shroud();
        cmd.current_dir(t.root.path())
            .args(["scan", "--secret-file"])
            .arg(&source)
            .arg(&file);
        let f = run_with_input(&mut cmd, b"", Duration::from_secs(120));
        assert!(
            !contains(&f.stdout, value) && !contains(&f.stderr, value),
            "{name}: the value was printed"
        );
        assert_eq!(
            code(&f),
            1,
            "{name}: not found in {:?}\n{}{}",
            String::from_utf8_lossy(&bytes),
            f.out(),
            f.err()
        );
        let found = f
            .out()
            .lines()
            .filter_map(|l| l.split_once(": token ("))
            .filter_map(|(head, enc)| {
                let (_, offset) = head.rsplit_once(':')?;
                Some((offset.parse().ok()?, enc.trim_end_matches(')').to_string()))
            })
            .collect();
        (found, bytes)
    }

    /// The one finding starts where `start` (the first printed bytes of the
    /// value) is in the file.
    fn found_at(found: &[(u64, String)], bytes: &[u8], start: &[u8], what: &str) {
        let at = bytes
            .windows(start.len())
            .position(|w| w == start)
            .unwrap_or_else(|| panic!("{what}: {start:?} not in the file"));
        assert_eq!(
            found.iter().map(|f| f.0).collect::<Vec<_>>(),
            [at as u64],
            "{what}: {found:?} in {:?}",
            String::from_utf8_lossy(bytes)
        );
    }

    fn python(code: &str) -> String {
        require_tool("python3", "scripts/test --prereqs (python3)");
        format!("python3 -c '{code}' \"$V\" > \"$OUT\"")
    }

    /// Python's `repr` of a dict (`print(settings)`): `\'`, `\\`, and `\x1b`
    /// for a control character.
    #[test]
    fn a_python_repr_is_found() {
        let mut value = QUOTED.to_vec();
        value.insert(10, 0x1b);
        let (found, bytes) = printed(
            &value,
            "settings.log",
            &python("import sys; print({\"password\": open(sys.argv[1]).read()})"),
        );
        found_at(&found, &bytes, b"Xq7\\'Lm2", "repr");
    }

    /// `json.dumps` with its default `ensure_ascii` (`\u00e9`), and PHP's
    /// `json_encode` (`\/`).
    #[test]
    fn a_json_escape_is_found() {
        let value = "Xq7\"Lm2\\Vz9/R\u{e9}t4\tKp3W\u{263a}n8".as_bytes();
        let (found, bytes) = printed(
            value,
            "dump.json",
            &python("import json, sys; print(json.dumps({\"k\": open(sys.argv[1]).read()}))"),
        );
        found_at(&found, &bytes, b"Xq7\\\"Lm2", "json.dumps");
        require_tool("php", "scripts/test --prereqs (php-cli)");
        let (found, bytes) = printed(
            value,
            "dump.json",
            r#"php -r 'echo json_encode(["k" => file_get_contents($argv[1])]), "\n";' "$V" > "$OUT""#,
        );
        found_at(&found, &bytes, b"Xq7\\\"Lm2", "json_encode");
    }

    /// `bash -x` (`'\''`) and `printf %q` (a backslash before `$`, space, `&`).
    #[test]
    fn shell_quoting_is_found() {
        let (found, bytes) = printed(
            QUOTED,
            "xtrace.log",
            r#"v=$(cat "$V"); ( set -x; : "$v" ) 2> "$OUT""#,
        );
        found_at(&found, &bytes, b"Xq7'\\''Lm2", "bash -x");
        let (found, bytes) = printed(
            QUOTED,
            "printf-q.log",
            r#"v=$(cat "$V"); printf 'token=%q\n' "$v" > "$OUT""#,
        );
        found_at(&found, &bytes, b"Xq7\\'Lm2", "printf %q");
    }

    /// HTML entities: Python's `html.escape` (`&#x27;`, `&quot;`) and PHP 8's
    /// `htmlspecialchars` (`&#039;`).
    #[test]
    fn entities_are_found() {
        let (found, bytes) = printed(
            QUOTED,
            "page.html",
            &python("import html, sys; print(\"<p>\" + html.escape(open(sys.argv[1]).read()) + \"</p>\")"),
        );
        found_at(&found, &bytes, b"Xq7&#x27;Lm2", "html.escape");
        require_tool("php", "scripts/test --prereqs (php-cli)");
        let (found, bytes) = printed(
            QUOTED,
            "page.html",
            r#"php -r 'echo "<p>", htmlspecialchars(file_get_contents($argv[1])), "</p>\n";' "$V" > "$OUT""#,
        );
        found_at(&found, &bytes, b"Xq7&#039;Lm2", "htmlspecialchars");
    }

    /// A query string: `urllib.parse.quote_plus` (`+` for a space, `%27`).
    #[test]
    fn percent_encoding_is_found() {
        let (found, bytes) = printed(
            QUOTED,
            "access.log",
            &python("import sys, urllib.parse as u; print(\"GET /login?pw=\" + u.quote_plus(open(sys.argv[1]).read()))"),
        );
        found_at(&found, &bytes, b"Xq7%27Lm2", "quote_plus");
    }

    /// `base64 -w 64` of a file holding the value after a prefix, indented
    /// as a YAML block: at every alignment, also where the line break cuts
    /// the value's encoding into parts shorter than a piece.
    #[test]
    fn wrapped_base64_in_a_yaml_block_is_found() {
        for pad in 36..48 {
            let (found, _) = printed(
                WRAPPED,
                "secret.yaml",
                &format!(
                    r#"{{ head -c {pad} /dev/zero | tr '\0' 'p'; cat "$V"; }} > plain
                    {{ echo 'data: |'; base64 -w 64 plain | sed 's/^/  /'; }} > "$OUT""#
                ),
            );
            assert_eq!(found.len(), 1, "prefix of {pad} bytes: {found:?}");
        }
    }

    /// Ordinary text (the packages' documentation, archives included) has no
    /// finding with the views read, for many random secrets.
    #[test]
    fn ordinary_text_has_no_findings() {
        let t = Tree::new();
        let alnum = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
        let specials = b"'\"\\$ &<%+";
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let dir = t.path("many");
        std::fs::create_dir(&dir).unwrap();
        for i in 0..1000 {
            let len = 16 + next(17);
            let mut v: Vec<u8> = (0..len).map(|_| alnum[next(alnum.len())]).collect();
            let at = 1 + next(len - 2);
            v[at] = specials[next(specials.len())];
            std::fs::write(dir.join(format!("s{i}")), v).unwrap();
        }
        // About 20 MB of the documentation, in a fixed order.
        let mut docs: Vec<PathBuf> = std::fs::read_dir("/usr/share/doc")
            .expect("/usr/share/doc is readable")
            .map(|e| e.unwrap().path())
            .collect();
        docs.sort();
        let mut paths = Vec::new();
        let mut total = 0u64;
        for d in docs {
            if total > 20 << 20 {
                break;
            }
            let out = Command::new("du").arg("-sb").arg(&d).output().unwrap();
            let size: u64 = String::from_utf8_lossy(&out.stdout)
                .split_whitespace()
                .next()
                .and_then(|s| s.parse().ok())
                .unwrap_or(0);
            total += size;
            paths.push(d);
        }
        assert!(total > 10 << 20, "too little documentation: {total} bytes");
        let mut cmd = shroud();
        cmd.args(["scan", "--detect", "none", "--secrets-dir"])
            .arg(&dir)
            .args(&paths);
        let f = run_with_input(&mut cmd, b"", Duration::from_secs(600));
        assert!(
            f.out()
                .contains(": 0 occurrences of known secrets in 0 files"),
            "{}{}",
            f.out(),
            f.err()
        );
        assert_ne!(code(&f), 1, "{}", f.out());
    }
}
