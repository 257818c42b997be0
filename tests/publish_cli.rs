//! End-to-end test of `plinth plugin publish`: a marketplace runs in this process and the real
//! binary submits packages to it.

use std::path::Path;
use std::process::Output;
use std::time::Duration;

use plinth_marketplace::auth::token::TokenKind;
use plinth_marketplace::{AppState, Db, Settings, accounts, publishers};
use plinth_package::{Package, SecretKey};
use plinth_test_artifacts::{HELLO, TestPlugin, UNDECLARED_HTTP};
use plinth_test_support::TestDatabase;

type Result<T, E = anyhow::Error> = std::result::Result<T, E>;

/// `plugin`'s manifest with its id replaced, packaged with `readme` and signed by `key`.
fn package(
    dir: &Path,
    plugin: &TestPlugin,
    id: &str,
    readme: &str,
    key: &SecretKey,
) -> Result<String> {
    let manifest = std::fs::read_to_string(Path::new(plugin.dir).join("plinth.toml"))?;
    let manifest = manifest
        .lines()
        .map(|line| {
            if line.starts_with("id = ") {
                format!("id = \"{id}\"")
            } else {
                line.to_owned()
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    let wasm = std::fs::read(plugin.wasm)?;
    let mut package = Package::new(manifest, wasm, Some(readme.to_owned()), None)?;
    package.sign(key);
    let path = dir.join(format!("{id}-{readme}.plinth"));
    package.write_to(&path)?;
    Ok(path.display().to_string())
}

/// Runs `plinth plugin publish PKG --server URL --token T [extra]` off the async threads.
async fn publish(package: &str, server: &str, token: &str, extra: &[&str]) -> Result<Output> {
    let mut args = vec![
        "plugin".to_owned(),
        "publish".to_owned(),
        package.to_owned(),
        "--server".to_owned(),
        server.to_owned(),
        "--token".to_owned(),
        token.to_owned(),
    ];
    args.extend(extra.iter().map(|s| (*s).to_owned()));
    let output = tokio::task::spawn_blocking(move || {
        std::process::Command::new(env!("CARGO_BIN_EXE_plinth"))
            .args(&args)
            .output()
    })
    .await??;
    Ok(output)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// The one `error: …` line of a failed run.
fn error_line(output: &Output) -> String {
    assert!(!output.status.success(), "plinth unexpectedly succeeded");
    let stderr = text(&output.stderr);
    let lines: Vec<&str> = stderr
        .lines()
        .filter(|l| l.starts_with("error: "))
        .collect();
    assert_eq!(lines.len(), 1, "one error line expected: {stderr}");
    lines[0].to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn publish_submits_and_reports() -> Result<()> {
    let database = TestDatabase::sqlite()?;
    let db = Db::connect(&database.url())
        .await?
        .with_audit_key(plinth_marketplace::audit::key::AuditKey::generate()?.0);
    let state = AppState::new(db.clone(), Settings::default(), SecretKey::generate()?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let server = format!("http://{}", listener.local_addr()?);
    let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
    let served = tokio::spawn(plinth_marketplace::server::serve(
        listener,
        state.clone(),
        async move {
            let _ = stopped.await;
        },
        Duration::from_secs(5),
    ));

    let user = accounts::sign_up(&state, None, "ada@example.com", "a long password", "Ada").await?;
    let reserved = Settings::default().reserved_namespaces;
    let key = SecretKey::generate()?;
    let fixtures_key = SecretKey::generate()?;
    for (ns, key) in [("acme", &key), ("fixtures", &fixtures_key)] {
        let publisher = publishers::create(&db, &user.id, ns, ns, &reserved).await?;
        let public_key = key.public_key().to_string();
        let issued = publishers::issue_challenge(&db, &publisher, &public_key).await?;
        let signature = key.prove_possession(ns, &issued.challenge).to_string();
        publishers::add_key(
            &db,
            &plinth_marketplace::audit::Actor::User(user.id.clone()),
            &publisher,
            &public_key,
            publishers::Proof {
                challenge: &issued.challenge,
                signature: &signature,
            },
        )
        .await?;
    }
    let token = accounts::issue_token(&db, TokenKind::UserKey, &user.id, "cli", None).await?;
    let dir = tempfile::tempdir()?;

    // Accepted: status, queue position and (no) findings, exit 0.
    let hello = package(dir.path(), &HELLO, "acme.hello", "one", &key)?;
    let output = publish(&hello, &server, &token, &[]).await?;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let stdout = text(&output.stdout);
    assert!(stdout.contains("acme.hello 0.1.0: in_review"), "{stdout}");
    assert!(stdout.contains("queue position: 1"), "{stdout}");

    // --json: the marketplace's answer; publishing the same package again is idempotent.
    let output = publish(&hello, &server, &token, &["--json"]).await?;
    assert!(output.status.success(), "{}", text(&output.stderr));
    let body: serde_json::Value = serde_json::from_slice(&output.stdout)?;
    assert_eq!(body["status"], "in_review");
    assert_eq!(body["plugin"], "acme.hello");

    // Refused: the same version with other content.
    let changed = package(dir.path(), &HELLO, "acme.hello", "two", &key)?;
    let output = publish(&changed, &server, &token, &[]).await?;
    let line = error_line(&output);
    assert!(
        line.contains("version_exists") && line.contains("409"),
        "{line}"
    );

    // Refused: a bad token.
    let output = publish(&hello, &server, "plu_nope", &[]).await?;
    assert!(error_line(&output).contains("unauthenticated"));

    // Stored but rejected by validation: every finding printed, exit non-zero.
    let undeclared = package(
        dir.path(),
        &UNDECLARED_HTTP,
        "fixtures.undeclared-http",
        "one",
        &fixtures_key,
    )?;
    let output = publish(&undeclared, &server, &token, &[]).await?;
    let line = error_line(&output);
    assert!(line.contains("validation rejected the package"), "{line}");
    let stdout = text(&output.stdout);
    assert!(stdout.contains("rejected_by_validation"), "{stdout}");
    assert!(stdout.contains("error["), "{stdout}");

    let _ = stop.send(());
    served.await??;
    Ok(())
}
