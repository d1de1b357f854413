//! `kiln publish`, `pull`, `login`, `logout` and `run REFERENCE` against a real registry
//! (Debian's docker-registry), with skopeo as the second client and a fault-injecting proxy
//! for the error paths.

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::registry::{FaultProxy, PASSWORD, Registry, USER};
use crate::support::{Env, Output, sha256_file};

/// `kiln new hello`, built in release: the component `kiln publish` pushes.
fn hello(env: &Env) -> (PathBuf, PathBuf) {
    let project = env.new_project("hello", &[]);
    env.kiln(&["build", "--release", "-q"])
        .cwd(&project)
        .run()
        .success();
    let wasm = project.join("target/kiln/release/hello.wasm");
    (project, wasm)
}

/// The tags of `repository` other than referrers tags (`sha256-<hex>`, where the SBOM a
/// release publish attaches is listed).
fn component_tags(registry: &Registry, repository: &str) -> Vec<String> {
    registry
        .tags(repository)
        .unwrap_or_default()
        .into_iter()
        .filter(|t| !t.starts_with("sha256-"))
        .collect()
}

fn stdout_line(out: &Output) -> &str {
    out.stdout.trim()
}

#[test]
fn publish_pull_run_round_trip_and_reproducible_digests() {
    let env = Env::new();
    let mut registry = Registry::open();
    let (project, wasm) = hello(&env);
    let reference = format!("{}/demo/hello:0.1.0", registry.addr);

    let first = env
        .kiln(&["publish", &reference])
        .cwd(&project)
        .run()
        .success();
    let pinned = stdout_line(&first).to_string();
    assert!(
        pinned.starts_with(&format!("{reference}@sha256:")),
        "{pinned}"
    );
    assert!(first.stderr.contains("Published"), "{}", first.stderr);
    assert_eq!(
        component_tags(&registry, "demo/hello"),
        vec!["0.1.0".to_string()]
    );

    // The same input gives the same digest; so does the default reference from the
    // package version.
    let again = env
        .kiln(&["publish", &reference])
        .cwd(&project)
        .run()
        .success();
    assert_eq!(stdout_line(&again), pinned);
    let by_version = env
        .kiln(&["publish", &format!("{}/demo/hello", registry.addr)])
        .cwd(&project)
        .run()
        .success();
    assert_eq!(stdout_line(&by_version), pinned);
    // A different SOURCE_DATE_EPOCH is a different `created`, so a different digest.
    let later = env
        .kiln(&["publish", &reference, "--dry-run"])
        .cwd(&project)
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .run()
        .success();
    assert_ne!(stdout_line(&later), pinned);

    // Pull: byte-identical.
    let pulled = env
        .kiln(&["pull", &reference, "-o", "pulled.wasm"])
        .run()
        .success();
    assert_eq!(stdout_line(&pulled), "pulled.wasm");
    assert_eq!(sha256_file(&env.path("pulled.wasm")), sha256_file(&wasm));

    // Run from the registry.
    let ran = env
        .kiln(&["run", &reference, "--", "registry"])
        .run()
        .success();
    assert_eq!(ran.stdout, "Hello, registry!\n");

    // Pinned to the digest and cached: no network needed at all.
    let digest = pinned.split('@').nth(1).unwrap().to_string();
    registry.stop();
    let offline = format!("{}/demo/hello@{digest}", registry.addr);
    let json = env
        .kiln(&[
            "pull",
            &offline,
            "-o",
            "offline.wasm",
            "--message-format",
            "json",
        ])
        .run()
        .success();
    let event = json.json_event("pull");
    assert_eq!(event["downloaded"], 0);
    assert_eq!(event["digest"], digest.as_str());
    assert_eq!(sha256_file(&env.path("offline.wasm")), sha256_file(&wasm));
    env.kiln(&["run", &offline, "--", "cache"]).run().success();
}

#[test]
fn skopeo_reads_what_kiln_pushed() {
    let env = Env::new();
    let registry = Registry::open();
    let (project, wasm) = hello(&env);
    let reference = format!("{}/demo/hello:0.1.0", registry.addr);
    env.kiln(&[
        "publish",
        &reference,
        "--annotation",
        "com.example.team=wasm",
    ])
    .cwd(&project)
    .run()
    .success();
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .expect("skopeo runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let manifest: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(
        manifest["mediaType"],
        "application/vnd.oci.image.manifest.v1+json"
    );
    assert_eq!(
        manifest["config"]["mediaType"],
        "application/vnd.wasm.config.v0+json"
    );
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(layers[0]["mediaType"], "application/wasm");
    assert_eq!(
        layers[0]["digest"],
        format!("sha256:{}", sha256_file(&wasm))
    );
    assert_eq!(layers[0]["size"], fs_err::metadata(&wasm).unwrap().len());
    let notes = &manifest["annotations"];
    assert_eq!(notes["org.opencontainers.image.title"], "hello");
    assert_eq!(notes["org.opencontainers.image.version"], "0.1.0");
    assert_eq!(
        notes["org.opencontainers.image.created"],
        "1970-01-01T00:00:00Z"
    );
    assert_eq!(notes["com.example.team"], "wasm");

    // The config blob, fetched by skopeo's own client, is the Wasm config.
    let out = Command::new("skopeo")
        .args(["inspect", "--raw", "--config", "--tls-verify=false"])
        .arg(format!("docker://{reference}"))
        .output()
        .unwrap();
    if out.status.success() {
        let config: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
        assert_eq!(config["architecture"], "wasm");
        assert_eq!(config["os"], "wasip2");
        assert_eq!(config["layerDigests"][0], layers[0]["digest"]);
        let exports = config["component"]["exports"].as_array().unwrap();
        assert!(
            exports
                .iter()
                .any(|e| e.as_str().unwrap().starts_with("wasi:cli/run")),
            "{config}"
        );
    }
}

/// Writes an OCI image layout holding `component` as a Wasm artifact, without kiln.
fn oci_layout(dir: &Path, component: &[u8], config_media_type: &str, tag: &str) {
    use sha2::Digest;
    let blob = |bytes: &[u8]| -> (String, usize) {
        let hex = hex::encode(sha2::Sha256::digest(bytes));
        let path = dir.join("blobs/sha256").join(&hex);
        fs_err::create_dir_all(path.parent().unwrap()).unwrap();
        fs_err::write(path, bytes).unwrap();
        (format!("sha256:{hex}"), bytes.len())
    };
    let (layer_digest, layer_size) = blob(component);
    let config = serde_json::json!({
        "created": "2024-01-01T00:00:00Z",
        "architecture": "wasm",
        "os": "wasip2",
        "layerDigests": [layer_digest],
        "component": {"exports": ["wasi:cli/run@0.2.0"], "imports": []},
    });
    let (config_digest, config_size) = blob(config.to_string().as_bytes());
    let layer_type = if config_media_type.contains("wasm") {
        "application/wasm"
    } else {
        "application/vnd.oci.image.layer.v1.tar"
    };
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": config_media_type, "digest": config_digest, "size": config_size},
        "layers": [{"mediaType": layer_type, "digest": layer_digest, "size": layer_size}],
    });
    let manifest = manifest.to_string();
    let (manifest_digest, manifest_size) = blob(manifest.as_bytes());
    fs_err::write(dir.join("oci-layout"), r#"{"imageLayoutVersion":"1.0.0"}"#).unwrap();
    let index = serde_json::json!({
        "schemaVersion": 2,
        "manifests": [{
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "digest": manifest_digest,
            "size": manifest_size,
            "annotations": {"org.opencontainers.image.ref.name": tag},
        }],
    });
    fs_err::write(dir.join("index.json"), index.to_string()).unwrap();
}

fn skopeo_copy_in(layout: &Path, tag: &str, to: &str) {
    let out = Command::new("skopeo")
        .args(["copy", "--dest-tls-verify=false"])
        .arg(format!("oci:{}:{tag}", layout.display()))
        .arg(format!("docker://{to}"))
        .output()
        .expect("skopeo runs");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn kiln_runs_what_skopeo_copied_in() {
    let env = Env::new();
    let registry = Registry::open();
    let probe = fs_err::read(env.probe()).unwrap();
    let layout = env.path("layout");
    oci_layout(&layout, &probe, "application/vnd.wasm.config.v0+json", "v1");
    let reference = format!("{}/third-party/probe:v1", registry.addr);
    skopeo_copy_in(&layout, "v1", &reference);

    let ran = env
        .kiln(&["run", &reference, "--", "echo", "from skopeo"])
        .run()
        .success();
    assert_eq!(ran.stdout, "from skopeo\n");
    env.kiln(&["pull", &reference]).run().success();
    assert_eq!(fs_err::read(env.path("probe.wasm")).unwrap(), probe);
}

#[test]
fn a_container_image_is_named_not_run() {
    let env = Env::new();
    let registry = Registry::open();
    let layout = env.path("layout");
    oci_layout(
        &layout,
        b"not a tarball",
        "application/vnd.oci.image.config.v1+json",
        "1",
    );
    let reference = format!("{}/library/app:1", registry.addr);
    skopeo_copy_in(&layout, "1", &reference);
    let out = env.kiln(&["pull", &reference]).run().code(1);
    assert!(
        out.stderr.contains("is not a Wasm component artifact: its config is `application/vnd.oci.image.config.v1+json` (a container image)"),
        "{}",
        out.stderr
    );
    assert!(!env.path("app.wasm").exists());
}

#[test]
fn bad_references_are_refused_before_any_network_or_file_access() {
    let env = Env::new();
    // Nothing listens on port 1; an attempt to connect would give a different error.
    let digest = format!("sha256:{}", "0".repeat(64));
    for (args, message) in [
        (
            vec!["pull", "127.0.0.1:1/demo/hello"],
            "has neither a tag nor a digest",
        ),
        (
            vec!["pull", "127.0.0.1:1/demo/hello@md5:abcd"],
            "`md5` is not supported",
        ),
        (
            vec!["pull", "127.0.0.1:1/demo/hello@sha256:xyz"],
            "64 lowercase hex digits",
        ),
        (
            vec!["pull", "127.0.0.1:1/demo/Hello:1"],
            "repository component `Hello`",
        ),
        (
            vec!["pull", "127.0.0.1:1/demo/../etc:1"],
            "repository component `..`",
        ),
        (
            vec!["publish", "127.0.0.1:1/demo/hello:../../x"],
            "repository component",
        ),
        (
            vec!["publish", "127.0.0.1:1/demo/hello", "--tag", "a/b"],
            "contains `/`",
        ),
        (
            vec![
                "run",
                &format!("127.0.0.1:1/demo/hello@sha512:{}", &digest[7..]),
            ],
            "`sha512` is not supported",
        ),
    ] {
        let out = env.kiln(&args).run().code(1);
        assert!(out.stderr.contains(message), "{args:?}: {}", out.stderr);
        assert!(
            out.stderr.starts_with("error: invalid reference"),
            "{args:?}: {}",
            out.stderr
        );
    }
    // Nothing was written: no output file, no cache, no project needed.
    assert!(
        crate::support::files_under(&env.root()).is_empty(),
        "{:?}",
        crate::support::files_under(&env.root())
    );
}

#[test]
fn basic_auth_credentials_chain_login_and_logout() {
    let env = Env::new();
    let registry = Registry::with_auth();
    let (project, wasm) = hello(&env);
    let reference = format!("{}/demo/hello:0.1.0", registry.addr);

    // Anonymous: refused, and the error says what was sent.
    let out = env
        .kiln(&["publish", &reference])
        .cwd(&project)
        .run()
        .code(1);
    assert!(
        out.stderr.contains("refused anonymous access"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("hint: log in with `kiln login"),
        "{}",
        out.stderr
    );

    // Wrong password from the environment: refused, and the secret is never shown, even with -v.
    let out = env
        .kiln(&["publish", &reference, "-v"])
        .cwd(&project)
        .env("KILN_REGISTRY_USERNAME", USER)
        .env("KILN_REGISTRY_PASSWORD", "wrong-Secret-123")
        .run()
        .code(1);
    assert!(
        out.stderr.contains(
            "refused the credentials from KILN_REGISTRY_USERNAME and KILN_REGISTRY_PASSWORD"
        ),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("wrong-Secret-123") && !out.stdout.contains("wrong-Secret-123"));

    // Right password from the environment.
    env.kiln(&["publish", &reference])
        .cwd(&project)
        .env("KILN_REGISTRY_USERNAME", USER)
        .env("KILN_REGISTRY_PASSWORD", PASSWORD)
        .run()
        .success();

    // Flags beat the environment.
    env.kiln(&[
        "pull",
        &reference,
        "-o",
        "flags.wasm",
        "-u",
        USER,
        "--password-stdin",
    ])
    .env("KILN_REGISTRY_USERNAME", USER)
    .env("KILN_REGISTRY_PASSWORD", "wrong-Secret-123")
    .stdin(format!("{PASSWORD}\n"))
    .run()
    .success();

    // A wrong login is refused and not saved.
    let out = env
        .kiln(&["login", &registry.addr, "-u", USER, "--password-stdin"])
        .stdin("nope-Secret-456\n")
        .run()
        .code(1);
    assert!(!out.stderr.contains("nope-Secret-456"), "{}", out.stderr);
    assert!(!env.path(".kiln-config/credentials.json").exists());

    // kiln login saves; then pull and run need nothing else.
    let out = env
        .kiln(&["login", &registry.addr, "-u", USER, "--password-stdin"])
        .stdin(format!("{PASSWORD}\n"))
        .run()
        .success();
    assert!(out.stderr.contains("Logged in"), "{}", out.stderr);
    assert!(!out.stderr.contains(PASSWORD));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs_err::metadata(env.path(".kiln-config/credentials.json"))
            .unwrap()
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    env.kiln(&["pull", &reference, "-o", "saved.wasm"])
        .run()
        .success();
    assert_eq!(sha256_file(&env.path("saved.wasm")), sha256_file(&wasm));
    env.kiln(&["logout", &registry.addr]).run().success();
    let out = env
        .kiln(&["pull", &reference, "-o", "after-logout.wasm"])
        .run()
        .code(1);
    assert!(
        out.stderr.contains("refused anonymous access"),
        "{}",
        out.stderr
    );
    let out = env.kiln(&["logout", &registry.addr]).run().success();
    assert!(out.stderr.contains("not logged in"), "{}", out.stderr);

    // The Docker configuration, last in the chain.
    use base64_auth::encode;
    env.write(
        ".docker/config.json",
        serde_json::json!({"auths": {registry.addr.clone(): {"auth": encode(&format!("{USER}:{PASSWORD}"))}}}).to_string(),
    );
    env.kiln(&["run", &reference, "--", "docker"])
        .run()
        .success();
}

/// Standard base64, enough for a Docker `auth` field.
mod base64_auth {
    pub fn encode(text: &str) -> String {
        const ALPHABET: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        let bytes = text.as_bytes();
        let mut out = String::new();
        for chunk in bytes.chunks(3) {
            let b = [
                chunk[0],
                *chunk.get(1).unwrap_or(&0),
                *chunk.get(2).unwrap_or(&0),
            ];
            let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
            for i in 0..4 {
                if i <= chunk.len() {
                    out.push(ALPHABET[((n >> (18 - 6 * i)) & 63) as usize] as char);
                } else {
                    out.push('=');
                }
            }
        }
        out
    }

    #[test]
    fn encodes() {
        assert_eq!(encode("user:pass"), "dXNlcjpwYXNz");
        assert_eq!(encode("ab"), "YWI=");
    }
}

#[test]
fn tls_registry_with_a_private_certificate() {
    let env = Env::new();
    let registry = Registry::with_tls();
    let (project, wasm) = hello(&env);
    let reference = format!("{}/demo/hello:0.1.0", registry.addr);
    let with_creds = |k: crate::support::Kiln| {
        k.env("KILN_REGISTRY_USERNAME", USER)
            .env("KILN_REGISTRY_PASSWORD", PASSWORD)
    };
    // The certificate is not trusted: kiln does not fall back to plain HTTP silently.
    let out = with_creds(env.kiln(&["publish", &reference]).cwd(&project))
        .run()
        .code(1);
    assert!(
        out.stderr.contains("the TLS certificate of 127.0.0.1:"),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr
            .contains("hint: trust the registry's CA with KILN_REGISTRY_CA_FILE")
    );
    assert!(
        !out.stderr.contains("attempt 2"),
        "not retried: {}",
        out.stderr
    );
    // Trusted through KILN_REGISTRY_CA_FILE: over TLS.
    let cert = registry.cert.clone().unwrap();
    let out = with_creds(env.kiln(&["publish", &reference, "-v"]).cwd(&project))
        .env("KILN_REGISTRY_CA_FILE", &cert)
        .run()
        .success();
    assert!(out.stderr.contains("over HTTPS"), "{}", out.stderr);
    with_creds(env.kiln(&["pull", &reference, "-o", "tls.wasm"]))
        .env("KILN_REGISTRY_CA_FILE", &cert)
        .run()
        .success();
    assert_eq!(sha256_file(&env.path("tls.wasm")), sha256_file(&wasm));
}

#[test]
fn a_server_error_is_retried_and_the_manifest_pushed_once() {
    let env = Env::new();
    let registry = Registry::open();
    let proxy = FaultProxy::start(&registry, &["PUT /manifests/ status:500 1"]);
    let (project, _) = hello(&env);
    let out = env
        .kiln(&["publish", &format!("{}/demo/hello:1", proxy.addr)])
        .cwd(&project)
        .run()
        .success();
    assert!(
        out.stderr
            .contains("HTTP 500: injected fault; attempt 2 in 250ms"),
        "{}",
        out.stderr
    );
    // The component's manifest, at its tag (the SBOM referrer follows it, by digest and at
    // the referrers tag).
    let puts = proxy.matching("PUT", "/manifests/1");
    let statuses: Vec<u16> = puts.iter().map(|s| s.status).collect();
    assert_eq!(statuses, [500, 201], "{puts:?}");
    assert_eq!(
        component_tags(&registry, "demo/hello"),
        vec!["1".to_string()]
    );
}

#[test]
fn a_persistent_server_error_fails_with_the_attempt_count_and_pushes_no_manifest() {
    let env = Env::new();
    let registry = Registry::open();
    let proxy = FaultProxy::start(&registry, &["POST /blobs/uploads/ status:500 always"]);
    let (project, _) = hello(&env);
    let out = env
        .kiln(&["publish", &format!("{}/demo/hello:1", proxy.addr)])
        .cwd(&project)
        .run()
        .code(1);
    assert!(
        out.stderr.contains("failed after 4 attempts: HTTP 500"),
        "{}",
        out.stderr
    );
    assert_eq!(proxy.matching("POST", "/blobs/uploads/").len(), 4);
    assert!(proxy.matching("PUT", "/manifests/").is_empty());
    assert_eq!(registry.tags("demo/hello"), None);
}

#[test]
fn too_many_requests_waits_before_retrying() {
    let env = Env::new();
    let registry = Registry::open();
    let proxy = FaultProxy::start(&registry, &["PUT /manifests/ status:429:1 1"]);
    let (project, _) = hello(&env);
    env.kiln(&["publish", &format!("{}/demo/hello:1", proxy.addr)])
        .cwd(&project)
        .run()
        .success();
    let puts = proxy.matching("PUT", "/manifests/1");
    assert_eq!(
        puts.iter().map(|s| s.status).collect::<Vec<_>>(),
        [429, 201]
    );
    let waited = puts[1].t - puts[0].t;
    assert!(
        waited >= 1.0,
        "retried after {waited:.3}s, before Retry-After: 1"
    );
}

/// Publishes hello directly, then pulls it through a proxy that damages the layer.
fn pull_through_fault(rule: &str) -> (Env, Output, FaultProxy, Registry) {
    let env = Env::new();
    let registry = Registry::open();
    let (project, _) = hello(&env);
    env.kiln(&["publish", &format!("{}/demo/hello:1", registry.addr)])
        .cwd(&project)
        .run()
        .success();
    let proxy = FaultProxy::start(&registry, &[rule]);
    let out = env
        .kiln(&[
            "pull",
            &format!("{}/demo/hello:1", proxy.addr),
            "-o",
            "out.wasm",
        ])
        .env("KILN_CACHE_DIR", env.path("fresh-cache"))
        .run()
        .code(1);
    assert!(!env.path("out.wasm").exists(), "nothing is written");
    let cached: Vec<String> = crate::support::files_under(&env.path("fresh-cache"))
        .into_iter()
        .filter(|f| f.contains("blobs"))
        .collect();
    // Only the (verified) config may be cached; never the layer.
    assert!(cached.len() <= 1, "{cached:?}");
    (env, out, proxy, registry)
}

#[test]
fn a_tampered_blob_is_rejected_and_nothing_cached() {
    let (_env, out, _proxy, _registry) = pull_through_fault("GET /blobs/sha256: tamper always");
    assert!(
        out.stderr.contains("does not match its digest"),
        "{}",
        out.stderr
    );
}

#[test]
fn a_truncated_blob_is_rejected_and_nothing_cached() {
    let (_env, out, proxy, _registry) = pull_through_fault("GET /blobs/sha256: truncate always");
    assert!(
        out.stderr.contains("failed after 4 attempts"),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("broke off"), "{}", out.stderr);
    assert_eq!(proxy.matching("GET", "/blobs/sha256:").len(), 4);
}

#[test]
fn publish_a_component_file_without_a_project() {
    let env = Env::new();
    let registry = Registry::open();
    let probe = env.probe();
    let reference = format!("{}/tools/probe:2", registry.addr);
    let out = env
        .kiln(&[
            "publish",
            &reference,
            "--wasm",
            "probe.wasm",
            "--message-format",
            "json",
        ])
        .run()
        .success();
    let event = out.json_event("publish");
    assert_eq!(
        event["layer_digest"],
        format!("sha256:{}", sha256_file(&probe))
    );
    assert_eq!(
        event["annotations"]["org.opencontainers.image.created"],
        "1970-01-01T00:00:00Z"
    );
    let ran = env
        .kiln(&["run", &reference, "--", "echo", "hi"])
        .run()
        .success();
    assert_eq!(ran.stdout, "hi\n");

    // A core module is not a component: refused before any network access.
    env.wat_fixture("core-module");
    let out = env
        .kiln(&[
            "publish",
            &format!("{}/tools/core:1", registry.addr),
            "--wasm",
            "core-module.wasm",
        ])
        .run()
        .code(1);
    assert!(
        out.stderr
            .contains("cannot package the component: it is a core module, not a component"),
        "{}",
        out.stderr
    );
    assert_eq!(registry.tags("tools/core"), None);
}

#[test]
fn serve_an_http_component_from_a_registry() {
    let env = Env::new();
    let registry = Registry::open();
    let project = env.new_project("api", &["--template", "rust-http"]);
    let reference = format!("{}/demo/api:1", registry.addr);
    env.kiln(&["publish", &reference])
        .cwd(&project)
        .run()
        .success();
    let server = env
        .kiln(&["serve", &reference, "--addr", "127.0.0.1:0"])
        .serve();
    let response = crate::support::http()
        .get(format!("{}/", server.url))
        .call()
        .unwrap();
    assert_eq!(response.status(), 200);
    assert_eq!(
        response.into_body().read_to_string().unwrap(),
        "Hello from api!\n"
    );
    let (code, stderr) = server.interrupt();
    assert_eq!(code, 0, "{stderr}");
}

#[test]
fn what_publish_and_a_refused_pull_print() {
    let env = Env::new();
    env.wat_fixture("exit-with-code");
    // A dry run packages (digests are stable for stable input) and touches no network.
    let out = env
        .kiln(&[
            "publish",
            "127.0.0.1:1/demo/exit:1",
            "--wasm",
            "exit-with-code.wasm",
            "--dry-run",
        ])
        .run()
        .success();
    crate::support::assert_output_snapshot("publish_dry_run", &env, &out);

    let registry = Registry::with_auth();
    let out = env
        .kiln(&["pull", &format!("{}/demo/exit:1", registry.addr)])
        .run()
        .code(1);
    let out = Output {
        stderr: out.stderr.replace(&registry.addr, "[REGISTRY]"),
        ..out
    };
    crate::support::assert_output_snapshot("pull_refused", &env, &out);
}

#[test]
fn bearer_token_challenges_static_tokens_and_docker_credential_helpers() {
    let env = Env::new();
    let registry = Registry::open();
    let token = "kiln-T0ken-xyz";
    let gate = FaultProxy::with_bearer(&registry, token);
    let (project, wasm) = hello(&env);
    let reference = format!("{}/demo/hello:1", gate.addr);

    // Anonymous: the token service refuses without credentials.
    let out = env
        .kiln(&["publish", &reference])
        .cwd(&project)
        .run()
        .code(1);
    assert!(
        out.stderr.contains("refused anonymous access"),
        "{}",
        out.stderr
    );

    // A user and password are exchanged for a token at the challenge's realm.
    env.kiln(&["publish", &reference])
        .cwd(&project)
        .env("KILN_REGISTRY_USERNAME", USER)
        .env("KILN_REGISTRY_PASSWORD", PASSWORD)
        .run()
        .success();
    assert!(
        gate.matching("GET", "/token")
            .iter()
            .any(|s| s.status == 200),
        "{:?}",
        gate.seen()
    );
    assert_eq!(
        component_tags(&registry, "demo/hello"),
        vec!["1".to_string()]
    );

    // A static token is sent as is.
    let out = env
        .kiln(&["pull", &reference, "-o", "token.wasm", "-v"])
        .env("KILN_REGISTRY_TOKEN", token)
        .run()
        .success();
    assert!(!out.stderr.contains(token), "{}", out.stderr);
    assert_eq!(sha256_file(&env.path("token.wasm")), sha256_file(&wasm));
    let out = env
        .kiln(&["pull", &reference, "-o", "bad.wasm"])
        .env("KILN_REGISTRY_TOKEN", "wrong-T0ken")
        .run()
        .code(1);
    assert!(
        out.stderr
            .contains("refused the token from KILN_REGISTRY_TOKEN"),
        "{}",
        out.stderr
    );
    assert!(!out.stderr.contains("wrong-T0ken"));

    // A Docker credential helper (`credHelpers`), run the way Docker runs it.
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let helper = env.write(
            "bin/docker-credential-kilntest",
            format!(
                "#!/bin/sh\nread server\nprintf '{{\"ServerURL\":\"%s\",\"Username\":\"{USER}\",\"Secret\":\"{PASSWORD}\"}}' \"$server\"\n"
            ),
        );
        fs_err::set_permissions(&helper, std::fs::Permissions::from_mode(0o755)).unwrap();
        env.write(
            ".docker/config.json",
            serde_json::json!({"credHelpers": {gate.addr.clone(): "kilntest"}}).to_string(),
        );
        let path = format!(
            "{}:{}",
            env.path("bin").display(),
            std::env::var("PATH").unwrap_or_default()
        );
        let ran = env
            .kiln(&["run", &reference, "--", "helper"])
            .env("PATH", path)
            .run()
            .success();
        assert_eq!(ran.stdout, "Hello, helper!\n");
    }
}

/// Publishes `exit-with-code.wasm` (no build needed) to `registry` as `demo/exit:1`; returns
/// the component's path and the manifest as the registry serves it.
fn published_exit(env: &Env, registry: &Registry) -> (PathBuf, serde_json::Value) {
    let wasm = env.wat_fixture("exit-with-code");
    env.kiln(&[
        "publish",
        &format!("{}/demo/exit:1", registry.addr),
        "--wasm",
        "exit-with-code.wasm",
    ])
    .run()
    .success();
    let mut response = crate::support::http()
        .get(&format!(
            "http://{}/v2/demo/exit/manifests/1",
            registry.addr
        ))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .call()
        .unwrap();
    assert_eq!(response.status(), 200);
    let manifest = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
    (wasm, manifest)
}

/// `kiln pull PROXY/demo/exit:1 -o out.wasm` with an empty cache of its own.
fn pull_exit(env: &Env, proxy: &FaultProxy) -> crate::support::Kiln {
    env.kiln(&[
        "pull",
        &format!("{}/demo/exit:1", proxy.addr),
        "-o",
        "out.wasm",
    ])
    .env("KILN_CACHE_DIR", env.path("fresh-cache"))
}

/// What the fresh cache of [`pull_exit`] holds.
fn cached_blobs(env: &Env) -> Vec<String> {
    crate::support::files_under(&env.path("fresh-cache"))
        .into_iter()
        .filter(|f| f.contains("blobs"))
        .collect()
}

#[test]
fn retry_after_in_seconds_and_as_a_date_is_waited_in_full() {
    let env = Env::new();
    let registry = Registry::open();
    let (wasm, _) = published_exit(&env, &registry);
    let proxy = FaultProxy::start(
        &registry,
        &[
            "GET /manifests/ status:503:3 1",
            "GET /blobs/sha256: status:429:date+3 1",
        ],
    );
    let out = pull_exit(&env, &proxy).run().success();
    assert!(
        out.stderr
            .contains("HTTP 503: injected fault; attempt 2 in 3s"),
        "{}",
        out.stderr
    );
    assert_eq!(sha256_file(&env.path("out.wasm")), sha256_file(&wasm));
    let gets = proxy.matching("GET", "/manifests/");
    assert_eq!(
        gets.iter().map(|s| s.status).collect::<Vec<_>>(),
        [503, 200]
    );
    let waited = gets[1].t - gets[0].t;
    assert!(
        waited >= 3.0,
        "retried after {waited:.3}s, before Retry-After: 3"
    );
    // The date has a resolution of one second: it is at least 2 s after the 429 was sent.
    let gets = proxy.matching("GET", "/blobs/sha256:");
    assert_eq!(gets[0].status, 429, "{gets:?}");
    let waited = gets[1].t - gets[0].t;
    assert!(
        waited >= 2.0,
        "retried after {waited:.3}s, before the Retry-After date"
    );
}

#[test]
fn a_retry_after_over_the_cap_waits_the_cap_and_says_so() {
    let env = Env::new();
    let registry = Registry::open();
    published_exit(&env, &registry);
    let proxy = FaultProxy::start(&registry, &["GET /manifests/ status:429:120 1"]);
    let out = pull_exit(&env, &proxy).run().success();
    assert!(
        out.stderr.contains(
            "HTTP 429: injected fault (the registry asked to wait 120 s (Retry-After), more \
             than kiln's cap of 60 s); attempt 2 in 1m"
        ),
        "{}",
        out.stderr
    );
    let gets = proxy.matching("GET", "/manifests/");
    assert_eq!(
        gets.iter().map(|s| s.status).collect::<Vec<_>>(),
        [429, 200]
    );
    let waited = gets[1].t - gets[0].t;
    assert!(
        waited >= 60.0,
        "retried after {waited:.3}s, before the 60 s cap"
    );
}

#[test]
fn an_endless_manifest_is_cut_off_at_the_limit_and_nothing_cached() {
    let env = Env::new();
    let registry = Registry::open();
    published_exit(&env, &registry);
    let proxy = FaultProxy::start(&registry, &["GET /manifests/ endless:200 1"]);
    let out = pull_exit(&env, &proxy).run().code(1);
    assert!(
        out.stderr.contains(&format!(
            "the manifest of {}/demo/exit:1 is larger than kiln's limit of 4194304 bytes (the \
             download was cut off there)",
            proxy.addr
        )),
        "{}",
        out.stderr
    );
    assert!(!env.path("out.wasm").exists());
    assert_eq!(cached_blobs(&env), Vec::<String>::new());
    // Not retried, and read no further than the limit (plus what sockets buffer).
    assert_eq!(proxy.matching("GET", "/manifests/").len(), 1);
    let sent = proxy.endless_sent("/manifests/");
    assert!(sent.len() == 1 && sent[0] < 64 << 20, "{sent:?}");
}

#[test]
fn an_endless_error_body_is_read_only_in_part() {
    let env = Env::new();
    let registry = Registry::open();
    published_exit(&env, &registry);
    let proxy = FaultProxy::start(&registry, &["GET /manifests/ endless:400 1"]);
    let out = pull_exit(&env, &proxy).run().code(1);
    assert!(
        out.stderr.contains("pulling the manifest of")
            && out.stderr.contains("failed: HTTP 400: xxxx"),
        "{}",
        out.stderr
    );
    // One line of the body, not the body.
    assert!(out.stderr.len() < 1000, "{}", out.stderr);
    assert_eq!(cached_blobs(&env), Vec::<String>::new());
    let sent = proxy.endless_sent("/manifests/");
    assert!(sent.len() == 1 && sent[0] < 64 << 20, "{sent:?}");
}

#[test]
fn a_config_over_the_limit_is_refused_before_it_is_fetched() {
    let env = Env::new();
    let registry = Registry::open();
    let (_, original) = published_exit(&env, &registry);
    let mut manifest = original.clone();
    let config = manifest["config"]["digest"].as_str().unwrap().to_string();
    // A config declared at 64 MiB, which the registry would send without end.
    manifest["config"]["size"] = serde_json::json!(64 << 20);
    let file = env.write("big-config.json", manifest.to_string());
    let serve = format!("GET /manifests/ body:{} always", file.display());
    let endless = format!("GET /blobs/{config} endless:200 always");
    let proxy = FaultProxy::start(&registry, &[&serve, &endless]);
    let out = pull_exit(&env, &proxy).run().code(1);
    assert!(
        out.stderr.contains(&format!(
            "the config blob {} of {}/demo/exit@sha256:",
            &config[..19],
            proxy.addr
        )) && out.stderr.contains(
            "is larger than kiln's limit of 4194304 bytes (its descriptor declares 67108864 bytes)"
        ),
        "{}",
        out.stderr
    );
    assert!(proxy.matching("GET", &config).is_empty(), "never requested");
    assert_eq!(cached_blobs(&env), Vec::<String>::new());
    assert!(!env.path("out.wasm").exists());

    // Declared at its true size but sent without end: cut off at the declared size.
    let file = env.write("true-config.json", original.to_string());
    let serve = format!("GET /manifests/ body:{} always", file.display());
    let proxy = FaultProxy::start(&registry, &[&serve, &endless]);
    let out = pull_exit(&env, &proxy).run().code(1);
    assert!(
        out.stderr.contains("is not the declared size"),
        "{}",
        out.stderr
    );
    assert_eq!(cached_blobs(&env), Vec::<String>::new());
    let sent = proxy.endless_sent(&config);
    assert!(
        !sent.is_empty() && sent.iter().all(|&n| n < 64 << 20),
        "{sent:?}"
    );
}

#[test]
fn foreign_layer_urls_are_fetched_only_when_allowed() {
    let env = Env::new();
    let registry = Registry::open();
    let (wasm, mut manifest) = published_exit(&env, &registry);
    let layer = manifest["layers"][0]["digest"]
        .as_str()
        .unwrap()
        .to_string();
    // The proxy's port is needed in the manifest, so it starts first with a rule file of
    // manifest bytes written just after.
    let file = env.path("foreign.json");
    let serve = format!("GET /manifests/ body:{} always", file.display());
    let missing = format!("GET /blobs/{layer} status:404 always");
    let foreign = format!("GET /foreign/ body:{} always", wasm.display());
    let proxy = FaultProxy::start(&registry, &[&serve, &missing, &foreign]);
    manifest["layers"][0]["urls"] =
        serde_json::json!([format!("http://{}/foreign/exit.wasm", proxy.addr)]);
    env.write("foreign.json", manifest.to_string());

    let out = pull_exit(&env, &proxy).run().code(1);
    assert!(
        out.stderr.contains(&format!(
            "layer {layer} is not in the registry, and kiln does not fetch it from the foreign \
             URL its manifest names (http://{}/foreign/exit.wasm)",
            proxy.addr
        )),
        "{}",
        out.stderr
    );
    assert!(
        out.stderr.contains("KILN_ALLOW_FOREIGN_URLS=1"),
        "{}",
        out.stderr
    );
    assert!(
        proxy.matching("GET", "/foreign/").is_empty(),
        "never contacted"
    );
    assert!(!env.path("out.wasm").exists());
    assert!(!cached_blobs(&env).iter().any(|f| f.contains(&layer[7..])));

    pull_exit(&env, &proxy)
        .env("KILN_ALLOW_FOREIGN_URLS", "1")
        .run()
        .success();
    assert_eq!(proxy.matching("GET", "/foreign/").len(), 1);
    assert_eq!(sha256_file(&env.path("out.wasm")), sha256_file(&wasm));
}

#[test]
fn an_endless_token_service_answer_is_cut_off() {
    let env = Env::new();
    let registry = Registry::open();
    let gate = FaultProxy::with_bearer_and_rules(
        &registry,
        "kiln-T0ken",
        &["GET ^/token endless:200 always"],
    );
    let (project, _) = hello(&env);
    let reference = format!("{}/demo/hello:1", gate.addr);
    let out = env
        .kiln(&["publish", &reference])
        .cwd(&project)
        .env("KILN_REGISTRY_USERNAME", USER)
        .env("KILN_REGISTRY_PASSWORD", PASSWORD)
        .run()
        .code(1);
    assert!(
        out.stderr.contains("the token service's answer for")
            && out
                .stderr
                .contains("is larger than kiln's limit of 65536 bytes"),
        "{}",
        out.stderr
    );
    let sent = gate.endless_sent("/token");
    assert!(
        !sent.is_empty() && sent.iter().all(|&n| n < 64 << 20),
        "{sent:?}"
    );
    assert_eq!(registry.tags("demo/hello"), None);
}
