use std::path::PathBuf;

use rcgen::{CertificateParams, KeyPair};
use tokio_rustls::TlsConnector;

use super::*;

/// A self-signed certificate for `localhost` and its key, in a temp dir.
struct Files {
    _dir: tempfile::TempDir,
    cert: PathBuf,
    key: PathBuf,
}

fn files() -> Files {
    let dir = tempfile::tempdir().expect("tempdir");
    let key_pair = KeyPair::generate().expect("key");
    let params = CertificateParams::new(vec!["localhost".to_string()]).expect("params");
    let cert = params.self_signed(&key_pair).expect("cert");
    let (cert_path, key_path) = (dir.path().join("cert.pem"), dir.path().join("key.pem"));
    std::fs::write(&cert_path, cert.pem()).expect("write cert");
    std::fs::write(&key_path, key_pair.serialize_pem()).expect("write key");
    Files {
        _dir: dir,
        cert: cert_path,
        key: key_path,
    }
}

/// A TLS handshake over an in-memory pipe: `Ok` when the client accepts the server.
async fn handshake(server: TlsAcceptor, client: ClientConfig) -> Result<(), std::io::Error> {
    let (server_end, client_end) = tokio::io::duplex(64 * 1024);
    let accepting = tokio::spawn(async move { server.accept(server_end).await.map(|_| ()) });
    // Any name: the pinned certificate is what counts.
    let name = ServerName::try_from("some-other-name.example").expect("name");
    let connected = TlsConnector::from(Arc::new(client))
        .connect(name, client_end)
        .await
        .map(|_| ());
    let _ = accepting.await;
    connected
}

#[tokio::test]
async fn our_own_certificate_is_trusted_whatever_name_is_dialled() {
    let ours = files();
    let acceptor = acceptor(&ours.cert, &ours.key).expect("loads");
    let pinned = pinned_client_config(&ours.cert).expect("pins");
    handshake(acceptor, pinned).await.expect("pinned handshake");
}

#[tokio::test]
async fn another_certificate_is_not_trusted() {
    let (ours, theirs) = (files(), files());
    let acceptor = acceptor(&theirs.cert, &theirs.key).expect("loads");
    let pinned = pinned_client_config(&ours.cert).expect("pins");
    let refused = handshake(acceptor, pinned).await.expect_err("refused");
    assert!(refused.to_string().contains("certificate"), "{refused}");
}

#[test]
fn a_missing_file_is_named() {
    let ours = files();
    let missing = ours.cert.with_file_name("nope.pem");
    let Err(error) = acceptor(&missing, &ours.key) else {
        panic!("a missing certificate file loads");
    };
    let text = error.to_string();
    assert!(
        text.contains("certificate file") && text.contains("nope.pem"),
        "{text}"
    );
}

#[test]
fn a_file_without_pem_is_named_and_a_key_is_never_quoted() {
    let ours = files();
    std::fs::write(&ours.cert, "not a certificate").expect("write");
    let Err(error) = acceptor(&ours.cert, &ours.key) else {
        panic!("garbage loads as a certificate");
    };
    let text = error.to_string();
    assert!(
        text.contains("cert.pem") && text.contains("no usable PEM"),
        "{text}"
    );

    let ours = files();
    let secret =
        "-----BEGIN PRIVATE KEY-----\nc2VjcmV0LWtleS1ieXRlcw!!\n-----END PRIVATE KEY-----\n";
    std::fs::write(&ours.key, secret).expect("write");
    let Err(error) = acceptor(&ours.cert, &ours.key) else {
        panic!("a corrupt key loads");
    };
    let text = error.to_string();
    assert!(
        text.contains("key.pem") && text.contains("private key"),
        "{text}"
    );
    assert!(!text.contains("c2VjcmV0"), "the key's bytes leak: {text}");
}

#[test]
fn a_key_of_another_certificate_is_refused_naming_both_files() {
    let (ours, theirs) = (files(), files());
    let Err(error) = acceptor(&ours.cert, &theirs.key) else {
        panic!("a mismatched pair loads");
    };
    let text = error.to_string();
    assert!(text.contains("cannot serve the certificate"), "{text}");
    assert!(text.contains(&ours.cert.display().to_string()), "{text}");
    assert!(text.contains(&theirs.key.display().to_string()), "{text}");
}
