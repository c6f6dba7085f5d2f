//! `shroud scan` inside archives made by the real tools (`tar`, `gzip`, `bzip2`,
//! `xz`, `zstd`, `zip`, Python's `zipfile`) and a `docker save` of an image built
//! here: every format found by content and named with `!` paths; archive bombs
//! end as incomplete within a bounded time and memory.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use base64::Engine as _;
use shroud_e2e::process::run_measured;
use shroud_e2e::*;

const SECRET: &[u8] = b"e2e-archived-deploy-token-5f2c9a";

fn sh(dir: &Path, script: &str) {
    for tool in ["tar", "gzip", "bzip2", "xz", "zstd", "zip", "python3"] {
        require_tool(
            tool,
            "apt-get install tar gzip bzip2 xz-utils zstd zip python3",
        );
    }
    let out = Command::new("bash")
        .args(["-euo", "pipefail", "-c", script])
        .current_dir(dir)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{script}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

struct Tree {
    root: tempfile::TempDir,
    secret: PathBuf,
}

impl Tree {
    fn new() -> Tree {
        let root = tempfile::tempdir().unwrap();
        let secret = secret_file(root.path(), "deploy_token", SECRET);
        std::fs::create_dir(root.path().join("dist")).unwrap();
        std::fs::create_dir(root.path().join("work")).unwrap();
        Tree { root, secret }
    }

    fn path(&self, rel: &str) -> PathBuf {
        self.root.path().join(rel)
    }

    fn work(&self, script: &str) {
        sh(&self.path("work"), script);
    }

    fn scan(&self, extra: &[&str], paths: &[&str]) -> Finished {
        let mut cmd = shroud();
        cmd.current_dir(self.root.path())
            .args(["scan", "--secret-file"])
            .arg(&self.secret)
            .args(extra)
            .args(paths);
        run_with_input(&mut cmd, b"", Duration::from_secs(120))
    }
}

fn code(f: &Finished) -> i32 {
    f.status.code().expect("exited normally")
}

/// The finding lines, `NAME:OFFSET: SECRET (ENCODING)`, as (NAME, OFFSET, rest).
fn findings(out: &str) -> Vec<(String, u64, String)> {
    out.lines()
        .filter(|l| !l.starts_with("scanned "))
        .map(|l| {
            let (head, what) = l.rsplit_once(": ").unwrap();
            let (name, offset) = head.rsplit_once(':').unwrap();
            (name.to_string(), offset.parse().unwrap(), what.to_string())
        })
        .collect()
}

#[test]
fn secrets_inside_nested_archives_of_every_format_are_found_and_named() {
    let t = Tree::new();
    let secret = String::from_utf8(SECRET.to_vec()).unwrap();
    let b64 = base64::engine::general_purpose::STANDARD.encode(format!("token:{secret}"));
    std::fs::write(t.path("work/secret.txt"), &secret).unwrap();
    std::fs::write(t.path("work/b64.txt"), &b64).unwrap();
    // A member larger than a read chunk with the value across the 1 MiB boundary.
    let mut big = vec![b'.'; 3 << 20];
    let at = (1 << 20) - 9;
    big[at..at + SECRET.len()].copy_from_slice(SECRET);
    std::fs::write(t.path("work/big.img"), &big).unwrap();
    t.work(
        r#"
        mkdir -p jar/META-INF lib wheel/pkg nested data
        printf '{"token": "%s"}' "$(cat secret.txt)" > jar/META-INF/settings.json
        echo 'Main-Class: app' > jar/META-INF/MANIFEST.MF
        (cd jar && zip -qr ../lib/app.jar .)
        tar -cf - lib | gzip -9 > ../dist/app.tar.gz
        cp b64.txt data/
        tar -cJf ../dist/logs.tar.xz data
        cp secret.txt nested/deep.cfg
        tar -cjf inner.tar.bz2 nested
        tar -cf - inner.tar.bz2 | zstd -q -19 -o ../dist/bundle.tar.zst
        printf 'KEY = "%s"\n' "$(cat secret.txt)" > wheel/pkg/settings.py
        (cd wheel && zip -qr ../../dist/pkg-1.0-py3-none-any.whl .)
        cp ../dist/pkg-1.0-py3-none-any.whl ../dist/release.dat
        bzip2 -c secret.txt > ../dist/notes.txt.bz2
        tar -cf ../dist/big.tar big.img
        python3 -c 'import zipfile
with zipfile.ZipFile("../dist/app.apk", "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr("res/raw/config.xml", "<k>" + open("secret.txt").read() + "</k>")'
        echo 'nothing here' > clean.txt
        tar -czf ../dist/clean.tgz clean.txt
        "#,
    );
    let f = t.scan(&[], &["dist"]);
    assert_eq!(code(&f), 1, "{}{}", f.out(), f.err());
    assert!(
        !contains(&f.stdout, SECRET) && !contains(&f.stderr, SECRET),
        "the value was printed"
    );
    let found = findings(&f.out());
    let names: Vec<&str> = found.iter().map(|f| f.0.as_str()).collect();
    for want in [
        "dist/app.tar.gz!lib/app.jar!META-INF/settings.json",
        "dist/logs.tar.xz!data/b64.txt",
        "dist/bundle.tar.zst!inner.tar.bz2!nested/deep.cfg",
        "dist/pkg-1.0-py3-none-any.whl!pkg/settings.py",
        "dist/release.dat!pkg/settings.py",
        "dist/notes.txt.bz2",
        "dist/app.apk!res/raw/config.xml",
        "dist/big.tar!big.img",
    ] {
        assert!(names.contains(&want), "{want} not found in:\n{}", f.out());
    }
    assert!(!names.iter().any(|n| n.contains("clean")), "{}", f.out());
    assert_eq!(found.len(), 8, "each occurrence once:\n{}", f.out());
    let by_name = |n: &str| found.iter().find(|f| f.0 == n).unwrap();
    assert_eq!(
        by_name("dist/app.tar.gz!lib/app.jar!META-INF/settings.json"),
        &(
            "dist/app.tar.gz!lib/app.jar!META-INF/settings.json".into(),
            11,
            "deploy_token (raw)".into()
        )
    );
    assert_eq!(
        by_name("dist/logs.tar.xz!data/b64.txt").2,
        "deploy_token (base64)"
    );
    assert_eq!(by_name("dist/big.tar!big.img").1, at as u64);
    assert!(
        f.out().contains("scanned 9 files"),
        "top-level files are counted: {}",
        f.out()
    );

    let clean = t.scan(&[], &["dist/clean.tgz"]);
    assert_eq!(code(&clean), 0, "{}{}", clean.out(), clean.err());
}

#[test]
fn each_layer_of_a_docker_save_and_an_oci_layout_is_scanned() {
    let docker = require_tool("docker", "scripts/test --prereqs (docker.io)");
    let t = Tree::new();
    let image = format!(
        "shroud-e2e-scan-{}-{}:1",
        std::process::id(),
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    );
    std::fs::write(t.path("work/clean.txt"), b"a clean first layer\n").unwrap();
    std::fs::write(
        t.path("work/config.json"),
        format!("{{\"token\": \"{}\"}}\n", String::from_utf8_lossy(SECRET)),
    )
    .unwrap();
    std::fs::write(
        t.path("work/Dockerfile"),
        "FROM scratch\nCOPY clean.txt /app/clean.txt\nCOPY config.json /app/config.json\n",
    )
    .unwrap();
    struct Rmi(PathBuf, String);
    impl Drop for Rmi {
        fn drop(&mut self) {
            let _ = Command::new(&self.0).args(["rmi", "-f", &self.1]).output();
        }
    }
    let docker_run = |args: &[&str]| {
        let out = Command::new(&docker)
            .args(args)
            .current_dir(t.path("work"))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "docker {args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    };
    docker_run(&["build", "--network", "host", "-q", "-t", &image, "."]);
    let _rmi = Rmi(docker.clone(), image.clone());
    docker_run(&["save", "-o", "../dist/image.tar", &image]);

    let f = t.scan(&[], &["dist/image.tar"]);
    assert_eq!(code(&f), 1, "{}{}", f.out(), f.err());
    let found = findings(&f.out());
    assert_eq!(found.len(), 1, "{}", f.out());
    let (name, offset, what) = &found[0];
    assert!(
        name.starts_with("dist/image.tar!") && name.ends_with("!app/config.json"),
        "{name}"
    );
    assert_eq!((*offset, what.as_str()), (11, "deploy_token (raw)"));

    // The same layers as an OCI image layout (gzip-compressed blobs named by
    // digest, as registries and skopeo write them), as a directory and a tarball.
    t.work(
        r#"
        mkdir saved oci oci/blobs oci/blobs/sha256
        tar -xf ../dist/image.tar -C saved
        layers=""
        for l in $(python3 -c 'import json; print(" ".join(json.load(open("saved/manifest.json"))[0]["Layers"]))'); do
            gzip -9 -c "saved/$l" > layer.gz
            d=$(sha256sum layer.gz | cut -d" " -f1)
            mv layer.gz "oci/blobs/sha256/$d"
            layers="$layers{\"mediaType\":\"application/vnd.oci.image.layer.v1.tar+gzip\",\"digest\":\"sha256:$d\",\"size\":$(stat -c %s oci/blobs/sha256/$d)},"
        done
        cfg=$(python3 -c 'import json; print(json.load(open("saved/manifest.json"))[0]["Config"])')
        c=$(sha256sum "saved/$cfg" | cut -d" " -f1)
        cp "saved/$cfg" "oci/blobs/sha256/$c"
        printf '{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json","config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%s},"layers":[%s]}' \
            "$c" "$(stat -c %s oci/blobs/sha256/$c)" "${layers%,}" > manifest.json
        m=$(sha256sum manifest.json | cut -d" " -f1)
        mv manifest.json "oci/blobs/sha256/$m"
        printf '{"schemaVersion":2,"manifests":[{"mediaType":"application/vnd.oci.image.manifest.v1+json","digest":"sha256:%s","size":%s}]}' \
            "$m" "$(stat -c %s oci/blobs/sha256/$m)" > oci/index.json
        echo '{"imageLayoutVersion":"1.0.0"}' > oci/oci-layout
        tar -cf ../dist/image-oci.tar -C oci .
        "#,
    );
    let dir = t.scan(&[], &["work/oci"]);
    assert_eq!(code(&dir), 1, "{}{}", dir.out(), dir.err());
    let found = findings(&dir.out());
    assert_eq!(found.len(), 1, "{}", dir.out());
    assert!(
        found[0].0.starts_with("work/oci/blobs/sha256/")
            && found[0].0.ends_with("!app/config.json"),
        "{}",
        found[0].0
    );
    let tarred = t.scan(&[], &["dist/image-oci.tar"]);
    assert_eq!(code(&tarred), 1, "{}{}", tarred.out(), tarred.err());
    let found = findings(&tarred.out());
    assert_eq!(found.len(), 1, "{}", tarred.out());
    assert!(
        found[0].0.starts_with("dist/image-oci.tar!./blobs/sha256/")
            && found[0].0.ends_with("!app/config.json"),
        "{}",
        found[0].0
    );
}

#[test]
fn a_gzip_bomb_and_a_zip_bomb_end_incomplete_quickly_in_bounded_memory() {
    let t = Tree::new();
    // 1 GiB of zeros in about 1 MiB, gzipped twice (a classic nested bomb), and
    // a zip of ten 200 MiB entries of zeros.
    t.work(
        r#"
        head -c 1G /dev/zero | gzip -9 | gzip -9 > ../dist/bomb.gz
        python3 -c 'import zipfile
with zipfile.ZipFile("../dist/bomb.zip", "w", zipfile.ZIP_DEFLATED, compresslevel=9) as z:
    zeros = bytes(1 << 20)
    for i in range(10):
        with z.open("payload/%d.bin" % i, "w") as f:
            for _ in range(200):
                f.write(zeros)'
        "#,
    );
    for (bomb, member) in [
        ("dist/bomb.gz", "dist/bomb.gz"),
        ("dist/bomb.zip", "dist/bomb.zip!payload/0.bin"),
    ] {
        let m = run_measured(
            shroud()
                .current_dir(t.root.path())
                .args(["scan", "--secret-file"])
                .arg(&t.secret)
                .arg(bomb),
            Duration::from_secs(60),
        );
        let f = &m.finished;
        assert_eq!(code(f), 2, "{bomb}: {}{}", f.out(), f.err());
        assert!(
            f.err().contains(&format!(
                "shroud: scan: {member}: incomplete: compressed data expanded more than 250 times (--max-ratio)"
            )),
            "{bomb}: {}",
            f.err()
        );
        assert!(f.out().contains("1 incomplete"), "{}", f.out());
        // Generous bounds (a debug build on a loaded machine): a bomb that were
        // expanded would take minutes and gigabytes.
        assert!(
            m.elapsed < Duration::from_secs(20),
            "{bomb}: {:?}",
            m.elapsed
        );
        assert!(
            m.peak_rss_kib < 128 << 10,
            "{bomb}: peak RSS {} KiB",
            m.peak_rss_kib
        );
        eprintln!(
            "{bomb}: incomplete after {:?}, peak RSS {} KiB",
            m.elapsed, m.peak_rss_kib
        );
    }
}

#[test]
fn every_archive_limit_is_configurable_and_names_the_file() {
    let t = Tree::new();
    t.work(
        r#"
        mkdir many && for i in 1 2 3 4 5; do echo "file $i" > many/$i.txt; done
        tar -cf ../dist/many.tar many
        head -c 3M /dev/urandom | base64 > noise.txt
        xz -0 -c noise.txt > ../dist/noise.txt.xz
        mkdir jar && echo hi > jar/a.txt && (cd jar && zip -q ../app.jar a.txt)
        tar -czf ../dist/app.tgz app.jar
        "#,
    );
    let cases: [(&[&str], &str, &str); 3] = [
        (
            &["--max-entries", "3"],
            "dist/many.tar",
            "dist/many.tar: incomplete: more than 3 archive entries (--max-entries)",
        ),
        (
            &["--max-bytes", "1M"],
            "dist/noise.txt.xz",
            "dist/noise.txt.xz: incomplete: more than 1048576 bytes decompressed (--max-bytes)",
        ),
        (
            &["--max-depth", "2"],
            "dist/app.tgz",
            "dist/app.tgz!app.jar: incomplete: archives nested more than 2 deep (--max-depth)",
        ),
    ];
    for (flags, file, message) in cases {
        let f = t.scan(flags, &[file]);
        assert_eq!(code(&f), 2, "{flags:?}: {}{}", f.out(), f.err());
        assert!(f.err().contains(message), "{flags:?}: {}", f.err());
        // With the default limits the same files are scanned completely.
        let ok = t.scan(&[], &[file]);
        assert_eq!(code(&ok), 0, "{file}: {}{}", ok.out(), ok.err());
    }
    let bad = t.scan(&["--max-bytes", "lots"], &["dist"]);
    assert_eq!(code(&bad), 64, "{}", bad.err());
    assert!(bad.err().contains("--max-bytes"), "{}", bad.err());

    // A secret found before a limit is hit still fails the gate as found (1).
    std::fs::write(t.path("work/many/0.txt"), SECRET).unwrap();
    t.work("tar -cf ../dist/many.tar many/0.txt many");
    let f = t.scan(&["--max-entries", "2"], &["dist/many.tar"]);
    assert_eq!(code(&f), 1, "{}{}", f.out(), f.err());
    assert!(
        f.out()
            .contains("dist/many.tar!many/0.txt:0: deploy_token (raw)"),
        "{}",
        f.out()
    );

    // A corrupt archive is unreadable, not clean.
    std::fs::write(t.path("dist/broken.gz"), [0x1f, 0x8b, 8, 0, 1, 2, 3]).unwrap();
    let f = t.scan(&[], &["dist/broken.gz"]);
    assert_eq!(code(&f), 2, "{}{}", f.out(), f.err());
    assert!(
        f.err().contains("cannot read dist/broken.gz"),
        "{}",
        f.err()
    );
}

/// A value in a name is a leak too: a tar member, a tar directory and a zip entry
/// stored under a name holding the value (their content clean), and a file whose
/// path in the scanned tree holds it. Each is reported as `NAME:name: …` with the
/// value masked in the name; the same archives with clean names pass.
#[test]
fn a_value_in_an_entry_name_or_a_path_is_found() {
    let t = Tree::new();
    let secret = String::from_utf8(SECRET.to_vec()).unwrap();
    let b64 = base64::engine::general_purpose::URL_SAFE.encode(SECRET);
    t.work(&format!(
        r#"
        mkdir -p conf "d-{b64}" clean
        echo 'port = 8080' > "conf/{secret}.toml"
        echo 'cache' > "d-{b64}/x"
        tar -cf ../dist/named.tar conf "d-{b64}"
        python3 -c 'import zipfile
with zipfile.ZipFile("../dist/named.zip", "w") as z:
    z.writestr("keys/{secret}", "nothing secret in here")'
        mkdir -p "../dist/{secret}" && echo 'plain' > "../dist/{secret}/readme.txt"
        echo 'port = 8080' > clean/app.toml
        tar -cf ../clean.tar clean
        "#
    ));
    let f = t.scan(&[], &["dist"]);
    assert_eq!(code(&f), 1, "{}{}", f.out(), f.err());
    assert!(
        !contains(&f.stdout, SECRET) && !contains(&f.stderr, SECRET),
        "the value was printed"
    );
    let out = f.out();
    let mut lines: Vec<&str> = out.lines().filter(|l| l.contains(":name: ")).collect();
    lines.sort();
    assert_eq!(
        lines,
        [
            "dist/[REDACTED]/readme.txt:name: deploy_token (raw)",
            "dist/named.tar!conf/[REDACTED].toml:name: deploy_token (raw)",
            "dist/named.tar!d-[REDACTED]/:name: deploy_token (base64)",
            "dist/named.tar!d-[REDACTED]/x:name: deploy_token (base64)",
            "dist/named.zip!keys/[REDACTED]:name: deploy_token (raw)",
        ],
        "{}",
        f.out()
    );
    assert!(
        f.out()
            .contains("5 occurrences of known secrets in 3 files"),
        "{}",
        f.out()
    );

    let clean = t.scan(&[], &["clean.tar"]);
    assert_eq!(code(&clean), 0, "{}{}", clean.out(), clean.err());
}
