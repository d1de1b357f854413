//! A real OCI registry for the tests: Debian's `docker-registry` (CNCF distribution),
//! started on 127.0.0.1 with a free port and its own config, optionally with htpasswd
//! (bcrypt) basic auth and TLS from a self-signed certificate; and a fault-injecting proxy
//! (`fault_proxy.py`) in front of it.

use std::io::BufRead;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub const USER: &str = "kiln-user";
pub const PASSWORD: &str = "s3cret-Pa55word";

/// A running registry; stopped when dropped.
pub struct Registry {
    child: Child,
    dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub addr: String,
    /// The self-signed CA certificate (PEM) that signed a TLS registry's certificate.
    pub cert: Option<PathBuf>,
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn tool(name: &str) -> Command {
    let cmd = Command::new(name);
    if which(name).is_none() {
        panic!(
            "`{name}` is not installed; .ci/run installs it (apt: docker-registry skopeo apache2-utils openssl)"
        );
    }
    cmd
}

fn which(name: &str) -> Option<PathBuf> {
    std::env::split_paths(&std::env::var_os("PATH")?)
        .map(|d| d.join(name))
        .find(|p| p.is_file())
}

fn wait_for_port(addr: &str, child: &mut Child, log: &Path) {
    let start = Instant::now();
    while TcpStream::connect(addr).is_err() {
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "the registry exited ({status}):\n{}",
                fs_err::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "the registry did not start"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

impl Registry {
    /// An open registry over plain HTTP.
    pub fn open() -> Registry {
        Registry::start(false, false)
    }

    /// A registry that asks for [`USER`]/[`PASSWORD`] (htpasswd, bcrypt).
    pub fn with_auth() -> Registry {
        Registry::start(true, false)
    }

    /// A TLS registry with a self-signed certificate for 127.0.0.1, and basic auth.
    pub fn with_tls() -> Registry {
        Registry::start(true, true)
    }

    fn start(auth: bool, tls: bool) -> Registry {
        let dir = tempfile::Builder::new()
            .prefix("kiln-registry")
            .tempdir()
            .unwrap();
        let root = dir.path();
        let port = free_port();
        let addr = format!("127.0.0.1:{port}");
        let mut config = format!(
            "version: 0.1\nlog: {{level: warn}}\nstorage:\n  filesystem: {{rootdirectory: {}}}\n  delete: {{enabled: true}}\nhttp:\n  addr: {addr}\n",
            root.join("data").display()
        );
        let mut cert = None;
        if tls {
            // A self-signed CA and the server certificate it signs for 127.0.0.1 (rustls
            // refuses a CA certificate used as the server's own).
            let openssl = |args: &[&str]| {
                let out = tool("openssl")
                    .args(args)
                    .current_dir(root)
                    .output()
                    .unwrap();
                assert!(
                    out.status.success(),
                    "{}",
                    String::from_utf8_lossy(&out.stderr)
                );
            };
            openssl(&[
                "req",
                "-x509",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-days",
                "2",
                "-subj",
                "/CN=kiln test CA",
                "-keyout",
                "ca.key",
                "-out",
                "ca.crt",
            ]);
            openssl(&[
                "req",
                "-newkey",
                "rsa:2048",
                "-nodes",
                "-subj",
                "/CN=127.0.0.1",
                "-keyout",
                "tls.key",
                "-out",
                "tls.csr",
            ]);
            fs_err::write(
                root.join("san.ext"),
                "subjectAltName=IP:127.0.0.1,DNS:localhost\nbasicConstraints=CA:FALSE\n",
            )
            .unwrap();
            openssl(&[
                "x509",
                "-req",
                "-in",
                "tls.csr",
                "-CA",
                "ca.crt",
                "-CAkey",
                "ca.key",
                "-CAcreateserial",
                "-days",
                "2",
                "-extfile",
                "san.ext",
                "-out",
                "tls.crt",
            ]);
            config.push_str(&format!(
                "  tls: {{certificate: {}, key: {}}}\n",
                root.join("tls.crt").display(),
                root.join("tls.key").display()
            ));
            cert = Some(root.join("ca.crt"));
        }
        if auth {
            let out = tool("htpasswd")
                .args(["-Bbn", USER, PASSWORD])
                .output()
                .unwrap();
            assert!(out.status.success());
            fs_err::write(root.join("htpasswd"), out.stdout).unwrap();
            config.push_str(&format!(
                "auth:\n  htpasswd: {{realm: kiln-test, path: {}}}\n",
                root.join("htpasswd").display()
            ));
        }
        fs_err::write(root.join("config.yml"), config).unwrap();
        let log = root.join("registry.log");
        let mut child = tool("docker-registry")
            .arg("serve")
            .arg(root.join("config.yml"))
            .stdout(fs_err::File::create(&log).unwrap().into_parts().0)
            .stderr(
                fs_err::File::create(root.join("registry.err"))
                    .unwrap()
                    .into_parts()
                    .0,
            )
            .spawn()
            .unwrap();
        wait_for_port(&addr, &mut child, &log);
        Registry {
            child,
            dir,
            addr,
            cert,
        }
    }

    /// Stops it now (to prove a later step needs no network).
    pub fn stop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    /// The tags of `repository`, read over the registry API (plain HTTP, no auth), or
    /// `None` when the repository does not exist.
    pub fn tags(&self, repository: &str) -> Option<Vec<String>> {
        let url = format!("http://{}/v2/{repository}/tags/list", self.addr);
        let mut response = super::http().get(&url).call().ok()?;
        if response.status() != 200 {
            return None;
        }
        let body: serde_json::Value =
            serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        Some(
            body["tags"]
                .as_array()
                .map(|t| t.iter().map(|v| v.as_str().unwrap().to_string()).collect())
                .unwrap_or_default(),
        )
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The fault-injecting proxy, in front of `upstream`.
pub struct FaultProxy {
    child: Child,
    log: PathBuf,
    _dir: tempfile::TempDir,
    /// `127.0.0.1:PORT`.
    pub addr: String,
}

/// One request the proxy saw.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub status: u16,
    pub action: String,
    pub t: f64,
    /// Whether the request carried an `Authorization` header.
    pub authorization: bool,
}

impl FaultProxy {
    /// `rules` are "METHOD PATH-REGEX ACTION TIMES" (see fault_proxy.py).
    pub fn start(upstream: &Registry, rules: &[&str]) -> FaultProxy {
        FaultProxy::spawn(upstream, rules, &[])
    }

    /// A token-auth front for `upstream`: a bearer challenge whose token service accepts
    /// [`USER`]/[`PASSWORD`] and hands out `token`, which is also accepted as is.
    pub fn with_bearer(upstream: &Registry, token: &str) -> FaultProxy {
        Self::with_bearer_and_rules(upstream, token, &[])
    }

    /// [`FaultProxy::with_bearer`] with fault `rules`, which apply to the token service's
    /// `/token` too.
    pub fn with_bearer_and_rules(upstream: &Registry, token: &str, rules: &[&str]) -> FaultProxy {
        let user = format!("{USER}:{PASSWORD}");
        FaultProxy::spawn(
            upstream,
            rules,
            &["--bearer", &user, "--static-token", token],
        )
    }

    fn spawn(upstream: &Registry, rules: &[&str], extra: &[&str]) -> FaultProxy {
        let dir = tempfile::tempdir().unwrap();
        let log = dir.path().join("requests.jsonl");
        let script = super::repo().join("tests/testsuite/support/fault_proxy.py");
        let mut cmd = tool("python3");
        cmd.arg(script)
            .args(["--upstream", &upstream.addr])
            .arg("--log")
            .arg(&log);
        for rule in rules {
            cmd.args(["--rule", rule]);
        }
        cmd.args(extra);
        let mut child = cmd.stdout(Stdio::piped()).spawn().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port: u16 = line.trim().parse().expect("the proxy prints its port");
        FaultProxy {
            child,
            log,
            _dir: dir,
            addr: format!("127.0.0.1:{port}"),
        }
    }

    /// Every request so far, in order.
    pub fn seen(&self) -> Vec<Seen> {
        fs_err::read_to_string(&self.log)
            .unwrap_or_default()
            .lines()
            .map(|line| {
                let v: serde_json::Value = serde_json::from_str(line).unwrap();
                Seen {
                    method: v["method"].as_str().unwrap().to_string(),
                    path: v["path"].as_str().unwrap().to_string(),
                    status: v["status"].as_u64().unwrap() as u16,
                    action: v["action"].as_str().unwrap().to_string(),
                    t: v["t"].as_f64().unwrap(),
                    authorization: v["authorization"].as_bool().unwrap_or(false),
                }
            })
            .collect()
    }

    /// How many bytes the `endless` answers to requests whose path contains `fragment` sent
    /// before the client hung up, waiting (up to 60 s) for each to end.
    pub fn endless_sent(&self, fragment: &str) -> Vec<u64> {
        let started = self
            .seen()
            .iter()
            .filter(|s| s.action.starts_with("endless:") && s.path.contains(fragment))
            .count();
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let sent: Vec<u64> = self
                .matching("SENT", fragment)
                .iter()
                .filter_map(|s| s.action.strip_prefix("sent:")?.parse().ok())
                .collect();
            if sent.len() >= started || Instant::now() > deadline {
                return sent;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The requests with `method` whose path contains `fragment`.
    pub fn matching(&self, method: &str, fragment: &str) -> Vec<Seen> {
        self.seen()
            .into_iter()
            .filter(|s| s.method == method && s.path.contains(fragment))
            .collect()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
