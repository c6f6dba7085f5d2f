//! The deployment examples (`examples/`), run or validated for real: the container
//! image and both docker-compose stacks against a real Docker engine, OpenBao and
//! PostgreSQL; the Nomad, Kubernetes and CI files parsed and checked against the
//! real binary's flags and config keys.
//!
//! The checks are Python programs under `tests/examples/` (PyYAML, python-hcl2,
//! kubernetes-validate and Compose live there); each test runs one and fails with
//! its output. A missing prerequisite fails the test with how to install it
//! (`scripts/test` installs everything and starts dockerd).

use std::path::PathBuf;
use std::process::Command;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use shroud_e2e::{shroud_bin, workspace, SpawnGuarded as _};

/// The Docker checks share image tags and compete for two cores: one at a time.
static DOCKER: Mutex<()> = Mutex::new(());

fn helper(name: &str) -> PathBuf {
    workspace().join("tests").join("examples").join(name)
}

/// Runs `python3 tests/examples/<script> <args>`, failing with its output unless it
/// exits 0 within `limit`.
fn run_check(script: &str, args: &[&str], limit: Duration) {
    let python = shroud_e2e::require_tool("python3", "apt-get install python3");
    let started = Instant::now();
    let mut child = Command::new(python)
        .arg(helper(script))
        .args(args)
        .env("SHROUD_BIN", shroud_bin())
        .current_dir(workspace())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn_guarded();
    let out = child.stdout.take().unwrap();
    let err = child.stderr.take().unwrap();
    let out_t = std::thread::spawn(move || std::io::read_to_string(out).unwrap_or_default());
    let err_t = std::thread::spawn(move || std::io::read_to_string(err).unwrap_or_default());
    let status = shroud_e2e::wait_with_deadline(&mut child, limit);
    let (stdout, stderr) = (out_t.join().unwrap(), err_t.join().unwrap());
    eprintln!("{stdout}{stderr}");
    let what = format!("tests/examples/{script} {}", args.join(" "));
    match status.code() {
        Some(0) => eprintln!("{what}: ok in {:.1?}", started.elapsed()),
        Some(2) => {
            panic!("{what}: a prerequisite is missing (see above); scripts/test installs it")
        }
        _ => panic!("{what} failed ({status}):\n{stdout}{stderr}"),
    }
}

fn docker_check(args: &[&str]) {
    let _one = DOCKER.lock().unwrap_or_else(|e| e.into_inner());
    run_check("docker_e2e.py", args, Duration::from_secs(600));
}

#[test]
fn image_holds_only_a_static_shroud_and_runs_from_scratch() {
    docker_check(&["image"]);
}

#[test]
fn compose_sidecar_stack_masks_propagates_exit_and_revokes() {
    docker_check(&["sidecar"]);
}

#[test]
fn compose_single_container_run_masks_propagates_exit_and_revokes() {
    docker_check(&["run"]);
}

#[test]
fn compose_gateway_stack_gives_the_app_a_database_without_a_password() {
    docker_check(&["gateway"]);
}

#[test]
fn nomad_jobs_agree_with_shroud_flags_and_config_keys() {
    run_check("check_nomad.py", &[], Duration::from_secs(120));
}

#[test]
fn kubernetes_manifests_validate_and_go_through_the_webhook() {
    run_check("check_kubernetes.py", &[], Duration::from_secs(180));
}

#[test]
fn ci_pipelines_use_real_flags_and_their_scan_gate_works() {
    run_check("check_ci.py", &[], Duration::from_secs(120));
}
