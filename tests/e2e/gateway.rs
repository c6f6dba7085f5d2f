//! `[[gateway]] kind = "postgres"` against a real OpenBao and PostgreSQL 15
//! (scram-sha-256): `psql` and `pgbench` through the gateway over loopback TCP
//! (with the local password) and the Unix socket, run as the dynamic role with
//! no database password in their environment; a wrong local password, garbage
//! and a dead upstream get protocol-correct errors; a rotation moves new
//! connections to the new role, also one that lands mid-handshake.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

use shroud_e2e::pgwire::*;
use shroud_e2e::postgres::SUPERUSER_PASSWORD;
use shroud_e2e::world::*;
use shroud_e2e::*;

struct Setup {
    w: World,
    agent: Option<Agent>,
    tcp: u16,
    dead: u16,
    sock_dir: PathBuf,
}

/// An agent with three gateways on the dynamic secret `db.env`: `pg` on TCP,
/// `pgsock` on a Unix socket directory, `dead` to a port nothing listens on.
fn setup(ttl: (&str, &str)) -> Setup {
    let (s, cfg) = configure(ttl);
    let agent = Agent(spawn_agent(&cfg, &s.w.path("agent.log")));
    until(
        Duration::from_secs(30),
        "the gateways' password files",
        || s.w.file("dead.password").map(drop),
    );
    Setup {
        agent: Some(agent),
        ..s
    }
}

/// The world and the configuration of [`setup`], nothing started.
fn configure(ttl: (&str, &str)) -> (Setup, PathBuf) {
    configure_with(ttl, "")
}

/// As [`configure`], with `extra` appended to the configuration.
fn configure_with(ttl: (&str, &str), extra: &str) -> (Setup, PathBuf) {
    require_tool("psql", "apt-get install postgresql-client-15");
    let w = World::new(Some(ttl));
    let auth = w.approle_auth();
    let (tcp, dead) = (free_port(), free_port());
    let sock_dir = w.path("pgsock");
    let upstream = w.pg().port;
    let gateways = format!(
        r#"
[[gateway]]
name = "pg"
kind = "postgres"
secret = "db.env"
listen = "127.0.0.1:{tcp}"
upstream = "127.0.0.1:{upstream}"

[[gateway]]
name = "pgsock"
kind = "postgres"
secret = "db.env"
listen = "unix:{sock}"
upstream = "127.0.0.1:{upstream}"

[[gateway]]
name = "dead"
kind = "postgres"
secret = "db.env"
listen = "127.0.0.1:{dead}"
upstream = "127.0.0.1:{dead_upstream}"
"#,
        sock = sock_dir.display(),
        dead_upstream = free_port(),
    );
    let cfg = w.config(&auth, &format!("{DB_SECRET}{gateways}{extra}"));
    let s = Setup {
        w,
        agent: None,
        tcp,
        dead,
        sock_dir,
    };
    (s, cfg)
}

impl Setup {
    fn local_password(&self, gateway: &str) -> String {
        self.w.file(&format!("{gateway}.password")).unwrap()
    }

    fn db_password(&self) -> String {
        env_value(&self.w.file("db.env").unwrap(), "PASSWORD")
    }

    fn log(&self) -> String {
        std::fs::read_to_string(self.w.path("agent.log")).unwrap_or_default()
    }
}

/// A client whose environment holds only PATH and, when given, the local
/// password: nothing of the database credential.
fn client(program: &str, password: Option<&str>) -> Command {
    let mut c = Command::new(program);
    c.env_clear()
        .env("PATH", std::env::var_os("PATH").unwrap_or_default())
        .env("PGCONNECT_TIMEOUT", "20");
    if let Some(p) = password {
        c.env("PGPASSWORD", p);
    }
    c
}

fn psql(host: &str, port: u16, password: Option<&str>, sql: &str) -> Finished {
    run_with_input(
        client("psql", password).args([
            "-X",
            "-At",
            "-w",
            "-h",
            host,
            "-p",
            &port.to_string(),
            "-U",
            "workload",
            "-d",
            "postgres",
            "-c",
            sql,
        ]),
        b"",
        Duration::from_secs(60),
    )
}

fn current_user_tcp(s: &Setup) -> String {
    let out = psql(
        "127.0.0.1",
        s.tcp,
        Some(&s.local_password("pg")),
        "select current_user",
    );
    assert!(out.status.success(), "psql over TCP: {}", out.err());
    out.out().trim().to_string()
}

fn contains_str(hay: &str, needle: &str) -> bool {
    !needle.is_empty() && hay.contains(needle)
}

#[test]
fn psql_through_the_gateway_runs_as_the_dynamic_role_and_errors_are_protocol_correct() {
    let _s = serial();
    let mut s = setup(("1m", "10s"));
    let db_password = s.db_password();
    let local = s.local_password("pg");
    assert_ne!(local, db_password);
    let pw_file = s.w.out.path().join("pg.password");
    let mode = std::os::unix::fs::PermissionsExt::mode(
        &std::fs::metadata(&pw_file).unwrap().permissions(),
    );
    assert_eq!(
        mode & 0o777,
        0o400,
        "the password file's mode is the secrets'"
    );

    // TCP with the local password: the dynamic role.
    let user = current_user_tcp(&s);
    assert!(user.starts_with("v-"), "not the dynamic role: {user}");
    // The Unix socket: no password at all.
    let out = psql(
        s.sock_dir.to_str().unwrap(),
        s.w.pg().port,
        None,
        "select current_user",
    );
    assert!(out.status.success(), "psql over the socket: {}", out.err());
    assert!(out.out().trim().starts_with("v-"), "{}", out.out());
    let meta = std::fs::metadata(&s.sock_dir).unwrap();
    assert_eq!(
        std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o777,
        0o700
    );

    // A wrong local password: 28P01, and no credential in the answer.
    let (code, msg) = {
        let (tag, body) = raw_login(s.tcp, "not-the-local-password");
        error_fields(tag, &body)
    };
    assert_eq!(code, "28P01", "{msg}");
    assert!(!contains_str(&msg, &db_password) && !contains_str(&msg, &local));
    let out = psql("127.0.0.1", s.tcp, Some("wrong"), "select 1");
    assert!(!out.status.success());
    assert!(
        out.err().contains("password authentication failed"),
        "{}",
        out.err()
    );

    // Garbage: a protocol violation, and the gateway keeps serving.
    let mut g = TcpStream::connect(("127.0.0.1", s.tcp)).unwrap();
    g.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    g.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n").unwrap();
    let (tag, body) = message(&mut g);
    assert_eq!(error_fields(tag, &body).0, "08P01");
    let mut g = TcpStream::connect(("127.0.0.1", s.tcp)).unwrap();
    g.write_all(&[0, 0, 0, 12, 0xde, 0xad, 0xbe, 0xef]).unwrap();
    drop(g);
    assert!(current_user_tcp(&s).starts_with("v-"));

    // The upstream is down: 08006 once the client has logged in to the gateway.
    let (tag, body) = raw_login(s.dead, &s.local_password("dead"));
    let (code, msg) = error_fields(tag, &body);
    assert_eq!(code, "08006", "{msg}");
    assert!(!contains_str(&msg, &db_password));

    // A cancel request with the gateway's key reaches the upstream query.
    let (mut session, (pid, key)) = raw_session(s.tcp, &local);
    let mut q = vec![b'Q'];
    let sql = b"select pg_sleep(120)\0";
    q.extend_from_slice(&((sql.len() + 4) as i32).to_be_bytes());
    q.extend_from_slice(sql);
    session.write_all(&q).unwrap();
    // The query must be running before it can be cancelled.
    until(Duration::from_secs(30), "the query to run", || {
        (s.w.pg().admin("select count(*) from pg_stat_activity where query = 'select pg_sleep(120)' and state = 'active'") == "1").then_some(())
    });
    let mut c = TcpStream::connect(("127.0.0.1", s.tcp)).unwrap();
    let mut cancel = 16i32.to_be_bytes().to_vec();
    cancel.extend_from_slice(&80_877_102i32.to_be_bytes());
    cancel.extend_from_slice(&pid.to_be_bytes());
    cancel.extend_from_slice(&key.to_be_bytes());
    c.write_all(&cancel).unwrap();
    // RowDescription comes first, then the error.
    let (tag, body) = loop {
        match message(&mut session) {
            (b'T', _) => continue,
            m => break m,
        }
    };
    assert_eq!(
        error_fields(tag, &body).0,
        "57014",
        "the query was not cancelled"
    );

    // A rotation: new connections log in as the new role.
    let next = until(Duration::from_secs(30), "a rotation", || {
        s.w.file("db.env")
            .map(|t| env_value(&t, "USERNAME"))
            .filter(|u| *u != user)
    });
    let after = current_user_tcp(&s);
    assert_ne!(after, user, "a new connection still used the old role");
    assert!(after.starts_with("v-"));
    let _ = next;

    // Nothing the clients saw or the agent logged holds a database password.
    let log = s.log();
    assert!(
        !contains_str(&log, &db_password),
        "the agent logged the password"
    );
    assert!(log.contains("gateway listening"), "{log}");

    let agent = s.agent.take().unwrap();
    assert!(agent.stop().success(), "{}", s.log());
    for gone in ["pg.password", "pgsock.password", "dead.password"] {
        assert!(s.w.file(gone).is_none(), "{gone} left behind");
    }
    assert!(!s.sock_dir.exists(), "the socket directory is left behind");
    let roles = s.w.pg().vault_roles();
    s.w.assert_clean(&roles);
}

#[test]
fn pgbench_through_the_gateway_completes_without_failures() {
    let _s = serial();
    require_tool("pgbench", "apt-get install postgresql-client-15");
    let mut s = setup(("5m", "10m"));
    let port = s.w.pg().port.to_string();
    // The tables belong to the superuser, so the dynamic role can be dropped.
    let init = run_with_input(
        client("pgbench", Some(SUPERUSER_PASSWORD)).args([
            "-i",
            "-q",
            "-s",
            "1",
            "-h",
            "127.0.0.1",
            "-p",
            &port,
            "-U",
            "postgres",
            "postgres",
        ]),
        b"",
        Duration::from_secs(120),
    );
    assert!(init.status.success(), "pgbench -i: {}", init.err());
    s.w.pg()
        .admin("grant all on all tables in schema public to public");
    let local = s.local_password("pg");
    let run = run_with_input(
        client("pgbench", Some(&local)).args([
            "-n",
            "-T",
            "5",
            "-c",
            "4",
            "-j",
            "2",
            "-h",
            "127.0.0.1",
            "-p",
            &s.tcp.to_string(),
            "-U",
            "workload",
            "postgres",
        ]),
        b"",
        Duration::from_secs(120),
    );
    assert!(run.status.success(), "pgbench: {}{}", run.out(), run.err());
    let out = run.out();
    let processed: u64 = out
        .lines()
        .find_map(|l| l.strip_prefix("number of transactions actually processed: "))
        .and_then(|v| v.split('/').next())
        .and_then(|v| v.trim().parse().ok())
        .unwrap_or_else(|| panic!("no transaction count in: {out}"));
    assert!(processed > 0, "{out}");
    let failed = out
        .lines()
        .find_map(|l| l.strip_prefix("number of failed transactions: "))
        .unwrap_or_else(|| panic!("no failed-transaction count in: {out}"));
    assert!(failed.starts_with("0 "), "failed transactions: {failed}");
    let agent = s.agent.take().unwrap();
    assert!(agent.stop().success(), "{}", s.log());
    s.w.pg()
        .admin("drop table pgbench_accounts, pgbench_branches, pgbench_tellers, pgbench_history");
    let roles = s.w.pg().vault_roles();
    s.w.assert_clean(&roles);
}

#[test]
fn shroud_run_starts_the_gateway_for_the_command() {
    let _s = serial();
    let (s, cfg) = configure(("5m", "10m"));
    let script = format!(
        "PGPASSWORD=$(cat \"$SHROUD_SECRETS_DIR/pg.password\") psql -X -At -w -h 127.0.0.1 -p {} -U app -d postgres -c \"select current_user like 'v-%'\"",
        s.tcp
    );
    let out = run_with_input(&mut run_script(&cfg, &script), b"", Duration::from_secs(60));
    assert!(out.status.success(), "{}{}", out.out(), out.err());
    assert_eq!(out.out().trim(), "t");
    assert!(
        s.w.file("pg.password").is_none(),
        "the password file is left behind"
    );
    let roles = s.w.pg().vault_roles();
    s.w.assert_clean(&roles);
}

#[test]
fn md5_upstream_logins_work_too() {
    let _s = serial();
    let (mut s, cfg) = configure(("5m", "10m"));
    let pg = s.w.pg();
    // Roles created from now on get md5 passwords, and TCP logins use md5.
    pg.admin("alter system set password_encryption = 'md5'");
    let hba = pg.admin("show hba_file");
    let text = std::fs::read_to_string(&hba).unwrap();
    std::fs::write(&hba, text.replace("scram-sha-256", "md5")).unwrap();
    pg.admin("select pg_reload_conf()");
    s.agent = Some(Agent(spawn_agent(&cfg, &s.w.path("agent.log"))));
    until(
        Duration::from_secs(30),
        "the gateway's password file",
        || s.w.file("pg.password").map(drop),
    );
    let user = current_user_tcp(&s);
    assert!(user.starts_with("v-"), "{user}");
    let stored = pg.admin(&format!(
        "select left(rolpassword, 3) from pg_authid where rolname = '{user}'"
    ));
    assert_eq!(
        stored, "md5",
        "the role's password is not md5: the test proves nothing"
    );
    let agent = s.agent.take().unwrap();
    assert!(agent.stop().success(), "{}", s.log());
    let roles = s.w.pg().vault_roles();
    s.w.assert_clean(&roles);
}

#[test]
fn connections_of_a_retired_credential_close_when_its_grace_ends_and_not_before() {
    let _s = serial();
    let grace = Duration::from_secs(4);
    let (mut s, cfg) = configure_with(("40s", "40s"), "[lifecycle]\nretire_grace = \"4s\"\n");
    s.agent = Some(Agent(spawn_agent(&cfg, &s.w.path("agent.log"))));
    until(
        Duration::from_secs(30),
        "the gateway's password file",
        || s.w.file("pg.password").map(drop),
    );
    let local = s.local_password("pg");
    let (mut old, _) = raw_session(s.tcp, &local);
    let user = query(&mut old, "select current_user").expect("a query on the session");
    assert!(user.starts_with("v-"), "{user}");

    let next = until(Duration::from_secs(60), "a rotation", || {
        s.w.file("db.env")
            .map(|t| env_value(&t, "USERNAME"))
            .filter(|u| *u != user)
    });
    let rotated = std::time::Instant::now();
    // Within the grace the old session carries on, as the old role.
    assert_eq!(
        query(&mut old, "select current_user"),
        Ok(user.clone()),
        "the session of the retired credential was closed before its grace ended"
    );
    // New connections use the new credential at once.
    assert_eq!(current_user_tcp(&s), next);

    // At the end of the grace: 57P01, then the connection closes.
    let (tag, body) = message(&mut old);
    let waited = rotated.elapsed();
    let (code, msg) = error_fields(tag, &body);
    assert_eq!(code, "57P01", "{msg}");
    assert!(msg.contains("credential retired"), "{msg}");
    assert!(
        waited + Duration::from_millis(1500) >= grace,
        "closed {waited:?} after the rotation, before the {grace:?} grace"
    );
    let mut rest = Vec::new();
    old.read_to_end(&mut rest).expect("the connection closes");
    assert!(rest.is_empty(), "bytes after the FATAL error: {rest:?}");
    assert!(current_user_tcp(&s).starts_with("v-"));
    assert!(
        s.log()
            .contains("closing the gateway connections of the retired lease"),
        "{}",
        s.log()
    );

    let agent = s.agent.take().unwrap();
    assert!(agent.stop().success(), "{}", s.log());
    let roles = s.w.pg().vault_roles();
    s.w.assert_clean(&roles);
}

#[test]
fn a_gateway_only_secret_is_in_no_file_and_no_environment_of_the_workload() {
    let _s = serial();
    require_tool("psql", "apt-get install postgresql-client-15");
    let w = World::new(Some(("5m", "10m")));
    let auth = w.approle_auth();
    let tcp = free_port();
    let cfg = w.config(
        &auth,
        &format!(
            r#"
[[secret]]
name = "db"
path = "database/creds/app"
kind = "dynamic"
gateway_only = true

[[gateway]]
name = "pg"
kind = "postgres"
secret = "db"
listen = "127.0.0.1:{tcp}"
upstream = "127.0.0.1:{upstream}"
"#,
            upstream = w.pg().port
        ),
    );
    // The workload (root here, so it can read everything the agent wrote)
    // looks for its database role in every file it can see and in its
    // environment: the role name stands for the whole credential, which is
    // always rendered together with it.
    let script = format!(
        r#"set -e
dir="$SHROUD_SECRETS_DIR"
u=$(PGPASSWORD=$(cat "$dir/pg.password") psql -X -At -w -h 127.0.0.1 -p {tcp} -U app -d postgres -c "select current_user")
echo "user=$u"
case "$u" in v-*) ;; *) echo "not the dynamic role"; exit 3;; esac
if grep -rqF -- "$u" "$dir"; then echo "LEAK in a file: $(grep -rlF -- "$u" "$dir")"; fi
if env | grep -qF -- "$u"; then echo "LEAK in the environment"; fi
echo "files: $(cd "$dir" && find . -type f | sort | tr '\n' ' ')"
"#
    );
    let out = run_with_input(&mut run_script(&cfg, &script), b"", Duration::from_secs(60));
    let text = out.out();
    assert!(out.status.success(), "{text}{}", out.err());
    assert!(text.contains("user=v-"), "{text}");
    assert!(!text.contains("LEAK"), "{text}");
    assert!(text.contains("./pg.password"), "{text}");
    assert!(!text.contains("./db"), "the secret was rendered: {text}");
    let roles = w.pg().vault_roles();
    w.assert_clean(&roles);
}

#[test]
fn tls_upstream_is_verified_and_a_wrong_ca_is_refused() {
    let _s = serial();
    require_tool("openssl", "apt-get install openssl");
    require_tool("psql", "apt-get install postgresql-client-15");
    let w = World::new(Some(("5m", "10m")));
    let dir = w.path("tls");
    std::fs::create_dir_all(&dir).unwrap();
    make_ca(&dir, "other-ca");
    server_cert(&dir);
    let pg = w.pg();
    pg.enable_tls(&dir.join("server.crt"), &dir.join("server.key"));
    let auth = w.approle_auth();
    let (full, require, wrong, plain) = (free_port(), free_port(), free_port(), free_port());
    let ca = dir.join("ca.pem");
    let other = dir.join("other-ca.pem");
    let gateway = |name: &str, port: u16, host: &str, tls: &str| {
        format!(
            "[[gateway]]\nname = \"{name}\"\nkind = \"postgres\"\nsecret = \"db.env\"\nlisten = \"127.0.0.1:{port}\"\nupstream = \"{host}:{}\"\n{tls}\n",
            pg.port
        )
    };
    let cfg = w.config(
        &auth,
        &format!(
            "{DB_SECRET}{}{}{}{}",
            gateway(
                "full",
                full,
                "localhost",
                &format!("sslmode = \"verify-full\"\nca_file = \"{}\"", ca.display())
            ),
            gateway("req", require, "127.0.0.1", "sslmode = \"require\""),
            gateway(
                "wrong",
                wrong,
                "localhost",
                &format!(
                    "sslmode = \"verify-full\"\nca_file = \"{}\"",
                    other.display()
                )
            ),
            gateway("plain", plain, "127.0.0.1", ""),
        ),
    );
    let mut agent = Agent(spawn_agent(&cfg, &w.path("agent.log")));
    until(
        Duration::from_secs(30),
        "the gateways' password files",
        || w.file("plain.password").map(drop),
    );
    let ssl_of = |gateway: &str, port: u16| {
        let out = psql(
            "127.0.0.1",
            port,
            Some(&w.file(&format!("{gateway}.password")).unwrap()),
            "select ssl from pg_stat_ssl where pid = pg_backend_pid()",
        );
        assert!(
            out.status.success(),
            "psql through {gateway}: {}",
            out.err()
        );
        out.out().trim().to_string()
    };
    // The upstream session of each gateway is encrypted as configured.
    assert_eq!(ssl_of("full", full), "t", "verify-full did not use TLS");
    assert_eq!(ssl_of("req", require), "t", "require did not use TLS");
    assert_eq!(ssl_of("plain", plain), "f");
    // A bigger result through the TLS relay arrives whole.
    let out = psql(
        "127.0.0.1",
        full,
        Some(&w.file("full.password").unwrap()),
        "select sum(length(repeat('x', g))) from generate_series(1, 2000) g",
    );
    assert!(out.status.success(), "{}", out.err());
    assert_eq!(out.out().trim(), "2001000");

    // A certificate from another CA: the client gets 08006, the gateway
    // keeps serving.
    let (tag, body) = raw_login(wrong, &w.file("wrong.password").unwrap());
    let (code, msg) = error_fields(tag, &body);
    assert_eq!(code, "08006", "{msg}");
    assert!(
        msg.contains("TLS handshake") && msg.contains("certificate"),
        "{msg}"
    );
    assert_eq!(ssl_of("full", full), "t");

    sigterm(&agent.0);
    assert!(wait_with_deadline(&mut agent.0, Duration::from_secs(20)).success());
    let roles = pg.vault_roles();
    w.assert_clean(&roles);
}

/// The sample `series` (name and labels as the text format writes them).
fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

#[test]
fn metrics_audit_and_the_connection_cap() {
    let _s = serial();
    let promtool = require_tool("promtool", "apt-get install prometheus");
    require_tool("psql", "apt-get install postgresql-client-15");
    let w = World::new(Some(("5m", "10m")));
    let auth = w.approle_auth();
    let (tcp, metrics) = (free_port(), free_port());
    let audit = w.path("audit.jsonl");
    let cfg = w.config(
        &auth,
        &format!(
            "{DB_SECRET}[[gateway]]\nname = \"pg\"\nkind = \"postgres\"\nsecret = \"db.env\"\nlisten = \"127.0.0.1:{tcp}\"\nupstream = \"127.0.0.1:{}\"\nmax_connections = 2\n\n[metrics]\nlisten = \"127.0.0.1:{metrics}\"\n\n[audit]\npath = \"{}\"\n",
            w.pg().port,
            audit.display()
        ),
    );
    let mut agent = Agent(spawn_agent(&cfg, &w.path("agent.log")));
    until(
        Duration::from_secs(30),
        "the gateway's password file",
        || w.file("pg.password").map(drop),
    );
    let local = w.file("pg.password").unwrap();
    let addr: std::net::SocketAddr = format!("127.0.0.1:{metrics}").parse().unwrap();
    let scrape = || shroud_e2e::http::get(addr, "/metrics").1;

    // Two sessions fill the cap; a third client gets 53300 at once.
    let (mut one, _) = raw_session(tcp, &local);
    let (mut two, _) = raw_session(tcp, &local);
    let mut third = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    third
        .set_read_timeout(Some(Duration::from_secs(30)))
        .unwrap();
    third.write_all(&startup("workload")).unwrap();
    let (tag, body) = message(&mut third);
    let (code, msg) = error_fields(tag, &body);
    assert_eq!(code, "53300", "{msg}");
    assert!(msg.contains("too many clients"), "{msg}");
    let out = psql("127.0.0.1", tcp, Some(&local), "select 1");
    assert!(
        !out.status.success() && out.err().contains("too many clients"),
        "{}",
        out.err()
    );
    // The sessions inside the cap are untouched; when one leaves, a new client gets in.
    assert!(query(&mut one, "select current_user")
        .unwrap()
        .starts_with("v-"));
    drop(one);
    until(
        Duration::from_secs(30),
        "a free place under the cap",
        || {
            (sample(&scrape(), "shroud_gateway_connections_open{gateway=\"pg\"}") == Some(1.0))
                .then_some(())
        },
    );
    let out = psql("127.0.0.1", tcp, Some(&local), "select current_user");
    assert!(out.status.success(), "{}", out.err());
    let role = out.out().trim().to_string();
    assert!(query(&mut two, "select 1").is_ok());
    drop(two);
    until(Duration::from_secs(30), "every session closed", || {
        (sample(&scrape(), "shroud_gateway_connections_open{gateway=\"pg\"}") == Some(0.0))
            .then_some(())
    });
    // A wrong local password and garbage are counted by kind.
    let _ = raw_login(tcp, "wrong");
    let mut g = TcpStream::connect(("127.0.0.1", tcp)).unwrap();
    g.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    g.write_all(b"GET / HTTP/1.1\r\n\r\n").unwrap();
    let _ = message(&mut g);

    let text = until(Duration::from_secs(30), "the counters", || {
        let t = scrape();
        (sample(
            &t,
            "shroud_gateway_errors_total{gateway=\"pg\",kind=\"protocol\"}",
        ) >= Some(1.0))
        .then_some(t)
    });
    let at_least = |series: &str, min: f64| {
        let v = sample(&text, series).unwrap_or_else(|| panic!("no {series} in:\n{text}"));
        assert!(v >= min, "{series} = {v}, expected at least {min}");
    };
    at_least("shroud_gateway_connections_open{gateway=\"pg\"}", 0.0);
    // Accepted ones: the two sessions, psql, the wrong password, the garbage
    // (those over the cap are counted as errors).
    at_least("shroud_gateway_connections_total{gateway=\"pg\"}", 5.0);
    at_least(
        "shroud_gateway_upstream_logins_total{gateway=\"pg\",result=\"ok\"}",
        3.0,
    );
    at_least("shroud_gateway_upstream_bytes_total{gateway=\"pg\"}", 10.0);
    at_least("shroud_gateway_client_bytes_total{gateway=\"pg\"}", 10.0);
    at_least(
        "shroud_gateway_errors_total{gateway=\"pg\",kind=\"too_many_connections\"}",
        2.0,
    );
    at_least(
        "shroud_gateway_errors_total{gateway=\"pg\",kind=\"local_auth\"}",
        1.0,
    );
    let gateway_lines: String = text
        .lines()
        .filter(|l| l.contains("shroud_gateway_"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert!(
        !gateway_lines.contains(&role),
        "a role name in a label:\n{gateway_lines}"
    );
    // promtool parses and lints the gateway metrics.
    let checked = run_with_input(
        Command::new(&promtool).args(["check", "metrics"]),
        gateway_lines.as_bytes(),
        Duration::from_secs(60),
    );
    assert!(
        checked.status.success(),
        "promtool check metrics: {}{}\n{gateway_lines}",
        checked.out(),
        checked.err()
    );

    sigterm(&agent.0);
    assert!(wait_with_deadline(&mut agent.0, Duration::from_secs(20)).success());
    // The audit trail has each upstream login with the lease it used: the
    // hash of the lease the agent fetched for the secret.
    let trail = std::fs::read_to_string(&audit).unwrap();
    let records: Vec<serde_json::Value> = trail
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let fetched = records
        .iter()
        .find(|r| r["event"] == "fetch" && r["secret"] == "db.env")
        .and_then(|r| r["lease_id_sha256"].as_str())
        .expect("a fetch record with the lease");
    let logins: Vec<_> = records
        .iter()
        .filter(|r| r["event"] == "gateway_login")
        .collect();
    assert!(logins.len() >= 3, "{trail}");
    for l in &logins {
        assert_eq!(l["gateway"], "pg", "{l}");
        assert_eq!(l["secret"], "db.env", "{l}");
        assert_eq!(l["outcome"], "ok", "{l}");
        assert_eq!(l["lease_id_sha256"].as_str(), Some(fetched), "{l}");
    }
    assert!(!trail.contains(&role), "the audit trail names the role");
    let roles = w.pg().vault_roles();
    w.assert_clean(&roles);
}

/// A TCP relay to PostgreSQL that can hold one connection (accepted, nothing
/// forwarded) until released: the gateway's upstream login then waits between
/// its credential read and the server's answer.
struct HoldingProxy {
    port: u16,
    target: std::sync::Arc<std::sync::OnceLock<u16>>,
    hold_next: std::sync::Arc<std::sync::atomic::AtomicBool>,
    held: std::sync::mpsc::Receiver<()>,
    release: std::sync::mpsc::Sender<()>,
}

impl HoldingProxy {
    fn start() -> HoldingProxy {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let port = listener.local_addr().unwrap().port();
        let target = std::sync::Arc::new(std::sync::OnceLock::<u16>::new());
        let hold_next = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (held_tx, held) = std::sync::mpsc::channel();
        let (release, release_rx) = std::sync::mpsc::channel::<()>();
        let (t, h) = (target.clone(), hold_next.clone());
        // Lives as long as the test process; holds nothing but sockets.
        std::thread::spawn(move || {
            for client in listener.incoming() {
                let Ok(client) = client else { return };
                if h.swap(false, Ordering::SeqCst) {
                    let _ = held_tx.send(());
                    let _ = release_rx.recv_timeout(Duration::from_secs(60));
                }
                let Some(port) = t.get() else { return };
                let Ok(server) = TcpStream::connect(("127.0.0.1", *port)) else {
                    continue;
                };
                for (mut from, mut to) in [
                    (client.try_clone().unwrap(), server.try_clone().unwrap()),
                    (server, client),
                ] {
                    std::thread::spawn(move || {
                        let _ = std::io::copy(&mut from, &mut to);
                        let _ = to.shutdown(std::net::Shutdown::Write);
                    });
                }
            }
        });
        HoldingProxy {
            port,
            target,
            hold_next,
            held,
            release,
        }
    }
}

/// A credential rotated mid-handshake: the gateway has read credential A and
/// is waiting for the server (held by a relay) when the agent rotates to B and
/// revokes A (`retire_grace = "0s"`: the role is dropped). The server then
/// refuses A (28P01); the gateway tries once more with B and the client sees
/// only a successful login, as B's role. Never a hang: every wait is bounded.
#[test]
fn a_credential_rotated_mid_handshake_is_retried_with_the_newest() {
    let _s = serial();
    let proxy = HoldingProxy::start();
    let extra = format!(
        "[lifecycle]\nretire_grace = \"0s\"\n\n[[gateway]]\nname = \"held\"\nkind = \"postgres\"\nsecret = \"db.env\"\nlisten = \"127.0.0.1:{held}\"\nupstream = \"127.0.0.1:{up}\"\n",
        held = free_port(),
        up = proxy.port,
    );
    let held_port: u16 = extra
        .split("listen = \"127.0.0.1:")
        .nth(1)
        .and_then(|r| r.split('"').next())
        .and_then(|p| p.parse().ok())
        .unwrap();
    let (mut s, cfg) = configure_with(("8s", "8s"), &extra);
    proxy.target.set(s.w.pg().port).unwrap();
    s.agent = Some(Agent(spawn_agent(&cfg, &s.w.path("agent.log"))));
    until(
        Duration::from_secs(30),
        "the gateway's password file",
        || s.w.file("held.password").map(drop),
    );
    let local = s.local_password("held");
    let user_now = |s: &Setup| s.w.file("db.env").map(|t| env_value(&t, "USERNAME"));
    let mut retried = None;
    for _ in 0..10 {
        let Some(before) = user_now(&s) else { continue };
        proxy
            .hold_next
            .store(true, std::sync::atomic::Ordering::SeqCst);
        let pw = local.clone();
        let client = std::thread::spawn(move || try_session(held_port, &pw));
        proxy
            .held
            .recv_timeout(Duration::from_secs(30))
            .expect("the gateway's upstream connection reached the relay");
        // While the login waits (the gateway gives the server 10 s): did A
        // rotate out and its role go?
        let deadline = std::time::Instant::now() + Duration::from_secs(7);
        let mut rotated = None;
        while std::time::Instant::now() < deadline {
            if let Some(now) = user_now(&s).filter(|u| *u != before) {
                if !s.w.pg().role_exists(&before) {
                    rotated = Some(now);
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        proxy.release.send(()).unwrap();
        let session = client.join().unwrap();
        if let Some(now) = rotated {
            let mut session = session.unwrap_or_else(|e| {
                panic!(
                    "the login was not retried with the newest credential: {e:?}\n{}",
                    s.log()
                )
            });
            let who = query(&mut session, "select current_user").expect("a query");
            // B, or a newer one if the agent rotated again meanwhile.
            assert_ne!(who, before, "logged in with the dropped role");
            retried = Some((before, now, who));
            break;
        }
        // No rotation seen during this hold: A logged in, or A's role went
        // before a newer credential was offered (its lease ran out at Vault
        // first): a protocol-correct refusal. Either way, try again.
        if let Err((code, msg)) = &session {
            assert!(code.starts_with("28"), "{code} {msg}");
        }
    }
    let (before, now, who) = retried.expect("no rotation happened during a held login");
    eprintln!("held login of {before}: rotated to {now}, logged in as {who}");
    assert!(
        s.log()
            .contains("the credential changed during the login; trying the newest"),
        "{}",
        s.log()
    );
    let agent = s.agent.take().unwrap();
    assert!(agent.stop().success(), "{}", s.log());
    let roles = s.w.pg().vault_roles();
    s.w.assert_clean(&roles);
}
