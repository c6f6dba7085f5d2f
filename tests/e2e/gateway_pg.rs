//! `[[gateway]] kind = "postgres"`, what the relay on the gateway's runtime
//! must hold against a real OpenBao and PostgreSQL 15: a client that
//! pipelines through the TLS relay is never deadlocked, errors the server
//! sends before the session starts do not name the gateway's role, and the
//! ready marker means the gateways accept connections, after a restart that
//! adopts the killed agent's state too.

use std::io::{BufReader, Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::sync::mpsc;
use std::time::Duration;

use shroud_e2e::pgwire::*;
use shroud_e2e::world::*;
use shroud_e2e::*;

/// One TCP gateway `name` on `port` to the world's server, with `extra`
/// settings (TLS).
fn gateway(w: &World, name: &str, port: u16, host: &str, extra: &str) -> String {
    format!(
        "[[gateway]]\nname = \"{name}\"\nkind = \"postgres\"\nsecret = \"db.env\"\nlisten = \"127.0.0.1:{port}\"\nupstream = \"{host}:{}\"\n{extra}\n",
        w.pg().port
    )
}

/// The world's server with TLS on (certificates in `<world>/tls`); returns
/// the directory.
fn with_tls(w: &World) -> std::path::PathBuf {
    require_tool("openssl", "apt-get install openssl");
    let dir = w.path("tls");
    std::fs::create_dir_all(&dir).unwrap();
    server_cert(&dir);
    w.pg()
        .enable_tls(&dir.join("server.crt"), &dir.join("server.key"));
    dir
}

/// Queries in the batch, each about 4 KiB (a comment pads it) and answered
/// with a 16 KiB value: 8 MiB written, 32 MiB read back.
const QUERIES: usize = 2048;
const ANSWER: usize = 16 * 1024;

/// Reads answers to [`QUERIES`] queries of the batch; the number complete.
fn read_answers(s: TcpStream) -> Result<usize, String> {
    let mut r = BufReader::with_capacity(64 * 1024, s);
    let mut done = 0;
    while done < QUERIES {
        let mut head = [0u8; 5];
        r.read_exact(&mut head)
            .map_err(|e| format!("after {done} answers: {e}"))?;
        let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
        let mut body = vec![0u8; len - 4];
        r.read_exact(&mut body)
            .map_err(|e| format!("after {done} answers: {e}"))?;
        match head[0] {
            b'D' => {
                let n = i32::from_be_bytes([body[2], body[3], body[4], body[5]]) as usize;
                if n != ANSWER {
                    return Err(format!("answer {done} holds {n} bytes, not {ANSWER}"));
                }
            }
            b'E' => return Err(format!("{:?}", error_fields(b'E', &body))),
            b'Z' => done += 1,
            _ => {}
        }
    }
    Ok(done)
}

/// A client that pipelines: one thread writes the whole batch of queries
/// (8 MiB) in one `write_all`, never waiting for an answer, while another
/// reads the answers (32 MiB). Each answer is bigger than its query, so the
/// server's answers back up the moment the relay stops reading them: a relay
/// that blocks in a write to the server while it could be reading (as the
/// single-threaded blocking TLS relay did) deadlocks the three. Every wait is
/// bounded: a deadlock fails the test instead of hanging it.
#[test]
fn a_pipelining_client_through_the_tls_relay_is_never_deadlocked() {
    let _s = serial();
    let w = World::new(Some(("5m", "10m")));
    let dir = with_tls(&w);
    let auth = w.approle_auth();
    let port = free_port();
    let tls = format!(
        "sslmode = \"verify-full\"\nca_file = \"{}\"",
        dir.join("ca.pem").display()
    );
    let cfg = w.config(
        &auth,
        &format!("{DB_SECRET}{}", gateway(&w, "tls", port, "localhost", &tls)),
    );
    let agent = Agent(spawn_agent(&cfg, &w.path("agent.log")));
    let log = || std::fs::read_to_string(w.path("agent.log")).unwrap_or_default();
    until(
        Duration::from_secs(30),
        "the gateway's password file",
        || w.file("tls.password").map(drop),
    );
    let (session, _) = raw_session(port, &w.file("tls.password").unwrap());
    session.set_read_timeout(None).unwrap();
    let pad = "p".repeat(4150);
    let sql = format!("select repeat('x', {ANSWER}) /* {pad} */");
    let batch: Vec<u8> = std::iter::repeat_n(query_message(&sql), QUERIES)
        .flatten()
        .collect();
    assert!(batch.len() >= 8 << 20, "the batch is {} bytes", batch.len());

    let (tx, rx) = mpsc::channel();
    let reader = session.try_clone().unwrap();
    let answers_tx = tx.clone();
    std::thread::spawn(move || {
        let _ = answers_tx.send(("answers", read_answers(reader)));
    });
    let mut writer = session;
    std::thread::spawn(move || {
        let sent = writer
            .write_all(&batch)
            .map(|()| QUERIES)
            .map_err(|e| e.to_string());
        let _ = tx.send(("batch written", sent));
    });
    let mut finished = Vec::new();
    for _ in 0..2 {
        match rx.recv_timeout(Duration::from_secs(120)) {
            Ok((what, Ok(n))) => finished.push((what, n)),
            Ok((what, Err(e))) => panic!("{what}: {e}\n{}", log()),
            Err(_) => panic!(
                "deadlocked: after 120 s only {finished:?} of the batch written and all answers read\n{}",
                log()
            ),
        }
    }
    assert!(finished.contains(&("answers", QUERIES)), "{finished:?}");
    assert!(agent.stop().success(), "{}", log());
    let roles = w.pg().vault_roles();
    w.assert_clean(&roles);
}

/// The server may still refuse a session after it authenticated the role
/// (here `role "v-…" is not permitted to log in`, 28000): the client learns
/// why, but not the dynamic role's name, which it was never meant to hold.
#[test]
fn errors_before_the_session_starts_do_not_name_the_gateway_role() {
    let _s = serial();
    let w = World::new(Some(("5m", "10m")));
    let auth = w.approle_auth();
    let port = free_port();
    let cfg = w.config(
        &auth,
        &format!("{DB_SECRET}{}", gateway(&w, "pg", port, "127.0.0.1", "")),
    );
    let agent = Agent(spawn_agent(&cfg, &w.path("agent.log")));
    let log = || std::fs::read_to_string(w.path("agent.log")).unwrap_or_default();
    until(
        Duration::from_secs(30),
        "the gateway's password file",
        || w.file("pg.password").map(drop),
    );
    let local = w.file("pg.password").unwrap();
    let role = env_value(&w.file("db.env").unwrap(), "USERNAME");
    assert!(role.starts_with("v-"), "{role}");
    // The role works through the gateway; then it may no longer log in.
    drop(raw_session(port, &local));
    w.pg().admin(&format!("alter role \"{role}\" nologin"));

    let mut s = give_password(port, &local);
    // Everything the client gets, up to the close.
    let mut got = Vec::new();
    s.read_to_end(&mut got)
        .expect("the gateway closes the connection");
    let text = String::from_utf8_lossy(&got);
    assert!(
        text.contains("is not permitted to log in"),
        "not the server's refusal: {text:?}"
    );
    assert!(text.contains("28000"), "{text:?}");
    assert!(
        !text.contains(&role),
        "the client saw the role name: {text:?}"
    );
    assert!(text.contains("<gateway role>"), "{text:?}");

    assert!(agent.stop().success(), "{}", log());
    let roles = w.pg().vault_roles();
    w.assert_clean(&roles);
}

/// Opens `fifo` for writing within 60 s (it opens once a reader opens it).
fn open_fifo(fifo: &Path) -> std::fs::File {
    let (tx, rx) = mpsc::channel();
    let path = fifo.to_path_buf();
    std::thread::spawn(move || {
        let _ = tx.send(std::fs::OpenOptions::new().write(true).open(path));
    });
    rx.recv_timeout(Duration::from_secs(60))
        .expect("the agent did not open the CA file within 60 s")
        .unwrap()
}

/// `.shroud/ready` is the workload's signal to start (`shroud exec
/// --wait-ready`, a startupProbe): once it exists, the gateways must accept
/// connections. The gateway's `ca_file` is a FIFO, so the agent is held
/// after its first render and before its gateway listens, for as long as the
/// test wants: no marker may exist then.
#[test]
fn the_ready_marker_means_the_gateways_accept_connections() {
    let _s = serial();
    require_tool("psql", "apt-get install postgresql-client-15");
    let w = World::new(Some(("5m", "10m")));
    let dir = with_tls(&w);
    let fifo = w.path("ca.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let auth = w.approle_auth();
    let port = free_port();
    let tls = format!(
        "sslmode = \"verify-full\"\nca_file = \"{}\"",
        fifo.display()
    );
    let cfg = w.config(
        &auth,
        &format!("{DB_SECRET}{}", gateway(&w, "pg", port, "localhost", &tls)),
    );
    let agent = Agent(spawn_agent(&cfg, &w.path("agent.log")));
    let log = || std::fs::read_to_string(w.path("agent.log")).unwrap_or_default();
    let mut ca = open_fifo(&fifo);
    // The agent is reading the gateway's CA: its secrets are rendered, its
    // gateway does not listen yet.
    assert!(w.file("db.env").is_some(), "{}", log());
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the gateway listens already"
    );
    assert!(
        w.file(".shroud/ready").is_none(),
        "the ready marker exists while the gateway does not listen\n{}",
        log()
    );
    ca.write_all(&std::fs::read(dir.join("ca.pem")).unwrap())
        .unwrap();
    drop(ca);
    until(Duration::from_secs(30), "the ready marker", || {
        w.file(".shroud/ready")
    });
    let out = run_with_input(
        std::process::Command::new("psql")
            .env_clear()
            .env("PATH", std::env::var_os("PATH").unwrap_or_default())
            .env("PGPASSWORD", w.file("pg.password").unwrap())
            .env("PGCONNECT_TIMEOUT", "20")
            .args(["-X", "-At", "-w", "-h", "127.0.0.1", "-p"])
            .arg(port.to_string())
            .args([
                "-U",
                "workload",
                "-d",
                "postgres",
                "-c",
                "select current_user",
            ]),
        b"",
        Duration::from_secs(60),
    );
    assert!(out.status.success(), "{}\n{}", out.err(), log());
    assert!(out.out().starts_with("v-"), "{}", out.out());

    assert!(agent.stop().success(), "{}", log());
    let roles = w.pg().vault_roles();
    w.assert_clean(&roles);
}

/// The same after a restart that adopts the killed agent's `[state]`: the
/// marker the killed agent left is withdrawn before the new agent adopts,
/// and written again only once the gateway listens again. A `shroud exec
/// --wait-ready` started in between starts its command only then (the
/// command's first act is a session through the gateway, which fails while
/// the gateway does not listen); one already running is not disturbed by the
/// marker going and coming back.
#[test]
fn after_a_restart_that_adopts_the_ready_marker_waits_for_the_gateways_again() {
    let _s = serial();
    require_tool("psql", "apt-get install postgresql-client-15");
    let w = World::new(Some(("5m", "10m")));
    let dir = with_tls(&w);
    let ca = std::fs::read(dir.join("ca.pem")).unwrap();
    let fifo = w.path("ca.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let state = Tmpfs::new();
    let auth = w.approle_auth();
    let port = free_port();
    let tls = format!(
        "sslmode = \"verify-full\"\nca_file = \"{}\"",
        fifo.display()
    );
    let cfg = w.config(
        &auth,
        &format!(
            "[state]\ndir = \"{}\"\n{DB_SECRET}{}",
            state.path().display(),
            gateway(&w, "pg", port, "localhost", &tls)
        ),
    );
    let log =
        |n: u32| std::fs::read_to_string(w.path(&format!("agent-{n}.log"))).unwrap_or_default();
    let first = Agent(spawn_agent(&cfg, &w.path("agent-1.log")));
    open_fifo(&fifo).write_all(&ca).unwrap();
    until(
        Duration::from_secs(30),
        "the first agent's ready marker",
        || w.file(".shroud/ready"),
    );

    // A workload that started on the first agent's marker.
    let secrets = w.out.path();
    let (started, stop) = (w.path("started"), w.path("stop"));
    let mut running = spawn_started(
        shroud()
            .args(["exec", "--wait-ready", "--secrets-dir"])
            .arg(secrets)
            .args(["--", "sh", "-c"])
            .arg(format!(
                "touch {0}; i=0; while [ ! -e {1} ] && [ $i -lt 2400 ]; do sleep 0.05; i=$((i+1)); done",
                started.display(),
                stop.display()
            )),
        &started,
    );

    // Killed outright, the first agent cannot withdraw its marker.
    first.kill();
    assert!(w.file(".shroud/ready").is_some());
    let second = Agent(spawn_agent(&cfg, &w.path("agent-2.log")));
    let mut held = open_fifo(&fifo);
    // The second agent adopted the state and is reading its gateway's CA.
    assert!(
        log(2).contains("adopted the previous agent's state"),
        "{}",
        log(2)
    );
    assert!(
        TcpStream::connect(("127.0.0.1", port)).is_err(),
        "the gateway listens already"
    );
    assert!(
        w.file(".shroud/ready").is_none(),
        "a ready marker exists while the gateway does not listen\n{}",
        log(2)
    );

    // A workload started now waits for the new marker.
    let app = format!(
        "PGPASSWORD=$(cat {}) exec psql -X -At -w -h 127.0.0.1 -p {port} -U workload -d postgres -c \"select 'through the gateway'\"",
        secrets.join("pg.password").display()
    );
    let mut waiting = shroud()
        .args(["exec", "--wait-ready", "--secrets-dir"])
        .arg(secrets)
        .args(["--", "sh", "-c", &app])
        .env("PGCONNECT_TIMEOUT", "20")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn_guarded();
    let (out, out_t) = shroud_e2e::process::Collected::spawn(waiting.stdout.take().unwrap());
    let (err, err_t) = shroud_e2e::process::Collected::spawn(waiting.stderr.take().unwrap());
    err.wait_for(
        "exec to wait for the marker",
        Duration::from_secs(60),
        |t| t.contains("waiting for the agent's ready marker"),
    );
    held.write_all(&ca).unwrap();
    drop(held);
    until(
        Duration::from_secs(30),
        "the second agent's ready marker",
        || w.file(".shroud/ready"),
    );
    let status = wait_with_deadline(&mut waiting, Duration::from_secs(60));
    out_t.join().unwrap();
    err_t.join().unwrap();
    assert!(status.success(), "{}\n{}", err.text(), log(2));
    assert_eq!(out.text().trim(), "through the gateway", "{}", err.text());
    assert!(
        running.try_wait().unwrap().is_none(),
        "the running workload's exec exited"
    );

    // That exec's exit marker ends the second agent; then the running one
    // ends as told (its exit marker is the last thing left).
    let mut second = second;
    let status = wait_with_deadline(&mut second.0, Duration::from_secs(30));
    assert!(status.success(), "{}", log(2));
    std::fs::write(&stop, "").unwrap();
    let status = wait_with_deadline(&mut running, Duration::from_secs(30));
    assert!(status.success(), "{status:?}");
    std::fs::remove_file(secrets.join(".shroud/exited")).unwrap();
    let roles = w.pg().vault_roles();
    w.assert_clean(&roles);
}
