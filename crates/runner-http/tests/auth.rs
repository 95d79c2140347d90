//! The token file parser and JWT verification (HS256, and RS256 with a key made at test time).

use std::process::Command;
use std::time::{SystemTime, UNIX_EPOCH};

use jsonwebtoken::{Algorithm, EncodingKey, Header};
use runner_core::ids::AccountAlias;
use runner_http::auth::{
    AuthError, Authenticator, JwtAuthenticator, Scope, TokenFile, TokenFileError,
};
use serde_json::{Value, json};

fn alias(name: &str) -> AccountAlias {
    name.parse().unwrap()
}

fn line_error(text: &str) -> (usize, String) {
    match TokenFile::parse(text) {
        Err(TokenFileError::Line { line, message }) => (line, message),
        other => panic!("expected a line error, got {other:?}"),
    }
}

#[tokio::test]
async fn token_file_scopes() {
    let file = TokenFile::parse(
        "# comment\n\n   # indented comment\nadmin-0123456789abcdef *\n\
         acme-0123456789abcdef ACME\n  multi-0123456789abcdef   ACME,beta_2  \n",
    )
    .unwrap();
    assert_eq!(file.len(), 3);
    assert_eq!(
        file.authenticate("admin-0123456789abcdef").await,
        Ok(Scope::All)
    );
    let acme = file.authenticate("acme-0123456789abcdef").await.unwrap();
    assert!(acme.allows(&alias("ACME")));
    assert!(!acme.allows(&alias("acme")), "aliases are case-sensitive");
    let multi = file.authenticate("multi-0123456789abcdef").await.unwrap();
    assert!(multi.allows(&alias("ACME")) && multi.allows(&alias("beta_2")));
    assert!(!multi.allows(&alias("OTHER")));
    assert_eq!(
        file.authenticate("unknown-0123456789abcdef").await,
        Err(AuthError::Invalid)
    );
    assert_eq!(
        file.authenticate("acme-0123456789abcde").await,
        Err(AuthError::Invalid)
    );
    assert_eq!(file.authenticate("").await, Err(AuthError::Invalid));
}

#[test]
fn token_file_errors_name_the_line_not_the_token() {
    let secretish = "supersecret-token-value";
    for (text, line, needle) in [
        (format!("{secretish}\n"), 1, "expected"),
        (format!("# c\n{secretish} ACME BETA\n"), 2, "commas"),
        ("short ACME\n".to_owned(), 1, "shorter than 16"),
        (
            format!("{secretish} bad.alias\n"),
            1,
            "invalid account alias",
        ),
        (format!("{secretish} ACME,\n"), 1, "invalid account alias"),
        (
            format!("{secretish} *\n{secretish} ACME\n"),
            2,
            "already listed",
        ),
    ] {
        let (got_line, message) = line_error(&text);
        assert_eq!(got_line, line, "{text:?}");
        assert!(message.contains(needle), "{message}");
        let shown = TokenFileError::Line {
            line: got_line,
            message,
        }
        .to_string();
        assert!(!shown.contains(secretish), "{shown}");
    }
    assert!(matches!(
        TokenFile::parse("# nothing\n\n"),
        Err(TokenFileError::Empty)
    ));
    let debug = format!("{:?}", TokenFile::parse(&format!("{secretish} *")).unwrap());
    assert!(!debug.contains(secretish), "{debug}");
}

#[test]
fn token_file_loads_from_disk() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tokens");
    std::fs::write(&path, "file-token-0123456789 ACME\n").unwrap();
    let file = TokenFile::load(&path).unwrap();
    assert!(
        file.scope("file-token-0123456789")
            .unwrap()
            .allows(&alias("ACME"))
    );
    let missing = TokenFile::load(&dir.path().join("absent")).unwrap_err();
    assert!(missing.to_string().contains("absent"), "{missing}");
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

fn sign(key: &EncodingKey, algorithm: Algorithm, claims: Value) -> String {
    jsonwebtoken::encode(&Header::new(algorithm), &claims, key).unwrap()
}

const SECRET: &[u8] = b"test-only-hs256-secret-0123456789";

#[tokio::test]
async fn jwt_hs256() {
    let verifier = JwtAuthenticator::hs256(SECRET).unwrap();
    let key = EncodingKey::from_secret(SECRET);
    let exp = now() + 600;

    let all = sign(
        &key,
        Algorithm::HS256,
        json!({"sub": "ops", "exp": exp, "aliases": "*"}),
    );
    assert_eq!(verifier.authenticate(&all).await, Ok(Scope::All));
    let listed = sign(
        &key,
        Algorithm::HS256,
        json!({"exp": exp, "aliases": ["ACME", "BETA"]}),
    );
    let scope = verifier.authenticate(&listed).await.unwrap();
    assert!(scope.allows(&alias("ACME")) && scope.allows(&alias("BETA")));
    assert!(!scope.allows(&alias("GAMMA")));
    let single = sign(
        &key,
        Algorithm::HS256,
        json!({"exp": exp, "aliases": "ACME"}),
    );
    assert!(
        verifier
            .authenticate(&single)
            .await
            .unwrap()
            .allows(&alias("ACME"))
    );
    let star_in_list = sign(
        &key,
        Algorithm::HS256,
        json!({"exp": exp, "aliases": ["ACME", "*"]}),
    );
    assert_eq!(verifier.authenticate(&star_in_list).await, Ok(Scope::All));

    // Expired, unsigned, wrong key, no exp, no or bad scope claim.
    let expired = sign(
        &key,
        Algorithm::HS256,
        json!({"exp": now() - 3600, "aliases": "*"}),
    );
    assert_eq!(
        verifier.authenticate(&expired).await,
        Err(AuthError::Expired)
    );
    let other_key = EncodingKey::from_secret(b"another-secret-0123456789abcdef");
    let forged = sign(
        &other_key,
        Algorithm::HS256,
        json!({"exp": exp, "aliases": "*"}),
    );
    assert_eq!(
        verifier.authenticate(&forged).await,
        Err(AuthError::Invalid)
    );
    let no_exp = sign(&key, Algorithm::HS256, json!({"aliases": "*"}));
    assert_eq!(
        verifier.authenticate(&no_exp).await,
        Err(AuthError::Invalid)
    );
    let no_claim = sign(&key, Algorithm::HS256, json!({"exp": exp}));
    assert_eq!(
        verifier.authenticate(&no_claim).await,
        Err(AuthError::MissingScope("aliases".into()))
    );
    let bad_alias = sign(
        &key,
        Algorithm::HS256,
        json!({"exp": exp, "aliases": ["no spaces"]}),
    );
    assert!(matches!(
        verifier.authenticate(&bad_alias).await,
        Err(AuthError::MissingScope(_))
    ));
    let number = sign(&key, Algorithm::HS256, json!({"exp": exp, "aliases": 7}));
    assert!(matches!(
        verifier.authenticate(&number).await,
        Err(AuthError::MissingScope(_))
    ));
    assert_eq!(
        verifier.authenticate("not.a.jwt").await,
        Err(AuthError::Invalid)
    );
    // "alg: none" is refused.
    let header = base64_url(br#"{"alg":"none","typ":"JWT"}"#);
    let body = base64_url(json!({"exp": exp, "aliases": "*"}).to_string().as_bytes());
    assert_eq!(
        verifier.authenticate(&format!("{header}.{body}.")).await,
        Err(AuthError::Invalid)
    );

    // A configured claim name, issuer and audience.
    let custom = JwtAuthenticator::hs256(SECRET)
        .unwrap()
        .with_aliases_claim("runner/accounts")
        .with_issuer("https://issuer.test")
        .with_audience("runner");
    let good = sign(
        &key,
        Algorithm::HS256,
        json!({"exp": exp, "runner/accounts": ["ACME"], "iss": "https://issuer.test", "aud": "runner"}),
    );
    assert!(
        custom
            .authenticate(&good)
            .await
            .unwrap()
            .allows(&alias("ACME"))
    );
    let wrong_iss = sign(
        &key,
        Algorithm::HS256,
        json!({"exp": exp, "runner/accounts": ["ACME"], "iss": "https://evil.test", "aud": "runner"}),
    );
    assert_eq!(
        custom.authenticate(&wrong_iss).await,
        Err(AuthError::Invalid)
    );
    let wrong_aud = sign(
        &key,
        Algorithm::HS256,
        json!({"exp": exp, "runner/accounts": ["ACME"], "iss": "https://issuer.test", "aud": "other"}),
    );
    assert_eq!(
        custom.authenticate(&wrong_aud).await,
        Err(AuthError::Invalid)
    );
    assert!(JwtAuthenticator::hs256(b"").is_err());
}

fn base64_url(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(bytes)
}

/// A throw-away RSA key pair made with the openssl command line (a test dependency: missing
/// openssl fails the test loudly).
fn rsa_key_pair(dir: &std::path::Path) -> (Vec<u8>, Vec<u8>) {
    let private = dir.join("test-only-private.pem");
    let public = dir.join("test-only-public.pem");
    let status = Command::new("openssl")
        .args([
            "genpkey",
            "-algorithm",
            "RSA",
            "-pkeyopt",
            "rsa_keygen_bits:2048",
            "-out",
        ])
        .arg(&private)
        .output()
        .expect("openssl must be installed to run the RS256 test");
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    let status = Command::new("openssl")
        .args(["pkey", "-pubout", "-in"])
        .arg(&private)
        .arg("-out")
        .arg(&public)
        .output()
        .unwrap();
    assert!(
        status.status.success(),
        "{}",
        String::from_utf8_lossy(&status.stderr)
    );
    (
        std::fs::read(private).unwrap(),
        std::fs::read(public).unwrap(),
    )
}

#[tokio::test]
async fn jwt_rs256() {
    let dir = tempfile::tempdir().unwrap();
    let (private, public) = rsa_key_pair(dir.path());
    let verifier = JwtAuthenticator::rs256_pem(&public).unwrap();
    let key = EncodingKey::from_rsa_pem(&private).unwrap();
    let exp = now() + 600;
    let token = sign(
        &key,
        Algorithm::RS256,
        json!({"exp": exp, "aliases": ["ACME"]}),
    );
    let scope = verifier.authenticate(&token).await.unwrap();
    assert!(scope.allows(&alias("ACME")) && !scope.allows(&alias("BETA")));
    let expired = sign(
        &key,
        Algorithm::RS256,
        json!({"exp": now() - 3600, "aliases": "*"}),
    );
    assert_eq!(
        verifier.authenticate(&expired).await,
        Err(AuthError::Expired)
    );

    // An HS256 token signed with the public key as secret (algorithm confusion) is refused.
    let confused = sign(
        &EncodingKey::from_secret(&public),
        Algorithm::HS256,
        json!({"exp": exp, "aliases": "*"}),
    );
    assert_eq!(
        verifier.authenticate(&confused).await,
        Err(AuthError::Invalid)
    );
    // A token from another key pair is refused.
    let other_dir = tempfile::tempdir().unwrap();
    let (other_private, _) = rsa_key_pair(other_dir.path());
    let foreign = sign(
        &EncodingKey::from_rsa_pem(&other_private).unwrap(),
        Algorithm::RS256,
        json!({"exp": exp, "aliases": "*"}),
    );
    assert_eq!(
        verifier.authenticate(&foreign).await,
        Err(AuthError::Invalid)
    );
    assert!(JwtAuthenticator::rs256_pem(b"not a key").is_err());
}
