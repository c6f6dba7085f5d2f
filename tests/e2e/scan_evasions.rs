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
