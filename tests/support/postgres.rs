//! A private PostgreSQL 15 cluster on a free 127.0.0.1 port, run as the
//! `postgres` user from a temporary data directory; stopped on drop. Password
//! (scram) authentication over TCP so that credential checks are real; trust on
//! the cluster's own Unix socket for the test's admin queries.

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::free_port;
use crate::openbao::OpenBao;

const BIN: &str = "/usr/lib/postgresql/15/bin";

/// The superuser password of every cluster started here.
pub const SUPERUSER_PASSWORD: &str = "shroud-test-superuser";

/// A running cluster.
#[derive(Debug)]
pub struct Postgres {
    /// TCP port on 127.0.0.1.
    pub port: u16,
    dir: tempfile::TempDir,
}

fn as_postgres(program: &str) -> Command {
    let mut c = Command::new("runuser");
    c.args(["-u", "postgres", "--", &format!("{BIN}/{program}")]);
    c
}

impl Postgres {
    /// initdb + pg_ctl start; waits until it accepts connections.
    pub fn start() -> Postgres {
        assert!(
            Path::new(BIN).join("initdb").exists(),
            "PostgreSQL 15 is missing: apt-get install postgresql-15 (scripts/test does)"
        );
        let dir = tempfile::tempdir().unwrap();
        std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
        let pw = dir.path().join("pw");
        std::fs::write(&pw, SUPERUSER_PASSWORD).unwrap();
        std::fs::set_permissions(&pw, std::fs::Permissions::from_mode(0o644)).unwrap();
        let data = dir.path().join("data");
        let sock = dir.path().join("sock");
        for d in [&data, &sock] {
            std::fs::create_dir(d).unwrap();
            let s = Command::new("chown")
                .arg("postgres:postgres")
                .arg(d)
                .status()
                .unwrap();
            assert!(s.success());
        }
        let out = as_postgres("initdb")
            .args([
                "-D",
                data.to_str().unwrap(),
                "-U",
                "postgres",
                "--auth-local=trust",
                "--auth-host=scram-sha-256",
            ])
            .arg(format!("--pwfile={}", pw.display()))
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "initdb: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let out = as_postgres("pg_ctl")
            .args(["-D", data.to_str().unwrap(), "-w", "-t", "30", "-l"])
            .arg(sock.join("pg.log"))
            .arg("-o")
            .arg(format!(
                "-p {port} -k {} -c listen_addresses=127.0.0.1 -c fsync=off",
                sock.display()
            ))
            .arg("start")
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "pg_ctl start: {}{}",
            String::from_utf8_lossy(&out.stderr),
            std::fs::read_to_string(sock.join("pg.log")).unwrap_or_default()
        );
        Postgres { port, dir }
    }

    fn sock(&self) -> PathBuf {
        self.dir.path().join("sock")
    }

    /// Runs SQL as the superuser over the Unix socket; returns the unaligned output.
    pub fn admin(&self, sql: &str) -> String {
        let out = Command::new("runuser")
            .args(["-u", "postgres", "--", "psql", "-X", "-At", "-h"])
            .arg(self.sock())
            .args(["-p", &self.port.to_string(), "-d", "postgres", "-c", sql])
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "psql: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_string()
    }

    /// Turns TLS on (ssl = on, reloaded) with the PEM certificate and key,
    /// copied into the data directory for the postgres user (mode 0600).
    pub fn enable_tls(&self, cert: &Path, key: &Path) {
        let data = self.dir.path().join("data");
        for (from, name) in [(cert, "server.crt"), (key, "server.key")] {
            let to = data.join(name);
            std::fs::copy(from, &to).unwrap();
            std::fs::set_permissions(&to, std::os::unix::fs::PermissionsExt::from_mode(0o600))
                .unwrap();
            let ok = Command::new("chown")
                .arg("postgres:postgres")
                .arg(&to)
                .status()
                .unwrap();
            assert!(ok.success(), "chown {}", to.display());
        }
        self.admin("alter system set ssl_cert_file = 'server.crt'");
        self.admin("alter system set ssl_key_file = 'server.key'");
        self.admin("alter system set ssl = on");
        self.admin("select pg_reload_conf()");
        crate::until(std::time::Duration::from_secs(30), "ssl = on", || {
            (self.admin("show ssl") == "on").then_some(())
        });
    }

    /// True when `user`/`password` can log in over TCP (password checked).
    pub fn can_login(&self, user: &str, password: &str) -> bool {
        can_login_at(self.port, user, password)
    }

    /// True when a role of that name exists.
    pub fn role_exists(&self, role: &str) -> bool {
        self.admin(&format!(
            "select count(*) from pg_roles where rolname = '{}'",
            role.replace('\'', "''")
        )) == "1"
    }

    /// Names of the roles Vault created (`v-…`).
    pub fn vault_roles(&self) -> Vec<String> {
        self.admin("select rolname from pg_roles where rolname like 'v-%' order by 1")
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Enables the database secrets engine on `bao` for this cluster with role
    /// `app` (`database/creds/app`).
    pub fn configure_vault(&self, bao: &OpenBao, default_ttl: &str, max_ttl: &str) {
        let _ = bao.bao_as(&bao.root_token, &["secrets", "enable", "database"]);
        bao.bao(&[
            "write",
            "database/config/pg",
            "plugin_name=postgresql-database-plugin",
            &format!(
                "connection_url=postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable",
                self.port
            ),
            "allowed_roles=app",
            "username=postgres",
            &format!("password={SUPERUSER_PASSWORD}"),
        ]);
        bao.bao(&[
            "write",
            "database/roles/app",
            "db_name=pg",
            "creation_statements=CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
            &format!("default_ttl={default_ttl}"),
            &format!("max_ttl={max_ttl}"),
        ]);
    }
}

/// True when `user`/`password` can log in to the cluster on 127.0.0.1:`port`
/// over TCP (password checked); usable from a thread without the [`Postgres`].
pub fn can_login_at(port: u16, user: &str, password: &str) -> bool {
    Command::new("psql")
        .args([
            "-X",
            "-At",
            "-h",
            "127.0.0.1",
            "-p",
            &port.to_string(),
            "-U",
            user,
            "-d",
            "postgres",
            "-c",
            "select 1",
        ])
        .env("PGPASSWORD", password)
        .env("PGCONNECT_TIMEOUT", "5")
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

impl Drop for Postgres {
    fn drop(&mut self) {
        let _ = as_postgres("pg_ctl")
            .args([
                "-D",
                self.dir.path().join("data").to_str().unwrap(),
                "-m",
                "immediate",
                "stop",
            ])
            .output();
    }
}
