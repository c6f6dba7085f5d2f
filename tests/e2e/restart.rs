//! The agent survives its own crashes: a restarted `shroud agent` with the same
//! `[state]` adopts its predecessor's token and leases (no login, no new lease, no
//! rotation), replaces through a normal rotation what can no longer be adopted,
//! and still leaves nothing behind at shutdown. What was obtained for a
//! configuration that changed (Vault address, namespace, auth identity, a
//! secret's path or kind) is revoked, never adopted. Real OpenBao (namespaces
//! included), PostgreSQL 15, AppRole, tmpfs and signals.

use std::path::{Path, PathBuf};
use std::process::{Child, Stdio};
use std::sync::Mutex;
use std::time::Duration;

use nix::sys::signal::Signal;
use shroud_e2e::openbao::{OpenBao, SHROUD_POLICY};
use shroud_e2e::postgres::Postgres;
use shroud_e2e::process::signal;
use shroud_e2e::proxy::Proxy;
use shroud_e2e::*;
use shroud_redactor::values_file::ValuesFile;

/// One OpenBao and PostgreSQL per test, on a 2-core machine: one at a time.
static SERIAL: Mutex<()> = Mutex::new(());

const LEASES: &str = "database/creds/app/";
const STATE_FILE: &str = "agent-state.json";
/// The database credential, as JSON.
const DB: &str = "[[secret]]\nname = \"db\"\npath = \"database/creds/app\"\nkind = \"dynamic\"\nformat = \"json\"\n";

struct World {
    bao: OpenBao,
    pg: Postgres,
    out: Tmpfs,
    state: Tmpfs,
    work: tempfile::TempDir,
    config: PathBuf,
    log: PathBuf,
    _serial: std::sync::MutexGuard<'static, ()>,
}

/// A running agent; SIGKILLed if the test fails with it still running.
struct Agent(Child);

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

impl World {
    /// OpenBao with the database engine on a private PostgreSQL, AppRole (token
    /// TTL 1h) and an agent config with `[state]` on its own tmpfs.
    fn new() -> World {
        World::with_db("1h", "2h")
    }

    /// As [`World::new`] with the database role's default and max TTL.
    fn with_db(ttl: &str, max_ttl: &str) -> World {
        let serial = SERIAL.lock().unwrap_or_else(|e| e.into_inner());
        let bao = OpenBao::start();
        let work = tempfile::tempdir().unwrap();
        bao.policy("shroud", SHROUD_POLICY, work.path());
        let pg = Postgres::start();
        pg.configure_vault(&bao, ttl, max_ttl);
        let (role_id, secret_id) = bao.approle("shroud", "shroud", "1h", "2h");
        secret_file(work.path(), "role-id", role_id.as_bytes());
        secret_file(work.path(), "secret-id", secret_id.as_bytes());
        let config = work.path().join("shroud.toml");
        let log = work.path().join("agent.log");
        let w = World {
            bao,
            pg,
            out: Tmpfs::new(),
            state: Tmpfs::new(),
            work,
            config,
            log,
            _serial: serial,
        };
        let auth = w.approle_files("role-id", "secret-id", "");
        w.configure(&w.bao.addr, "", &auth, DB);
        w
    }

    /// Writes the agent's config: Vault at `address` with `vault` keys, the
    /// `[auth]` section `auth`, the output and state tmpfs, and `secrets`.
    fn configure(&self, address: &str, vault: &str, auth: &str, secrets: &str) {
        std::fs::write(
            &self.config,
            format!(
                "[vault]\naddress = \"{address}\"\ntimeout = \"2s\"\n{vault}\
                 {auth}\
                 [output]\ndir = \"{}\"\n\
                 [state]\ndir = \"{}\"\n\
                 [lifecycle]\nhandshake_timeout = \"1s\"\n\
                 {secrets}",
                self.out.path().display(),
                self.state.path().display(),
            ),
        )
        .unwrap();
    }

    /// An AppRole `[auth]` section reading the files `role` and `secret` of
    /// the work directory, with more keys (`mount`).
    fn approle_files(&self, role: &str, secret: &str, extra: &str) -> String {
        format!(
            "[auth]\nmethod = \"approle\"\nrole_id_file = \"{}\"\nsecret_id_file = \"{}\"\n{extra}",
            self.work.path().join(role).display(),
            self.work.path().join(secret).display(),
        )
    }

    /// The accessors of every token but root's.
    fn agent_accessors(&self) -> Vec<String> {
        let root = self
            .bao
            .bao(&["token", "lookup", "-format=json"])
            .split("\"accessor\": \"")
            .nth(1)
            .and_then(|s| s.split('"').next())
            .unwrap()
            .to_string();
        self.bao
            .accessors()
            .into_iter()
            .filter(|a| *a != root)
            .collect()
    }

    /// Kills `agent` (SIGKILL), lets `change` rewrite the configuration, and
    /// starts the `n`-th agent; asserts it revoked the predecessor's token,
    /// lease and role (the log naming `expect`) and serves new credentials
    /// that work.
    fn restart_rebound(
        &self,
        agent: Agent,
        n: usize,
        expect: &str,
        change: impl FnOnce(),
    ) -> Agent {
        let old = self.credential();
        let (old_accessors, old_leases) = (self.agent_accessors(), self.bao.leases(LEASES));
        assert_eq!(old_accessors.len(), 1, "{expect}: one agent token before");
        self.kill(agent);
        change();
        let agent = self.start_agent(n);
        let log = self.log_text();
        assert!(
            log.matches("obtained under another configuration").count() == n - 1
                && log.contains(expect),
            "{expect}: {log}"
        );
        assert_eq!(
            log.matches("logged in to Vault").count(),
            n,
            "{expect}: a new login: {log}"
        );
        let new = self.credential();
        assert_ne!(new, old, "{expect}: new credentials");
        assert!(self.pg.can_login(&new.0, &new.1), "{expect}");
        // Revoked before the new login: no wait.
        assert!(
            !self.pg.role_exists(&old.0),
            "{expect}: the old role is gone"
        );
        let accessors = self.bao.accessors();
        assert!(
            old_accessors.iter().all(|a| !accessors.contains(a)),
            "{expect}: the old token is revoked"
        );
        let leases = self.bao.leases(LEASES);
        assert!(
            old_leases.iter().all(|l| !leases.contains(l)),
            "{expect}: the old lease is revoked"
        );
        agent
    }

    /// Starts an agent (its log appended to `self.log`) and waits until it has
    /// rendered or adopted: the `n`-th "secrets rendered" line of the log.
    fn start_agent(&self, n: usize) -> Agent {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .unwrap();
        let child = shroud()
            .arg("agent")
            .arg("--config")
            .arg(&self.config)
            .env("SHROUD_LOG", "info")
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap();
        let mut agent = Agent(child);
        until(Duration::from_secs(30), "the agent to render", || {
            if let Some(status) = agent.0.try_wait().unwrap() {
                panic!("the agent exited {status}: {}", self.log_text());
            }
            (self.log_text().matches("secrets rendered").count() >= n).then_some(())
        });
        assert!(self.out.path().join(".shroud/ready").exists());
        agent
    }

    fn log_text(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// SIGKILL, as the OOM killer does.
    fn kill(&self, mut agent: Agent) {
        signal(&agent.0, Signal::SIGKILL);
        agent.0.wait().unwrap();
    }

    /// SIGTERM; the agent must exit 0.
    fn stop(&self, mut agent: Agent) {
        signal(&agent.0, Signal::SIGTERM);
        let status = wait_with_deadline(&mut agent.0, Duration::from_secs(20));
        assert!(status.success(), "agent: {status}: {}", self.log_text());
    }

    /// (username, password) from the rendered file.
    fn credential(&self) -> (String, String) {
        let text = std::fs::read_to_string(self.out.path().join("db")).unwrap();
        let v: serde_json::Value = serde_json::from_str(&text).unwrap();
        (
            v["username"].as_str().unwrap().to_string(),
            v["password"].as_str().unwrap().to_string(),
        )
    }

    fn values(&self) -> ValuesFile {
        ValuesFile::parse(&std::fs::read(self.out.path().join(".shroud/values")).unwrap()).unwrap()
    }

    /// Tokens (accessors), leases and database roles that exist now.
    fn vault_footprint(&self) -> (Vec<String>, Vec<String>, Vec<String>) {
        let mut accessors = self.bao.accessors();
        accessors.sort();
        let mut leases = self.bao.leases(LEASES);
        leases.sort();
        (accessors, leases, self.pg.vault_roles())
    }

    fn state_files(&self) -> Vec<String> {
        std::fs::read_dir(self.state.path())
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect()
    }

    /// Files left in the output directory (directories aside).
    fn output_files(&self) -> Vec<PathBuf> {
        fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
            for e in std::fs::read_dir(dir).into_iter().flatten().flatten() {
                let p = e.path();
                if p.is_dir() {
                    walk(&p, out);
                } else {
                    out.push(p);
                }
            }
        }
        let mut files = Vec::new();
        walk(self.out.path(), &mut files);
        files
    }

    /// Nothing survives: no lease, no token but root's, no database role, no
    /// file, an empty state directory; no credential in the log.
    fn assert_nothing_left(&self, secrets: &[&(String, String)]) {
        let (accessors, leases, roles) = self.vault_footprint();
        assert_eq!(leases, Vec::<String>::new(), "leases left");
        assert_eq!(accessors.len(), 1, "only the root token may remain");
        assert_eq!(roles, Vec::<String>::new(), "database roles left");
        assert_eq!(self.output_files(), Vec::<PathBuf>::new(), "files left");
        assert_eq!(self.state_files(), Vec::<String>::new(), "state left");
        let log = self.log_text();
        for (user, password) in secrets {
            assert!(
                !log.contains(password.as_str()),
                "a password reached the log"
            );
            assert!(!log.contains(user.as_str()), "a username reached the log");
        }
    }
}

#[test]
fn sigkill_and_restart_adopts_token_and_lease_then_sigterm_leaves_nothing() {
    let w = World::new();
    let first = w.start_agent(1);
    let cred = w.credential();
    let generation = w.values().generation;
    let footprint = w.vault_footprint();
    assert_eq!(
        (footprint.0.len(), footprint.1.len(), footprint.2.len()),
        (2, 1, 1)
    );
    assert_eq!(w.state_files(), vec![STATE_FILE.to_string()]);
    let state_mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(w.state.path()).unwrap().permissions(),
    );
    assert_eq!(state_mode & 0o777, 0o700);

    w.kill(first);
    let second = w.start_agent(2);
    let log = w.log_text();
    assert!(
        log.contains("adopted the previous agent's Vault token"),
        "{log}"
    );
    assert!(log.contains("adopted the previous agent's state"), "{log}");
    assert_eq!(log.matches("logged in to Vault").count(), 1, "{log}");
    // Same credential in the file, same generation (the app was not rotated),
    // the same one token, lease and database role.
    assert_eq!(w.credential(), cred);
    assert_eq!(w.values().generation, generation);
    assert_eq!(w.vault_footprint(), footprint);
    assert!(w.pg.can_login(&cred.0, &cred.1));

    w.stop(second);
    w.assert_nothing_left(&[&cred]);
}

#[test]
fn five_quick_restarts_add_no_token_and_no_lease() {
    let w = World::new();
    let mut agent = w.start_agent(1);
    let cred = w.credential();
    let footprint = w.vault_footprint();
    for n in 2..=6 {
        w.kill(agent);
        agent = w.start_agent(n);
    }
    assert_eq!(w.log_text().matches("logged in to Vault").count(), 1);
    assert_eq!(w.vault_footprint(), footprint, "tokens, leases, roles");
    assert_eq!(w.credential(), cred);
    w.stop(agent);
    w.assert_nothing_left(&[&cred]);
}

#[test]
fn a_token_revoked_while_the_agent_was_down_is_replaced_by_a_rotation() {
    let w = World::new();
    let first = w.start_agent(1);
    let old = w.credential();
    let generation = w.values().generation;
    let (accessors, _, _) = w.vault_footprint();
    w.kill(first);
    // Behind the agent's back: its token (and with it its lease and role) goes.
    let root_accessor = w
        .bao
        .bao(&["token", "lookup", "-format=json"])
        .split("\"accessor\": \"")
        .nth(1)
        .and_then(|s| s.split('"').next())
        .unwrap()
        .to_string();
    let agent_accessor = accessors.iter().find(|a| **a != root_accessor).unwrap();
    w.bao.bao(&["token", "revoke", "-accessor", agent_accessor]);
    until(Duration::from_secs(10), "the role to be dropped", || {
        (!w.pg.role_exists(&old.0)).then_some(())
    });

    let second = w.start_agent(2);
    until(
        Duration::from_secs(30),
        "new credentials in the file",
        || (w.credential() != old).then_some(()),
    );
    let new = w.credential();
    let log = w.log_text();
    assert!(log.contains("token is no longer valid"), "{log}");
    assert!(w.pg.can_login(&new.0, &new.1));
    // A normal rotation: a newer generation carrying the old values as retired.
    let values = w.values();
    assert!(values.generation > generation);
    assert!(values
        .values
        .iter()
        .any(|(name, v)| name == "db.password.retired" && v.as_slice() == old.1.as_bytes()));
    let (accessors, leases, roles) = w.vault_footprint();
    assert_eq!(
        (accessors.len(), leases.len(), roles),
        (2, 1, vec![new.0.clone()])
    );

    w.stop(second);
    w.assert_nothing_left(&[&old, &new]);
}

#[test]
fn a_damaged_state_file_is_logged_and_the_agent_starts_clean() {
    let w = World::new();
    let first = w.start_agent(1);
    let old = w.credential();
    let (_, old_leases, _) = w.vault_footprint();
    w.kill(first);
    std::fs::write(
        w.state.path().join(STATE_FILE),
        b"{\"format\":\"shroud-agent-state\",\"version\":1,\"vau",
    )
    .unwrap();

    let second = w.start_agent(2);
    let log = w.log_text();
    assert!(
        log.contains("cannot adopt the previous agent's state; starting fresh")
            && log.contains(&format!(
                "state file {}/{STATE_FILE} is damaged",
                w.state.path().display()
            )),
        "{log}"
    );
    let new = w.credential();
    assert_ne!(new, old);
    assert!(w.pg.can_login(&new.0, &new.1));
    // The fresh start saved its own state in place of the damaged one.
    let saved = std::fs::read_to_string(w.state.path().join(STATE_FILE)).unwrap();
    assert!(saved.starts_with("{\"format\":\"shroud-agent-state\""));

    w.stop(second);
    // What the fresh agent took is gone; the predecessor's lease, unknown to it,
    // runs out at its TTL.
    let (accessors, leases, _) = w.vault_footprint();
    assert_eq!(leases, old_leases);
    assert_eq!(accessors.len(), 2, "root and the predecessor's token");
    assert!(!w.pg.role_exists(&new.0));
    assert_eq!(w.state_files(), Vec::<String>::new());
    assert_eq!(w.output_files(), Vec::<PathBuf>::new());
}

#[test]
fn shroud_run_restarted_by_its_supervisor_adopts_too() {
    let w = World::new();
    let work = w.log.parent().unwrap().to_path_buf();
    let run = |command: &str| {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&w.log)
            .unwrap();
        shroud()
            .arg("run")
            .arg("--config")
            .arg(&w.config)
            .args(["--", "sh", "-c", command])
            .env("SHROUD_LOG", "info")
            .env("WORK", &work)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log)
            .spawn()
            .unwrap()
    };
    // The first run's command records its pid and the credential it sees, then waits.
    let first = Agent(run(
        "echo $$ > \"$WORK/pid\"; cp \"$SHROUD_SECRETS_DIR/db\" \"$WORK/seen-1\"; exec sleep 60",
    ));
    let seen = work.join("seen-1");
    until(Duration::from_secs(30), "the first command to run", || {
        seen.exists().then_some(())
    });
    let footprint = w.vault_footprint();
    w.kill(first);
    // The supervisor's restart: the orphaned command goes, a new run starts.
    let pid: i32 = std::fs::read_to_string(work.join("pid"))
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let _ = nix::sys::signal::kill(nix::unistd::Pid::from_raw(pid), Signal::SIGKILL);
    let mut second = Agent(run("cp \"$SHROUD_SECRETS_DIR/db\" \"$WORK/seen-2\""));
    let status = wait_with_deadline(&mut second.0, Duration::from_secs(30));
    assert!(status.success(), "{status}: {}", w.log_text());
    let log = w.log_text();
    assert!(log.contains("adopted the previous agent's state"), "{log}");
    assert_eq!(log.matches("logged in to Vault").count(), 1, "{log}");
    let (first_cred, second_cred) = (
        std::fs::read(work.join("seen-1")).unwrap(),
        std::fs::read(work.join("seen-2")).unwrap(),
    );
    assert_eq!(
        first_cred, second_cred,
        "the command got the same credential"
    );
    assert_eq!((footprint.0.len(), footprint.1.len()), (2, 1));
    let v: serde_json::Value = serde_json::from_slice(&first_cred).unwrap();
    let cred = (
        v["username"].as_str().unwrap().to_string(),
        v["password"].as_str().unwrap().to_string(),
    );
    w.assert_nothing_left(&[&cred]);
}

#[test]
fn a_token_obtained_under_another_address_namespace_or_auth_identity_is_revoked_not_adopted() {
    let w = World::new();
    let dir = w.work.path();
    let auth = w.approle_files("role-id", "secret-id", "");
    // 1. Version 1 of the state recorded no configuration: revoked, not adopted.
    let agent = w.start_agent(1);
    let agent = w.restart_rebound(agent, 2, "layout version 1", || {
        let file = w.state.path().join(STATE_FILE);
        let mut v: serde_json::Value =
            serde_json::from_slice(&std::fs::read(&file).unwrap()).unwrap();
        v["version"] = 1.into();
        v["state"].as_object_mut().unwrap().remove("binding");
        std::fs::write(&file, serde_json::to_vec(&v).unwrap()).unwrap();
    });
    // 2. Another address for the same server (a proxy in front of it), then back.
    let proxy = Proxy::start(w.bao.addr.trim_start_matches("http://"));
    let agent = w.restart_rebound(agent, 3, "[vault] address changed", || {
        w.configure(&format!("http://{}", proxy.host), "", &auth, DB)
    });
    let agent = w.restart_rebound(agent, 4, "[vault] address changed", || {
        w.configure(&w.bao.addr, "", &auth, DB)
    });
    // 3. Other credential files (the same AppRole, copied elsewhere).
    let agent = w.restart_rebound(agent, 5, "[auth] credential files changed", || {
        std::fs::copy(dir.join("role-id"), dir.join("role-id-2")).unwrap();
        std::fs::copy(dir.join("secret-id"), dir.join("secret-id-2")).unwrap();
        let auth = w.approle_files("role-id-2", "secret-id-2", "");
        w.configure(&w.bao.addr, "", &auth, DB)
    });
    // 4. Another mount of the method (its credentials at the same paths).
    let agent = w.restart_rebound(agent, 6, "[auth] mount changed", || {
        let b = &w.bao;
        b.bao(&["auth", "enable", "-path=approle2", "approle"]);
        b.bao(&[
            "write",
            "auth/approle2/role/shroud",
            "token_policies=shroud",
            "token_ttl=1h",
        ]);
        let role_id = b.bao(&[
            "read",
            "-field=role_id",
            "auth/approle2/role/shroud/role-id",
        ]);
        let secret_id = b.bao(&[
            "write",
            "-f",
            "-field=secret_id",
            "auth/approle2/role/shroud/secret-id",
        ]);
        std::fs::write(dir.join("role-id-2"), role_id.trim()).unwrap();
        std::fs::write(dir.join("secret-id-2"), secret_id.trim()).unwrap();
        let auth = w.approle_files("role-id-2", "secret-id-2", "mount = \"approle2\"\n");
        w.configure(&w.bao.addr, "", &auth, DB)
    });
    // 5. Another method: a token file.
    let token_file = dir.join("token");
    let token_auth = format!(
        "[auth]\nmethod = \"token\"\ntoken_file = \"{}\"\n",
        token_file.display()
    );
    let agent = w.restart_rebound(agent, 7, "[auth] method changed", || {
        let token = w.bao.bao(&[
            "token",
            "create",
            "-policy=shroud",
            "-ttl=1h",
            "-field=token",
        ]);
        std::fs::write(&token_file, token.trim()).unwrap();
        w.configure(&w.bao.addr, "", &token_auth, DB)
    });
    // 6. Another namespace (the token file at the same path now holds a token
    // of that namespace, where the same database engine is set up).
    let agent = w.restart_rebound(agent, 8, "[vault] namespace changed", || {
        let b = &w.bao;
        let ns = "-namespace=team";
        b.bao(&["namespace", "create", "team"]);
        let policy = dir.join("policy.hcl");
        std::fs::write(&policy, SHROUD_POLICY).unwrap();
        b.bao(&["policy", "write", ns, "shroud", policy.to_str().unwrap()]);
        b.bao(&["secrets", "enable", ns, "database"]);
        b.bao(&[
            "write",
            ns,
            "database/config/pg",
            "plugin_name=postgresql-database-plugin",
            &format!(
                "connection_url=postgresql://{{{{username}}}}:{{{{password}}}}@127.0.0.1:{}/postgres?sslmode=disable",
                w.pg.port
            ),
            "allowed_roles=app",
            "username=postgres",
            &format!("password={}", shroud_e2e::postgres::SUPERUSER_PASSWORD),
        ]);
        b.bao(&[
            "write",
            ns,
            "database/roles/app",
            "db_name=pg",
            "creation_statements=CREATE ROLE \"{{name}}\" WITH LOGIN PASSWORD '{{password}}' VALID UNTIL '{{expiration}}';",
            "default_ttl=1h",
        ]);
        let token = b.bao(&["token", "create", ns, "-policy=shroud", "-ttl=1h", "-field=token"]);
        std::fs::write(&token_file, token.trim()).unwrap();
        w.configure(&w.bao.addr, "namespace = \"team\"\n", &token_auth, DB)
    });
    let cred = w.credential();
    w.stop(agent);
    assert!(
        !w.pg.role_exists(&cred.0),
        "the namespace's role is revoked at exit"
    );
    assert_eq!(w.pg.vault_roles(), Vec::<String>::new(), "roles left");
    assert_eq!(w.bao.leases(LEASES), Vec::<String>::new(), "leases left");
    assert_eq!(w.agent_accessors(), Vec::<String>::new(), "tokens left");
    assert_eq!(w.state_files(), Vec::<String>::new());
}

#[test]
fn a_secret_whose_path_or_kind_changed_is_replaced_while_the_token_and_the_rest_are_adopted() {
    let w = World::new();
    w.bao.bao(&[
        "kv",
        "put",
        "secret/app",
        "api_key=first-api-key-0123456789",
    ]);
    w.bao.bao(&[
        "kv",
        "put",
        "secret/app2",
        "api_key=second-api-key-9876543210",
    ]);
    let auth = w.approle_files("role-id", "secret-id", "");
    let kv = |path: &str| {
        format!(
            "[[secret]]\nname = \"api\"\npath = \"{path}\"\nkind = \"kv2\"\nfield = \"api_key\"\n"
        )
    };
    let other = "[[secret]]\nname = \"other\"\npath = \"secret/app\"\nkind = \"kv2\"\nfield = \"api_key\"\n";
    w.configure(
        &w.bao.addr,
        "",
        &auth,
        &format!("{DB}{}{other}", kv("secret/app")),
    );
    let first = w.start_agent(1);
    let old = w.credential();
    let accessors = w.agent_accessors();
    let old_leases = w.bao.leases(LEASES);
    w.kill(first);
    // The database secret becomes a generic read of the same path; the kv2
    // secret reads another path; `other` stays as it was.
    let generic = DB.replace("\"dynamic\"", "\"generic\"");
    w.configure(
        &w.bao.addr,
        "",
        &auth,
        &format!("{generic}{}{other}", kv("secret/app2")),
    );
    let second = w.start_agent(2);
    let log = w.log_text();
    assert!(
        log.contains("adopted the previous agent's Vault token"),
        "{log}"
    );
    assert_eq!(log.matches("logged in to Vault").count(), 1, "{log}");
    assert_eq!(w.agent_accessors(), accessors, "the same token");
    let new = w.credential();
    assert_ne!(new, old);
    assert!(w.pg.can_login(&new.0, &new.1));
    assert!(!w.pg.role_exists(&old.0), "the old role is revoked");
    let leases = w.bao.leases(LEASES);
    assert_eq!(leases.len(), 1);
    assert!(!old_leases.contains(&leases[0]));
    let read = |name: &str| std::fs::read_to_string(w.out.path().join(name)).unwrap();
    assert_eq!(read("api"), "second-api-key-9876543210");
    assert_eq!(read("other"), "first-api-key-0123456789");
    // The replaced values stay masked as retired ones.
    let values = w.values();
    assert!(values
        .values
        .iter()
        .any(|(name, v)| name.ends_with(".retired") && v.as_slice() == old.1.as_bytes()));
    // Restarted again with this configuration: everything adopted.
    w.kill(second);
    let third = w.start_agent(3);
    assert_eq!(w.log_text().matches("logged in to Vault").count(), 1);
    assert_eq!(w.credential(), new);
    w.stop(third);
    w.assert_nothing_left(&[&old, &new]);
}

#[test]
fn a_lease_in_its_retire_grace_is_revoked_on_time_by_a_restarted_agent() {
    // Renewed at a fifth of the lease: the first renewal is capped by the max
    // TTL, and the rotation comes about 10 s in with about 20 s of the old
    // lease left; the grace (15 s) ends before the old lease would.
    let w = World::with_db("30s", "30s");
    let auth = w.approle_files("role-id", "secret-id", "");
    let lifecycle = "[lifecycle]\nrenew_threshold = 0.2\nretire_grace = \"15s\"\n";
    w.configure(&w.bao.addr, "", &auth, DB);
    // `configure` writes its own [lifecycle]: replace it.
    let text = std::fs::read_to_string(&w.config).unwrap();
    std::fs::write(&w.config, text.replace("[lifecycle]\n", lifecycle)).unwrap();
    let first = w.start_agent(1);
    let old = w.credential();
    let rotated = until(Duration::from_secs(40), "the rotation", || {
        (w.credential() != old).then(std::time::Instant::now)
    });
    // The old lease is in its grace, and saved as such.
    assert!(
        w.pg.can_login(&old.0, &old.1),
        "the old role lives on in its grace"
    );
    let state = std::fs::read_to_string(w.state.path().join(STATE_FILE)).unwrap();
    assert!(
        state.contains("\"retiring\":[{"),
        "the grace is in the state"
    );
    w.kill(first);
    let second = w.start_agent(2);
    let log = w.log_text();
    assert_eq!(
        log.matches("logged in to Vault").count(),
        1,
        "adopted: {log}"
    );
    let adopted = rotated.elapsed();
    if adopted < Duration::from_secs(12) {
        assert!(
            w.pg.role_exists(&old.0),
            "revoked {adopted:?} after the rotation, before the end of its grace"
        );
    }
    until(
        Duration::from_secs(40),
        "the old role revoked at the end of its grace",
        || (!w.pg.role_exists(&old.0)).then_some(()),
    );
    let gone = rotated.elapsed();
    println!(
        "old role revoked {:.1}s after the rotation was seen (grace 15s)",
        gone.as_secs_f64()
    );
    assert!(w.log_text().contains("grace is over; revoking it"));
    let new = w.credential();
    w.stop(second);
    w.assert_nothing_left(&[&old, &new]);
}

#[test]
fn a_state_of_a_newer_layout_is_not_adopted_but_its_token_is_revoked() {
    let w = World::new();
    let first = w.start_agent(1);
    let old = w.credential();
    let (old_accessors, old_leases) = (w.agent_accessors(), w.bao.leases(LEASES));
    w.kill(first);
    // As if a newer agent had written it before a rollback.
    let file = w.state.path().join(STATE_FILE);
    let text = std::fs::read_to_string(&file).unwrap();
    std::fs::write(&file, text.replace("\"version\":2", "\"version\":3")).unwrap();
    let second = w.start_agent(2);
    let log = w.log_text();
    assert!(
        log.contains("has a newer layout; revoking its token and starting fresh"),
        "{log}"
    );
    let new = w.credential();
    assert_ne!(new, old);
    assert!(w.pg.can_login(&new.0, &new.1));
    // Its token went, and its lease and role with it.
    assert!(!w.pg.role_exists(&old.0), "the old role is gone");
    let accessors = w.bao.accessors();
    assert!(old_accessors.iter().all(|a| !accessors.contains(a)));
    let leases = w.bao.leases(LEASES);
    assert!(old_leases.iter().all(|l| !leases.contains(l)));
    w.stop(second);
    w.assert_nothing_left(&[&old, &new]);
}
