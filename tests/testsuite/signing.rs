//! Signatures (issue 19): `kiln generate-key-pair`, `kiln publish --sign`, `kiln
//! pull|run --verify`, against the real registry, with Debian's skopeo 1.9 as the third-party
//! signer and verifier (its `sigstoreSigned` policy and `--sign-by-sigstore-private-key`).

use std::path::{Path, PathBuf};
use std::process::Command;

use crate::support::registry::Registry;
use crate::support::{Env, Output, sha256_file};

const PASSPHRASE: &str = "kiln test passphrase 7";

/// `kiln generate-key-pair --output-key-prefix <prefix>`; returns (private, public).
fn generate(env: &Env, prefix: &str) -> (PathBuf, PathBuf) {
    let out = env
        .kiln(&["generate-key-pair", "--output-key-prefix", prefix])
        .env("KILN_KEY_PASSWORD", PASSPHRASE)
        .run()
        .success();
    assert!(out.stderr.contains("Generated"), "{}", out.stderr);
    assert!(!out.stderr.contains(PASSPHRASE) && !out.stdout.contains(PASSPHRASE));
    (
        env.path(&format!("{prefix}.key")),
        env.path(&format!("{prefix}.pub")),
    )
}

/// The exit-with-code fixture (a command component exiting with 3), published to
/// `reference` with extra arguments.
fn publish(env: &Env, reference: &str, extra: &[&str]) -> Output {
    let wasm = env.wat_fixture("exit-with-code");
    let wasm = wasm.to_str().unwrap().to_string();
    let mut args = vec!["publish", reference, "--wasm", &wasm];
    args.extend_from_slice(extra);
    env.kiln(&args).env("KILN_KEY_PASSWORD", PASSPHRASE).run()
}

fn digest_of(published: &Output) -> String {
    published
        .stdout
        .trim()
        .rsplit_once('@')
        .expect("REFERENCE@DIGEST on stdout")
        .1
        .to_string()
}

/// A `registries.d` that turns on sigstore attachments for every registry (skopeo reads and
/// writes signatures only with it).
fn registries_d(env: &Env) -> PathBuf {
    env.write(
        "registries.d/default.yaml",
        "default-docker:\n  use-sigstore-attachments: true\n",
    );
    env.path("registries.d")
}

/// A skopeo policy requiring a sigstore signature by `key` for `scope`, accepting anything
/// elsewhere only when `scope` is not matched (the default rejects).
fn policy(env: &Env, name: &str, scope: &str, key: &Path) -> PathBuf {
    let policy = serde_json::json!({
        "default": [{"type": "reject"}],
        "transports": {
            "docker": {
                scope: [{
                    "type": "sigstoreSigned",
                    "keyPath": key,
                    "signedIdentity": {"type": "matchRepoDigestOrExact"},
                }]
            }
        }
    });
    env.write(name, serde_json::to_vec_pretty(&policy).unwrap())
}

fn accept_anything(env: &Env) -> PathBuf {
    env.write(
        "accept.json",
        r#"{"default": [{"type": "insecureAcceptAnything"}]}"#,
    )
}

fn skopeo(args: &[&str]) -> std::process::Output {
    Command::new("skopeo")
        .args(args)
        .output()
        .expect("skopeo runs (.ci/run installs it)")
}

fn openssl_key_pair(env: &Env, name: &str) -> (PathBuf, PathBuf) {
    let key = env.path(&format!("{name}.key"));
    let public = env.path(&format!("{name}.pub"));
    for args in [
        vec![
            "genpkey",
            "-algorithm",
            "EC",
            "-pkeyopt",
            "ec_paramgen_curve:P-256",
            "-out",
            key.to_str().unwrap(),
        ],
        vec![
            "pkey",
            "-in",
            key.to_str().unwrap(),
            "-pubout",
            "-out",
            public.to_str().unwrap(),
        ],
    ] {
        let out = Command::new("openssl").args(&args).output().unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    (key, public)
}

#[test]
fn generate_key_pair_writes_cosign_format() {
    let env = Env::new();
    let (private, public) = generate(&env, "keys/release");
    let text = fs_err::read_to_string(&private).unwrap();
    assert!(
        text.starts_with("-----BEGIN ENCRYPTED COSIGN PRIVATE KEY-----\n"),
        "{text}"
    );
    assert!(!text.contains(PASSPHRASE));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = fs_err::metadata(&private).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600, "the private key is the owner's alone");
    }
    let public_text = fs_err::read_to_string(&public).unwrap();
    assert!(public_text.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    // openssl reads the public key as P-256.
    let out = Command::new("openssl")
        .args(["pkey", "-pubin", "-noout", "-text", "-in"])
        .arg(&public)
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        text.contains("P-256") || text.contains("prime256v1"),
        "{text}"
    );

    // Existing files are kept without --force.
    let again = env
        .kiln(&["generate-key-pair", "--output-key-prefix", "keys/release"])
        .env("KILN_KEY_PASSWORD", PASSPHRASE)
        .run()
        .code(1);
    assert!(again.stderr.contains("already exists"), "{}", again.stderr);
    // No passphrase and no terminal: refused, saying how to give one.
    let none = env
        .kiln(&["generate-key-pair", "--output-key-prefix", "other"])
        .env_remove("KILN_KEY_PASSWORD")
        .run()
        .code(1);
    assert!(none.stderr.contains("KILN_KEY_PASSWORD"), "{}", none.stderr);
    assert!(!env.path("other.key").exists());
}

#[test]
fn kiln_signs_and_third_parties_verify() {
    let env = Env::new();
    let registry = Registry::open();
    let (private, public) = generate(&env, "kiln");
    let reference = format!("{}/demo/signed:1.0.0", registry.addr);
    let published = publish(&env, &reference, &["--sign", private.to_str().unwrap()]).success();
    assert!(published.stderr.contains("Signed"), "{}", published.stderr);
    assert!(!published.stderr.contains(PASSPHRASE));
    let digest = digest_of(&published);
    let sig_tag = format!("{}.sig", digest.replace(':', "-"));
    let mut tags = registry.tags("demo/signed").unwrap();
    tags.sort();
    assert_eq!(tags, vec!["1.0.0".to_string(), sig_tag.clone()]);

    // skopeo reads the signature manifest as cosign writes it: one simple signing layer with
    // the signature in its annotation.
    let out = skopeo(&[
        "inspect",
        "--raw",
        "--tls-verify=false",
        &format!("docker://{}/demo/signed:{sig_tag}", registry.addr),
    ]);
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
    let layers = manifest["layers"].as_array().unwrap();
    assert_eq!(layers.len(), 1);
    assert_eq!(
        layers[0]["mediaType"],
        "application/vnd.dev.cosign.simplesigning.v1+json"
    );

    // The payload is containers/image's simple signing payload for this digest and reference,
    // and OpenSSL verifies the signature over it with kiln's public key (and not with another).
    let signatures = signatures_of(&registry.addr, "demo/signed", &digest);
    assert_eq!(signatures.len(), 1);
    let (payload, signature) = &signatures[0];
    let parsed: serde_json::Value = serde_json::from_slice(payload).unwrap();
    assert_eq!(
        parsed["critical"]["type"],
        "cosign container image signature"
    );
    assert_eq!(
        parsed["critical"]["image"]["docker-manifest-digest"],
        digest.as_str()
    );
    assert_eq!(
        parsed["critical"]["identity"]["docker-reference"],
        reference.as_str()
    );
    assert!(openssl_verifies(&env, &public, payload, signature));
    let (_, stranger) = openssl_key_pair(&env, "stranger");
    assert!(!openssl_verifies(&env, &stranger, payload, signature));

    // Publishing again with the same key adds no second signature.
    let again = publish(&env, &reference, &["--sign", private.to_str().unwrap()]).success();
    assert!(again.stderr.contains("already there"), "{}", again.stderr);
    assert_eq!(
        signatures_of(&registry.addr, "demo/signed", &digest).len(),
        1
    );

    // skopeo's own policy check (`sigstoreSigned`), where its build has sigstore.
    let registries = registries_d(&env);
    let scope = format!("{}/demo", registry.addr);
    let good = policy(&env, "good.json", &scope, &public);
    let bad = policy(&env, "bad.json", &scope, &stranger);
    let copy = |policy: &Path, to: &str| {
        skopeo_sigstore(&[
            "copy",
            "--policy",
            policy.to_str().unwrap(),
            "--registries.d",
            registries.to_str().unwrap(),
            "--src-tls-verify=false",
            &format!("docker://{reference}"),
            &format!("oci:{}:x", env.path(to).display()),
        ])
    };
    if let Some(out) = copy(&good, "layout") {
        assert!(
            out.status.success(),
            "skopeo refused kiln's signature: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        let out = copy(&bad, "layout2").unwrap();
        assert!(
            !out.status.success(),
            "skopeo accepted a signature by another key"
        );
    }

    // kiln verifies its own signature, and runs the verified component.
    let pulled = env
        .kiln(&[
            "pull",
            &reference,
            "--verify",
            public.to_str().unwrap(),
            "-o",
            "p.wasm",
        ])
        .run()
        .success();
    assert!(pulled.stderr.contains("Verified"), "{}", pulled.stderr);
    assert_eq!(
        sha256_file(&env.path("p.wasm")),
        sha256_file(&env.path("exit-with-code.wasm"))
    );
    env.kiln(&["run", &reference, "--verify", public.to_str().unwrap()])
        .run()
        .code(3);

    // cosign, where it is installed.
    if which("cosign") {
        let out = Command::new("cosign")
            .args([
                "verify",
                "--insecure-ignore-tlog",
                "--allow-insecure-registry",
                "--key",
            ])
            .arg(&public)
            .arg(&reference)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    } else {
        skipped("cosign is not installed; `cosign verify --key` was not run");
    }
}

#[test]
fn third_party_signatures_verify_in_kiln() {
    let env = Env::new();
    let registry = Registry::open();
    let source = format!("{}/demo/plain:1", registry.addr);
    let published = publish(&env, &source, &[]).success();
    let digest = digest_of(&published);
    let (ossl_key, ossl_pub) = openssl_key_pair(&env, "openssl");

    // Unsigned: refused, saying so, and nothing written.
    let refused = env
        .kiln(&["pull", &source, "--verify", ossl_pub.to_str().unwrap()])
        .run()
        .code(1);
    assert!(
        refused.stderr.contains("is not signed"),
        "{}",
        refused.stderr
    );
    assert!(
        !env.path("plain.wasm").exists(),
        "nothing is written when refused"
    );

    // Signatures made with OpenSSL over the payloads skopeo and cosign write (skopeo's names
    // the tag and adds its creator and a timestamp; cosign's names the repository and has
    // `"optional": null`), stored as they store them: kiln accepts either, whichever layer.
    let skopeo_style = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{source}"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":{{"creator":"containers/image 5.23.1","timestamp":1700000000}}}}"#
    );
    let (other_key, other_pub) = openssl_key_pair(&env, "other");
    let cosign_style = format!(
        r#"{{"critical":{{"identity":{{"docker-reference":"{}/demo/plain"}},"image":{{"docker-manifest-digest":"{digest}"}},"type":"cosign container image signature"}},"optional":null}}"#,
        registry.addr
    );
    let first = openssl_sign(&env, &other_key, skopeo_style.as_bytes());
    let second = openssl_sign(&env, &ossl_key, cosign_style.as_bytes());
    push_signatures(
        &registry.addr,
        "demo/plain",
        &digest,
        &[
            (skopeo_style.as_bytes(), &first),
            (cosign_style.as_bytes(), &second),
        ],
    );
    for key in [&ossl_pub, &other_pub] {
        let pulled = env
            .kiln(&[
                "pull",
                &source,
                "--verify",
                key.to_str().unwrap(),
                "-v",
                "--force",
            ])
            .run()
            .success();
        assert!(pulled.stderr.contains("Verified"), "{}", pulled.stderr);
        assert!(pulled.stderr.contains(&digest), "{}", pulled.stderr);
    }
    assert_eq!(
        sha256_file(&env.path("plain.wasm")),
        sha256_file(&env.path("exit-with-code.wasm"))
    );

    // An OpenSSL key (PKCS#8, no passphrase) signs with kiln too.
    let third = format!("{}/demo/openssl:1", registry.addr);
    publish(&env, &third, &["--sign", ossl_key.to_str().unwrap()]).success();
    env.kiln(&["pull", &third, "--verify", ossl_pub.to_str().unwrap()])
        .run()
        .success();

    // skopeo signing with a key kiln generated (cosign's format and passphrase), where its
    // build has sigstore.
    let (private, public) = generate(&env, "kiln");
    let registries = registries_d(&env);
    let accept = accept_anything(&env);
    let passphrase = env.write("passphrase", PASSPHRASE);
    let target = format!("{}/demo/by-skopeo:1", registry.addr);
    let signed = skopeo_sigstore(&[
        "copy",
        "--policy",
        accept.to_str().unwrap(),
        "--registries.d",
        registries.to_str().unwrap(),
        "--src-tls-verify=false",
        "--dest-tls-verify=false",
        "--sign-by-sigstore-private-key",
        private.to_str().unwrap(),
        "--sign-passphrase-file",
        passphrase.to_str().unwrap(),
        &format!("docker://{source}"),
        &format!("docker://{target}"),
    ]);
    if let Some(out) = signed {
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let pulled = env
            .kiln(&[
                "pull",
                &target,
                "--verify",
                public.to_str().unwrap(),
                "-o",
                "s.wasm",
            ])
            .run()
            .success();
        assert!(pulled.stderr.contains("Verified"), "{}", pulled.stderr);
    }
}

#[test]
fn refusals_say_which() {
    let env = Env::new();
    let mut registry = Registry::open();
    let (private, public) = generate(&env, "kiln");
    let (_, other) = generate(&env, "other");
    let reference = format!("{}/demo/app:1", registry.addr);
    let published = publish(&env, &reference, &["--sign", private.to_str().unwrap()]).success();
    let signed = digest_of(&published);

    // A wrong passphrase: refused before anything is pushed, and not echoed.
    let before = registry.tags("demo/app").unwrap();
    let wrong = env
        .kiln(&[
            "publish",
            &format!("{}/demo/app:2", registry.addr),
            "--wasm",
            env.path("exit-with-code.wasm").to_str().unwrap(),
            "--sign",
            private.to_str().unwrap(),
        ])
        .env("KILN_KEY_PASSWORD", "not-the-passphrase")
        .run()
        .code(1);
    assert!(
        wrong.stderr.contains("passphrase is wrong"),
        "{}",
        wrong.stderr
    );
    assert!(!wrong.stderr.contains("not-the-passphrase"));
    assert_eq!(registry.tags("demo/app").unwrap(), before);

    // Another key.
    let out = env
        .kiln(&["pull", &reference, "--verify", other.to_str().unwrap()])
        .run()
        .code(1);
    assert!(
        out.stderr.contains("is not signed by the key given"),
        "{}",
        out.stderr
    );
    // `run` refuses before the guest runs (it would exit 3).
    let out = env
        .kiln(&["run", &reference, "--verify", other.to_str().unwrap()])
        .run()
        .code(1);
    assert!(
        out.stderr.contains("is not signed by the key given"),
        "{}",
        out.stderr
    );

    // A moved tag: another artifact at the same tag, with the old signature copied beside it
    // (what an attacker with push access could do). The signature is over another digest.
    let moved = env
        .kiln(&[
            "publish",
            &reference,
            "--wasm",
            env.path("exit-with-code.wasm").to_str().unwrap(),
        ])
        .env("SOURCE_DATE_EPOCH", "1700000000")
        .run()
        .success();
    let now = digest_of(&moved);
    assert_ne!(now, signed);
    copy_manifest(
        &registry.addr,
        "demo/app",
        &format!("{}.sig", signed.replace(':', "-")),
        &format!("{}.sig", now.replace(':', "-")),
    );
    let out = env
        .kiln(&["pull", &reference, "--verify", public.to_str().unwrap()])
        .run()
        .code(1);
    assert!(out.stderr.contains("over another digest"), "{}", out.stderr);
    assert!(
        out.stderr.contains(&signed) && out.stderr.contains(&now),
        "{}",
        out.stderr
    );
    assert!(out.stderr.contains("tag moved"), "{}", out.stderr);

    // The signed digest itself still verifies; then, cached with its signature, it verifies
    // again with the registry gone.
    let pinned = format!("{}/demo/app@{signed}", registry.addr);
    env.kiln(&[
        "pull",
        &pinned,
        "--verify",
        public.to_str().unwrap(),
        "-o",
        "a.wasm",
    ])
    .run()
    .success();
    registry.stop();
    let offline = env
        .kiln(&[
            "pull",
            &pinned,
            "--verify",
            public.to_str().unwrap(),
            "-o",
            "b.wasm",
        ])
        .run()
        .success();
    assert!(
        offline.stderr.contains("checked again from the cache"),
        "{}",
        offline.stderr
    );
    // The cached signature does not vouch for another key.
    let out = env
        .kiln(&[
            "pull",
            &pinned,
            "--verify",
            other.to_str().unwrap(),
            "-o",
            "c.wasm",
        ])
        .run()
        .code(1);
    assert!(!out.stderr.contains("Verified"), "{}", out.stderr);
}

#[test]
fn a_policy_in_kilns_configuration_requires_signatures() {
    let env = Env::new();
    let registry = Registry::open();
    let (private, public) = generate(&env, "kiln");
    let signed = format!("{}/acme/app:1", registry.addr);
    let unsigned = format!("{}/acme/plain:1", registry.addr);
    let elsewhere = format!("{}/acme-other/plain:1", registry.addr);
    publish(&env, &signed, &["--sign", private.to_str().unwrap()]).success();
    publish(&env, &unsigned, &[]).success();
    publish(&env, &elsewhere, &[]).success();
    env.write(
        ".kiln-config/policy.toml",
        format!(
            "[[verify]]\nprefix = \"{}/acme\"\nkeys = [\"{}\"]\n",
            registry.addr,
            public.display()
        ),
    );
    let ok = env.kiln(&["pull", &signed]).run().success();
    assert!(ok.stderr.contains("Verified"), "{}", ok.stderr);
    let out = env.kiln(&["pull", &unsigned]).run().code(1);
    assert!(out.stderr.contains("is not signed"), "{}", out.stderr);
    // `acme` does not cover `acme-other`.
    let out = env.kiln(&["pull", &elsewhere]).run().success();
    assert!(!out.stderr.contains("Verified"), "{}", out.stderr);
}

/// Copies the manifest at `from` to the tag `to` in `repository`, over the registry API.
fn copy_manifest(addr: &str, repository: &str, from: &str, to: &str) {
    let media_type = "application/vnd.oci.image.manifest.v1+json";
    let http = crate::support::http();
    let mut got = http
        .get(&format!("http://{addr}/v2/{repository}/manifests/{from}"))
        .header("Accept", media_type)
        .call()
        .unwrap();
    let body = got.body_mut().read_to_vec().unwrap();
    let put = http
        .put(&format!("http://{addr}/v2/{repository}/manifests/{to}"))
        .header("Content-Type", media_type)
        .send(&body[..])
        .unwrap();
    assert_eq!(put.status(), 201);
}

/// Runs skopeo for a sigstore operation; `None` (with a note) when its build has sigstore
/// turned off, as Debian's 1.9.3 has ("Debian-local change: sigstore disabled").
fn skopeo_sigstore(args: &[&str]) -> Option<std::process::Output> {
    let out = skopeo(args);
    if String::from_utf8_lossy(&out.stderr).contains("sigstore disabled") {
        skipped("this skopeo is built without sigstore (Debian's is); its check was not run");
        return None;
    }
    Some(out)
}

/// The (payload, base64 signature) pairs at the signature tag of `digest`, over the
/// registry API.
fn signatures_of(addr: &str, repository: &str, digest: &str) -> Vec<(Vec<u8>, String)> {
    let http = crate::support::http();
    let tag = format!("{}.sig", digest.replace(':', "-"));
    let mut got = http
        .get(&format!("http://{addr}/v2/{repository}/manifests/{tag}"))
        .header("Accept", "application/vnd.oci.image.manifest.v1+json")
        .call()
        .unwrap();
    assert_eq!(got.status(), 200);
    let manifest: serde_json::Value =
        serde_json::from_slice(&got.body_mut().read_to_vec().unwrap()).unwrap();
    manifest["layers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|layer| {
            let blob = layer["digest"].as_str().unwrap();
            let mut got = http
                .get(&format!("http://{addr}/v2/{repository}/blobs/{blob}"))
                .call()
                .unwrap();
            let payload = got.body_mut().read_to_vec().unwrap();
            let signature = layer["annotations"]["dev.cosignproject.cosign/signature"]
                .as_str()
                .unwrap()
                .to_string();
            (payload, signature)
        })
        .collect()
}

/// Whether `openssl dgst -sha256 -verify` accepts the base64 `signature` of `payload`.
fn openssl_verifies(env: &Env, public: &Path, payload: &[u8], signature: &str) -> bool {
    let payload_file = env.write("check/payload", payload);
    let signature_file = env.path("check/signature.der");
    let b64 = env.write("check/signature.b64", signature);
    let out = Command::new("openssl")
        .args(["base64", "-d", "-A", "-in"])
        .arg(&b64)
        .arg("-out")
        .arg(&signature_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-verify"])
        .arg(public)
        .arg("-signature")
        .arg(&signature_file)
        .arg(&payload_file)
        .output()
        .unwrap();
    out.status.success() && String::from_utf8_lossy(&out.stdout).contains("Verified OK")
}

/// `openssl dgst -sha256 -sign`: the base64 ASN.1 signature of `payload`.
fn openssl_sign(env: &Env, key: &Path, payload: &[u8]) -> String {
    let payload_file = env.write("sign/payload", payload);
    let signature_file = env.path("sign/signature.der");
    let out = Command::new("openssl")
        .args(["dgst", "-sha256", "-sign"])
        .arg(key)
        .arg("-out")
        .arg(&signature_file)
        .arg(&payload_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = Command::new("openssl")
        .args(["base64", "-A", "-in"])
        .arg(&signature_file)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap().trim().to_string()
}

/// Stores signatures as cosign and skopeo do (payload blobs, an image config, the manifest
/// at `sha256-<hex>.sig`), over the registry API, without kiln.
fn push_signatures(addr: &str, repository: &str, digest: &str, signatures: &[(&[u8], &String)]) {
    use sha2::Digest as _;
    let http = crate::support::http();
    let blob = |bytes: &[u8]| {
        let digest = format!("sha256:{}", hex::encode(sha2::Sha256::digest(bytes)));
        let started = http
            .post(&format!("http://{addr}/v2/{repository}/blobs/uploads/"))
            .send_empty()
            .unwrap();
        assert_eq!(started.status(), 202);
        let location = started.headers()["location"].to_str().unwrap().to_string();
        let location = if location.starts_with('/') {
            format!("http://{addr}{location}")
        } else {
            location
        };
        let separator = if location.contains('?') { '&' } else { '?' };
        let put = http
            .put(&format!("{location}{separator}digest={digest}"))
            .header("Content-Type", "application/octet-stream")
            .send(bytes)
            .unwrap();
        assert_eq!(put.status(), 201, "upload of {digest}");
        (digest, bytes.len())
    };
    let layers: Vec<serde_json::Value> = signatures
        .iter()
        .map(|(payload, signature)| {
            let (digest, size) = blob(payload);
            serde_json::json!({
                "mediaType": "application/vnd.dev.cosign.simplesigning.v1+json",
                "digest": digest,
                "size": size,
                "annotations": {"dev.cosignproject.cosign/signature": signature},
            })
        })
        .collect();
    let config = serde_json::json!({
        "architecture": "", "os": "", "config": {},
        "rootfs": {"type": "layers", "diff_ids": layers.iter().map(|l| l["digest"].clone()).collect::<Vec<_>>()},
    })
    .to_string();
    let (config_digest, config_size) = blob(config.as_bytes());
    let manifest = serde_json::json!({
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {"mediaType": "application/vnd.oci.image.config.v1+json", "digest": config_digest, "size": config_size},
        "layers": layers,
    })
    .to_string();
    let tag = format!("{}.sig", digest.replace(':', "-"));
    let put = http
        .put(&format!("http://{addr}/v2/{repository}/manifests/{tag}"))
        .header("Content-Type", "application/vnd.oci.image.manifest.v1+json")
        .send(manifest.as_bytes())
        .unwrap();
    assert_eq!(put.status(), 201);
}

fn which(name: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|d| d.join(name).is_file()))
}

#[allow(clippy::print_stderr)]
fn skipped(what: &str) {
    eprintln!("skipped: {what}");
}
