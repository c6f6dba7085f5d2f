//! Whole answers, as Consul Template templates see them: a read or write whose
//! entire JSON answer (request id, lease fields, data, warnings) is kept, and
//! consul-template's KV v2 detection (`sys/internal/ui/mounts/<path>`), which
//! lets `secret "secret/app"` read `secret/data/app` on a version 2 mount.

use serde_json::Value;

use super::api::answer;
use super::{VaultClient, VaultError};

/// `GET path`: the whole answer.
pub fn get(c: &VaultClient, path: &str) -> Result<Value, VaultError> {
    answer(c.request("read", "GET", path, None)?, "read", path)
}

/// `POST path` with `body`: the whole answer.
pub fn post(c: &VaultClient, path: &str, body: &Value) -> Result<Value, VaultError> {
    answer(c.request("write", "POST", path, Some(body))?, "write", path)
}

/// The path consul-template reads for `path`: on a KV version 2 mount,
/// `<mount>/data/<rest>` unless it already names `data/` or `metadata/`.
/// When the mount cannot be looked up, the path is used as is (as
/// consul-template does, assuming version 1).
pub fn kv_read_path(c: &VaultClient, path: &str) -> String {
    let path = path.trim_matches('/');
    let lookup = format!("sys/internal/ui/mounts/{path}");
    let Ok(Some(a)) = c.request("read", "GET", &lookup, None) else {
        return path.to_string();
    };
    let data = &a.0["data"];
    let kv2 =
        data["type"].as_str() == Some("kv") && data["options"]["version"].as_str() == Some("2");
    let mount = data["path"].as_str().unwrap_or("");
    if !kv2 || mount.is_empty() {
        return path.to_string();
    }
    shim_kv2(path, mount)
}

/// consul-template's `shimKVv2Path`.
fn shim_kv2(path: &str, mount: &str) -> String {
    let mount_dir = mount.trim_end_matches('/');
    if path == mount_dir {
        return format!("{mount_dir}/data");
    }
    let rest = path.strip_prefix(mount).unwrap_or(path);
    if rest.starts_with("data/") || rest.starts_with("metadata/") {
        return path.to_string();
    }
    format!("{mount_dir}/data/{rest}")
}

#[cfg(test)]
mod tests {
    #[test]
    fn kv2_paths_as_consul_template() {
        assert_eq!(super::shim_kv2("secret/app", "secret/"), "secret/data/app");
        assert_eq!(
            super::shim_kv2("secret/data/app", "secret/"),
            "secret/data/app"
        );
        assert_eq!(super::shim_kv2("secret", "secret/"), "secret/data");
        assert_eq!(
            super::shim_kv2("kv/team/metadata/x", "kv/team/"),
            "kv/team/metadata/x"
        );
    }
}
