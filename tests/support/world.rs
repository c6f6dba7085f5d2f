//! The world most agent tests run in: a real OpenBao (kv2 `secret/app`, the
//! shroud policy, AppRole), optionally a real PostgreSQL with the database
//! engine, a real tmpfs for the output, and a work directory; plus starting the
//! agent and checking that nothing of shroud's survives.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};

use crate::process::{Guarded, SpawnGuarded as _};
use std::sync::Mutex;

use crate::openbao::{OpenBao, SHROUD_POLICY};
use crate::postgres::Postgres;
use crate::{shroud, Tmpfs};

/// The tests below measure timing (leases of a few seconds, one-second clean-up);
/// running them one at a time keeps a 2-core machine from skewing that.
pub static SERIAL: Mutex<()> = Mutex::new(());

/// Holds the timing-sensitive tests of one binary to one at a time.
pub fn serial() -> std::sync::MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// The kv2 value at `secret/app` (field `api_key`).
pub const API_KEY: &str = "kv2-api-key-0f9e8d7c6b5a";

/// One test's servers and directories.
#[derive(Debug)]
pub struct World {
    /// The OpenBao server.
    pub bao: OpenBao,
    /// PostgreSQL, when asked for.
    pub pg: Option<Postgres>,
    /// The output tmpfs.
    pub out: Tmpfs,
    /// Config, credentials and logs.
    pub work: tempfile::TempDir,
    /// The database engine's (default_ttl, max_ttl), for setting it up again.
    db: Option<(String, String)>,
    /// The AppRole (role_id, secret_id, token ttl, token max ttl) in use.
    approle: std::cell::RefCell<Option<(String, String, String, String)>>,
}

impl World {
    /// OpenBao with kv2 `secret/app`, the shroud policy and AppRole; PostgreSQL
    /// with the database engine when `db` is given (default_ttl, max_ttl).
    pub fn new(db: Option<(&str, &str)>) -> World {
        World::with(OpenBao::start(), db)
    }

    /// As [`World::new`] on the given server.
    pub fn with(bao: OpenBao, db: Option<(&str, &str)>) -> World {
        let work = tempfile::tempdir().unwrap();
        bao.bao(&["kv", "put", "secret/app", &format!("api_key={API_KEY}")]);
        bao.policy("shroud", SHROUD_POLICY, work.path());
        let pg = db.map(|(ttl, max)| {
            let pg = Postgres::start();
            pg.configure_vault(&bao, ttl, max);
            pg
        });
        World {
            bao,
            pg,
            out: Tmpfs::new(),
            work,
            db: db.map(|(t, m)| (t.to_string(), m.to_string())),
            approle: Default::default(),
        }
    }

    pub fn pg(&self) -> &Postgres {
        self.pg.as_ref().unwrap()
    }

    pub fn path(&self, name: &str) -> PathBuf {
        self.work.path().join(name)
    }

    /// AppRole credentials files and the `[auth]` section using them.
    pub fn approle_auth(&self) -> String {
        self.approle_auth_ttl("1h", "2h")
    }

    /// As [`World::approle_auth`], with the login token's TTL and max TTL.
    pub fn approle_auth_ttl(&self, ttl: &str, max_ttl: &str) -> String {
        let (role_id, secret_id) = self.bao.approle("shroud", "shroud", ttl, max_ttl);
        *self.approle.borrow_mut() = Some((
            role_id.clone(),
            secret_id.clone(),
            ttl.to_string(),
            max_ttl.to_string(),
        ));
        std::fs::write(self.path("role-id"), role_id).unwrap();
        std::fs::write(self.path("secret-id"), secret_id).unwrap();
        format!(
            "[auth]\nmethod = \"approle\"\nrole_id_file = \"{}\"\nsecret_id_file = \"{}\"\n",
            self.path("role-id").display(),
            self.path("secret-id").display()
        )
    }

    /// Writes a config with `auth`, the output tmpfs and `rest`; returns its path.
    pub fn config(&self, auth: &str, rest: &str) -> PathBuf {
        self.config_vault(&self.bao.addr, "", auth, rest)
    }

    /// As [`World::config`] with another address and more `[vault]` keys.
    pub fn config_vault(&self, address: &str, vault: &str, auth: &str, rest: &str) -> PathBuf {
        self.write_config(address, vault, auth, self.out.path(), rest)
    }

    /// As [`World::config`] with another output directory.
    pub fn config_in(&self, dir: &Path, auth: &str, rest: &str) -> PathBuf {
        self.write_config(&self.bao.addr, "", auth, dir, rest)
    }

    fn write_config(
        &self,
        address: &str,
        vault: &str,
        auth: &str,
        dir: &Path,
        rest: &str,
    ) -> PathBuf {
        let p = self.path("shroud.toml");
        std::fs::write(
            &p,
            format!(
                "[vault]\naddress = \"{address}\"\ntimeout = \"1s\"\n{vault}\n{auth}\n[output]\ndir = \"{}\"\n{rest}",
                dir.display()
            ),
        )
        .unwrap();
        p
    }

    pub fn file(&self, name: &str) -> Option<String> {
        std::fs::read_to_string(self.out.path().join(name)).ok()
    }

    /// Everything left in the output directory, `.shroud/acks` aside.
    pub fn leftovers(&self) -> Vec<String> {
        let mut left = Vec::new();
        for e in walk(self.out.path()) {
            let rel = e
                .strip_prefix(self.out.path())
                .unwrap()
                .display()
                .to_string();
            if rel != ".shroud" && rel != ".shroud/acks" {
                left.push(rel);
            }
        }
        left
    }

    /// Strings that must never appear in a scrape, log or audit record: the kv2
    /// value, the AppRole credentials in use and the root token.
    pub fn credentials(&self) -> Vec<String> {
        let mut out = vec![API_KEY.to_string(), self.bao.root_token.clone()];
        if let Some((role_id, secret_id, _, _)) = &*self.approle.borrow() {
            out.extend([role_id.clone(), secret_id.clone()]);
        }
        out
    }

    /// Asserts nothing of shroud's survives: files, leases, tokens, roles.
    pub fn assert_clean(&self, users: &[String]) {
        assert_eq!(self.leftovers(), Vec::<String>::new(), "files left behind");
        assert_eq!(
            self.bao.leases("database/creds/app/"),
            Vec::<String>::new(),
            "leases left"
        );
        assert_eq!(
            self.bao.accessors().len(),
            1,
            "only the root token may remain"
        );
        if let Some(pg) = &self.pg {
            for u in users {
                assert!(!pg.role_exists(u), "PostgreSQL role {u} still exists");
            }
            assert_eq!(pg.vault_roles(), Vec::<String>::new(), "roles left");
        }
    }
}

/// Every path under `dir`, sorted.
pub fn walk(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    if let Ok(rd) = std::fs::read_dir(dir) {
        for e in rd.flatten() {
            let p = e.path();
            out.push(p.clone());
            if p.is_dir() {
                out.extend(walk(&p));
            }
        }
    }
    out.sort();
    out
}

/// Starts `shroud agent --config CFG`, logging at info level to `log`; it is
/// killed if the test ends (or fails) with it still running.
pub fn spawn_agent(cfg: &Path, log: &Path) -> Guarded {
    shroud()
        .arg("agent")
        .arg("--config")
        .arg(cfg)
        .env("SHROUD_LOG", "info")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(log).unwrap())
        .spawn_guarded()
}

/// A `shroud agent` that [`Agent::stop`] ends cleanly (killed, as a
/// [`Guarded`], if the test ends first).
#[derive(Debug)]
pub struct Agent(pub Guarded);

impl Agent {
    /// SIGTERM, then its exit status (within 20 s).
    pub fn stop(self) -> std::process::ExitStatus {
        self.stop_within(std::time::Duration::from_secs(20))
    }

    /// SIGTERM, then its exit status within `limit` (killed and failing after).
    pub fn stop_within(mut self, limit: std::time::Duration) -> std::process::ExitStatus {
        sigterm(&self.0);
        crate::wait_with_deadline(&mut self.0, limit)
    }

    /// SIGKILL, as a crash or an OOM kill ends it, and reaped: its token,
    /// leases, files and ready marker stay for the next agent to find.
    pub fn kill(mut self) {
        self.0.kill().unwrap();
        self.0.wait().unwrap();
    }
}

/// Sends SIGTERM to `child`.
pub fn sigterm(child: &Child) {
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(child.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
}

/// A dynamic PostgreSQL credential rendered as `db.env`.
pub const DB_SECRET: &str = "[[secret]]\nname = \"db.env\"\npath = \"database/creds/app\"\nkind = \"dynamic\"\nformat = \"env\"\n";
/// The kv2 API key rendered as `api-key`.
pub const KV_SECRET: &str =
    "[[secret]]\nname = \"api-key\"\npath = \"secret/app\"\nkind = \"kv2\"\nfield = \"api_key\"\n";

impl World {
    /// After the server lost its state ([`OpenBao::restart_empty`]): the same
    /// kv2 value, policy, AppRole credentials (same role and secret ids) and
    /// database engine as before, as an operator restoring it would.
    pub fn set_up_again(&self) {
        self.bao
            .bao(&["kv", "put", "secret/app", &format!("api_key={API_KEY}")]);
        self.bao.policy("shroud", SHROUD_POLICY, self.work.path());
        if let Some((role_id, secret_id, ttl, max)) = &*self.approle.borrow() {
            self.bao
                .approle_restore("shroud", "shroud", ttl, max, role_id, secret_id);
        }
        if let (Some(pg), Some((ttl, max))) = (&self.pg, &self.db) {
            pg.configure_vault(&self.bao, ttl, max);
        }
    }
}
