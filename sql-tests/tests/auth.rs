//! Logging in: SCRAM-SHA-256 against the role catalog (through tokio-postgres, a real
//! client's SCRAM), the errors PostgreSQL gives for a wrong password, an unknown role, a
//! role without LOGIN and an expired one, roles that survive kill -9, and a server that
//! refuses to start on a public address without a password.

use std::process::Command;
use std::time::{Duration, Instant};

use henge_sql_tests::server::{henge_binary, TestServer};
use tokio_postgres::{Client, NoTls};

const CONFIG: &str = r#"
superuser_password = "boss-pw"
auth_failure_delay_ms = 50

[[auth]]
address = "all"
method = "scram-sha-256"
"#;

async fn log_in(
    server: &TestServer,
    user: &str,
    password: &str,
) -> Result<Client, tokio_postgres::Error> {
    let addr = server.addr();
    let text = format!(
        "host={} port={} user={user} password={password} dbname=henge",
        addr.ip(),
        addr.port()
    );
    let (client, connection) = tokio_postgres::connect(&text, NoTls).await?;
    tokio::spawn(connection);
    Ok(client)
}

fn failure(result: Result<Client, tokio_postgres::Error>) -> (String, String) {
    let Err(error) = result else {
        panic!("the login should fail");
    };
    let db = error.as_db_error().expect("a server error");
    (db.code().code().to_owned(), db.message().to_owned())
}

#[tokio::test(flavor = "multi_thread")]
async fn scram_logins_succeed_with_the_password_and_fail_alike_without_it() {
    let mut server = TestServer::start_with_config(Some(CONFIG));
    let boss = log_in(&server, "henge", "boss-pw").await.unwrap();
    boss.batch_execute(
        "CREATE ROLE reader LOGIN PASSWORD 'read-pw';
         CREATE ROLE nologin PASSWORD 'no-pw';
         CREATE ROLE expired LOGIN PASSWORD 'old-pw' VALID UNTIL '2001-01-01 00:00:00+00';
         CREATE ROLE empty LOGIN;
         CREATE TABLE t (a INT);
         INSERT INTO t VALUES (1), (2);
         GRANT SELECT ON t TO reader;",
    )
    .await
    .unwrap();

    let reader = log_in(&server, "reader", "read-pw").await.unwrap();
    let row = reader
        .query_one("SELECT current_user, count(*) FROM t", &[])
        .await
        .unwrap();
    assert_eq!(row.get::<_, String>(0), "reader");
    assert_eq!(row.get::<_, i64>(1), 2);
    let denied = reader
        .execute("INSERT INTO t VALUES (3)", &[])
        .await
        .unwrap_err();
    assert_eq!(denied.code().map(|c| c.code()), Some("42501"));

    // Wrong password, unknown role, a role with no password: the same answer.
    for (user, password) in [("reader", "wrong"), ("nobody", "x"), ("empty", "x")] {
        let (code, message) = failure(log_in(&server, user, password).await);
        assert_eq!(code, "28P01", "{user}");
        assert_eq!(
            message,
            format!("password authentication failed for user \"{user}\"")
        );
    }
    // The right password of a role that may not log in.
    let (code, message) = failure(log_in(&server, "nologin", "no-pw").await);
    assert_eq!(
        (code.as_str(), message.as_str()),
        ("28000", "role \"nologin\" is not permitted to log in")
    );
    let (code, _) = failure(log_in(&server, "expired", "old-pw").await);
    assert_eq!(code, "28000");

    // A changed password takes effect at the next login; roles survive kill -9.
    reader
        .batch_execute("ALTER ROLE reader PASSWORD 'new-pw'")
        .await
        .unwrap();
    server.kill_and_restart();
    assert_eq!(
        failure(log_in(&server, "reader", "read-pw").await).0,
        "28P01"
    );
    let reader = log_in(&server, "reader", "new-pw").await.unwrap();
    let n: i64 = reader
        .query_one("SELECT count(*) FROM t", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 2);
    assert_eq!(failure(log_in(&server, "henge", "wrong").await).0, "28P01");
    log_in(&server, "henge", "boss-pw").await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn failed_logins_from_one_address_are_answered_ever_more_slowly() {
    let server = TestServer::start_with_config(Some(CONFIG));
    let mut took = Vec::new();
    for _ in 0..4 {
        let start = Instant::now();
        let _ = log_in(&server, "henge", "wrong").await;
        took.push(start.elapsed());
    }
    // 50, 100, 200, 400 ms: together at least 750 ms, the last at least 400.
    assert!(
        took.iter().sum::<Duration>() >= Duration::from_millis(750),
        "{took:?}"
    );
    assert!(took[3] >= Duration::from_millis(400), "{took:?}");
}

#[test]
fn a_public_address_needs_a_password_and_no_trust_from_afar() {
    let dir = tempfile::tempdir().unwrap();
    let start = |config: &str, password: Option<&str>| {
        let path = dir.path().join("henge.toml");
        std::fs::write(&path, config).unwrap();
        let mut command = Command::new(henge_binary());
        command
            .args(["serve", "--listen", "0.0.0.0:0", "--data-dir"])
            .arg(dir.path().join("data"))
            .arg("--config")
            .arg(&path)
            .env_remove("HENGE_PASSWORD");
        if let Some(password) = password {
            command.env("HENGE_PASSWORD", password);
        }
        command.output().unwrap()
    };
    let no_password = start("", None);
    assert!(!no_password.status.success());
    assert!(String::from_utf8_lossy(&no_password.stderr).contains("no superuser has a password"));
    let trusting = start(
        "[[auth]]\naddress = \"all\"\nmethod = \"trust\"\n",
        Some("pw"),
    );
    assert!(!trusting.status.success());
    assert!(
        String::from_utf8_lossy(&trusting.stderr).contains("trusts clients beyond this machine")
    );
}
