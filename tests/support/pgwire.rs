//! The PostgreSQL wire protocol by hand, for tests that need what `psql`
//! hides (exact messages, sessions held open, pipelining), and the
//! certificates of a TLS-enabled test server.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::Duration;

/// A StartupMessage (protocol 3.0).
pub fn startup(user: &str) -> Vec<u8> {
    let mut body = 196_608i32.to_be_bytes().to_vec();
    for s in ["user", user, "database", "postgres", ""] {
        body.extend_from_slice(s.as_bytes());
        body.push(0);
    }
    let mut p = ((body.len() + 4) as i32).to_be_bytes().to_vec();
    p.extend(body);
    p
}

/// Reads one server message: (type, body).
pub fn message(s: &mut TcpStream) -> (u8, Vec<u8>) {
    let mut head = [0u8; 5];
    s.read_exact(&mut head).expect("a message from the gateway");
    let len = i32::from_be_bytes([head[1], head[2], head[3], head[4]]) as usize;
    let mut body = vec![0u8; len - 4];
    s.read_exact(&mut body).unwrap();
    (head[0], body)
}

/// An ErrorResponse's SQLSTATE and message.
pub fn error_fields(tag: u8, body: &[u8]) -> (String, String) {
    assert_eq!(tag, b'E', "expected an ErrorResponse");
    let (mut code, mut msg) = (String::new(), String::new());
    for field in body.split(|&b| b == 0).filter(|f| !f.is_empty()) {
        let v = String::from_utf8_lossy(&field[1..]).to_string();
        match field[0] {
            b'C' => code = v,
            b'M' => msg = v,
            _ => {}
        }
    }
    (code, msg)
}

/// Connects to a TCP gateway and, asked for a cleartext password, gives
/// `password`: the server's answer to it is next on the stream.
pub fn give_password(port: u16, password: &str) -> TcpStream {
    let mut s = TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(60))).unwrap();
    s.write_all(&startup("workload")).unwrap();
    let (tag, body) = message(&mut s);
    assert_eq!(
        (tag, body.as_slice()),
        (b'R', &3i32.to_be_bytes()[..]),
        "cleartext password request"
    );
    let mut p = vec![b'p'];
    p.extend_from_slice(&((password.len() + 5) as i32).to_be_bytes());
    p.extend_from_slice(password.as_bytes());
    p.push(0);
    s.write_all(&p).unwrap();
    s
}

/// Logs in to a TCP gateway by hand with `password`; returns the server's
/// answer after the password.
pub fn raw_login(port: u16, password: &str) -> (u8, Vec<u8>) {
    message(&mut give_password(port, password))
}

/// A session logged in through a TCP gateway by hand, up to ReadyForQuery;
/// with the cancel key the gateway gave.
pub fn raw_session(port: u16, password: &str) -> (TcpStream, (i32, i32)) {
    let mut s = give_password(port, password);
    let mut key = None;
    loop {
        match message(&mut s) {
            (b'K', b) => {
                key = Some((
                    i32::from_be_bytes([b[0], b[1], b[2], b[3]]),
                    i32::from_be_bytes([b[4], b[5], b[6], b[7]]),
                ))
            }
            (b'Z', _) => break,
            (b'E', b) => panic!("login refused: {:?}", error_fields(b'E', &b)),
            _ => {}
        }
    }
    (s, key.expect("no BackendKeyData"))
}

/// A simple Query message.
pub fn query_message(sql: &str) -> Vec<u8> {
    let mut q = vec![b'Q'];
    q.extend_from_slice(&((sql.len() + 5) as i32).to_be_bytes());
    q.extend_from_slice(sql.as_bytes());
    q.push(0);
    q
}

/// A simple query on a raw session: the first column of the first row, or the
/// error's (SQLSTATE, message).
pub fn query(s: &mut TcpStream, sql: &str) -> Result<String, (String, String)> {
    s.write_all(&query_message(sql)).unwrap();
    let mut value = None;
    loop {
        match message(s) {
            (b'D', b) if value.is_none() => {
                let len = i32::from_be_bytes([b[2], b[3], b[4], b[5]]) as usize;
                value = Some(String::from_utf8_lossy(&b[6..6 + len]).to_string());
            }
            (b'E', b) => return Err(error_fields(b'E', &b)),
            (b'Z', _) => return Ok(value.unwrap_or_default()),
            _ => {}
        }
    }
}

/// A hand-made login through a TCP gateway up to ReadyForQuery, or the
/// server's error (SQLSTATE, message).
pub fn try_session(port: u16, password: &str) -> Result<TcpStream, (String, String)> {
    let mut s = give_password(port, password);
    loop {
        match message(&mut s) {
            (b'Z', _) => return Ok(s),
            (b'E', b) => return Err(error_fields(b'E', &b)),
            _ => {}
        }
    }
}

/// Runs openssl with `args` in `dir`.
pub fn openssl(dir: &Path, args: &[&str]) {
    let out = Command::new("openssl")
        .current_dir(dir)
        .args(args)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "openssl {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A CA `<name>.pem` (key `<name>.key`) in `dir`.
pub fn make_ca(dir: &Path, name: &str) {
    openssl(
        dir,
        &[
            "req",
            "-x509",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-days",
            "2",
            "-subj",
            &format!("/CN={name}"),
            "-addext",
            "basicConstraints=critical,CA:TRUE",
            "-addext",
            "keyUsage=critical,keyCertSign,cRLSign",
            "-keyout",
            &format!("{name}.key"),
            "-out",
            &format!("{name}.pem"),
        ],
    );
}

/// A CA `ca.pem` in `dir` and a server certificate it signed for `localhost`
/// and 127.0.0.1 (`server.crt`, `server.key`).
pub fn server_cert(dir: &Path) {
    make_ca(dir, "ca");
    openssl(
        dir,
        &[
            "req",
            "-newkey",
            "ec",
            "-pkeyopt",
            "ec_paramgen_curve:prime256v1",
            "-nodes",
            "-subj",
            "/CN=localhost",
            "-keyout",
            "server.key",
            "-out",
            "server.csr",
        ],
    );
    std::fs::write(
        dir.join("ext"),
        "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n",
    )
    .unwrap();
    openssl(
        dir,
        &[
            "x509",
            "-req",
            "-in",
            "server.csr",
            "-CA",
            "ca.pem",
            "-CAkey",
            "ca.key",
            "-CAcreateserial",
            "-days",
            "2",
            "-extfile",
            "ext",
            "-out",
            "server.crt",
        ],
    );
}
