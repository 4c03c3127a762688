//! S3 repositories on S3-compatible stores: `endpoint`, `protocol`, `use_path_style_access`
//! and (CrateDB 6.3.0+) `region`, recorded and used by "verification".

use cratedb_sim::{SimConfig, Simulator, SimulatorHandle, SnapshotDef, Storage};
use serde_json::json;
use tokio_postgres::Client;
use tokio_postgres::error::SqlState;
use tokio_postgres::types::{ToSql, Type};

use crate::common::*;

const MINIO: &str = "minio.minio:9000";

fn minio() -> Storage {
    Storage::s3(BUCKET, BASE, ACCESS, SECRET)
        .endpoint(MINIO)
        .protocol("http")
        .snapshot(SnapshotDef::new("snap1").version("5.5.0"))
}

async fn sim_with(version: &str, storage: Storage) -> (SimulatorHandle, Client) {
    let sim = Simulator::builder()
        .server_version(version)
        .user("system", SYSTEM_PW)
        .storage(storage)
        .start()
        .await
        .unwrap();
    let client = system(&sim).await;
    (sim, client)
}

/// `CREATE REPOSITORY` the way the product writes it, with `extra` settings appended, every
/// value bound as text.
async fn create(client: &Client, name: &str, extra: &[(&str, &str)]) -> Result<u64, String> {
    let mut with = vec![
        "max_restore_bytes_per_sec = $1".to_string(),
        "readonly = $2".to_string(),
        "access_key = $3".to_string(),
        "base_path = $4".to_string(),
        "bucket = $5".to_string(),
        "secret_key = $6".to_string(),
    ];
    let mut values: Vec<&str> = vec!["240mb", "true", ACCESS, BASE, BUCKET, SECRET];
    for (k, v) in extra {
        with.push(format!("{k} = ${}", values.len() + 1));
        values.push(v);
    }
    let sql = format!(
        "CREATE REPOSITORY \"{name}\" TYPE s3 WITH ({})",
        with.join(", ")
    );
    let stmt = client
        .prepare_typed(&sql, &vec![Type::TEXT; values.len()])
        .await
        .map_err(|e| e.to_string())?;
    let params: Vec<&(dyn ToSql + Sync)> =
        values.iter().map(|v| v as &(dyn ToSql + Sync)).collect();
    client
        .execute(&stmt, &params)
        .await
        .map_err(|e| server_message(&e).to_string())
}

fn unverified(name: &str, cause: &str) -> String {
    format!(
        "[{name}] Unable to verify the repository, [{name}] is not accessible on master node: {cause}"
    )
}

#[tokio::test]
async fn an_endpoint_storage_verifies_only_with_its_endpoint_and_protocol() {
    let (sim, client) = sim_with("5.10.3", minio()).await;
    let path_style = ("use_path_style_access", "true");
    // Without an endpoint the request goes to Amazon, which has no such bucket.
    let err = create(&client, "aws", &[path_style]).await.unwrap_err();
    assert!(
        err.starts_with(&unverified(
            "aws",
            "AmazonS3Exception 'The specified bucket does not exist"
        )),
        "{err}"
    );
    let err = create(
        &client,
        "other",
        &[
            ("endpoint", "minio.other:9000"),
            ("protocol", "http"),
            path_style,
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        unverified(
            "other",
            "SdkClientException 'Unable to execute HTTP request: minio.other: Name or service not known'"
        )
    );
    // https (the default protocol) against a plain-HTTP store, and the other way round.
    let err = create(&client, "tls", &[("endpoint", MINIO), path_style])
        .await
        .unwrap_err();
    assert_eq!(
        err,
        unverified(
            "tls",
            "SdkClientException 'Unable to execute HTTP request: Unsupported or unrecognized SSL message'"
        )
    );
    // Virtual-hosted style (the default before 6.3.0) asks DNS for <bucket>.<endpoint>.
    let err = create(
        &client,
        "vhost",
        &[("endpoint", MINIO), ("protocol", "http")],
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        unverified(
            "vhost",
            "SdkClientException 'Unable to execute HTTP request: backups.minio.minio: Name or service not known'"
        )
    );
    let err = create(
        &client,
        "ftp",
        &[("endpoint", MINIO), ("protocol", "ftp"), path_style],
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        unverified(
            "ftp",
            "IllegalArgumentException 'No enum constant com.amazonaws.Protocol.FTP'"
        )
    );
    assert!(sim.repositories().is_empty());

    assert_eq!(
        create(
            &client,
            "repo",
            &[("endpoint", MINIO), ("protocol", "http"), path_style]
        )
        .await
        .unwrap(),
        1
    );
    // An endpoint written as a URL carries its protocol (CrateDB lower-cases endpoints).
    assert_eq!(
        create(
            &client,
            "url",
            &[("endpoint", "HTTP://MinIO.minio:9000/"), path_style]
        )
        .await
        .unwrap(),
        1
    );
    let names: Vec<String> = client
        .query(
            "SELECT name FROM sys.snapshots WHERE repository = $1",
            &[&"repo"],
        )
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert_eq!(names, ["snap1"]);

    // sys.repositories shows endpoint and protocol as given; CrateDB masks only the secrets
    // (access_key, secret_key, session_token of s3).
    let settings: serde_json::Value = client
        .query_one(
            "SELECT settings FROM sys.repositories WHERE name = $1",
            &[&"repo"],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(
        settings,
        json!({
            "access_key": "[xxxxx]",
            "base_path": BASE,
            "bucket": BUCKET,
            "endpoint": MINIO,
            "max_restore_bytes_per_sec": "240mb",
            "protocol": "http",
            "readonly": "true",
            "secret_key": "[xxxxx]",
            "use_path_style_access": "true",
        })
    );
    let repo = sim.repository("repo").unwrap();
    assert_eq!(repo.setting("endpoint"), Some(MINIO));
    assert_eq!(repo.setting("protocol"), Some("http"));
    assert_eq!(repo.setting("secret_key"), Some(SECRET));
    assert_eq!(
        sim.repository("url").unwrap().setting("endpoint"),
        Some("HTTP://MinIO.minio:9000/")
    );
    assert!(sim.repository("nope").is_none());

    // Over HTTP too.
    let (status, body) = sql_post(
        &sim,
        "",
        &[],
        &json!({
            "stmt": "CREATE REPOSITORY h TYPE s3 WITH (bucket = ?, base_path = ?, access_key = ?, secret_key = ?, endpoint = ?, protocol = ?, use_path_style_access = true)",
            "args": [BUCKET, BASE, ACCESS, SECRET, MINIO, "https"],
        }),
    )
    .await;
    assert_eq!(status, 500, "{body}");
    assert_eq!(
        body["error"]["message"],
        format!(
            "RepositoryVerificationException[{}]",
            unverified(
                "h",
                "SdkClientException 'Unable to execute HTTP request: Unsupported or unrecognized SSL message'"
            )
        )
    );
    sim.shutdown().await;

    // A TLS store answered over plain HTTP does not answer.
    let (sim, client) = sim_with(
        "5.10.3",
        Storage::s3(BUCKET, BASE, ACCESS, SECRET).endpoint("https://ceph.storage:7480"),
    )
    .await;
    let err = create(
        &client,
        "plain",
        &[
            ("endpoint", "ceph.storage:7480"),
            ("protocol", "http"),
            ("use_path_style_access", "true"),
        ],
    )
    .await
    .unwrap_err();
    assert_eq!(
        err,
        unverified(
            "plain",
            "SdkClientException 'Unable to execute HTTP request: ceph.storage:7480 failed to respond'"
        )
    );
    create(
        &client,
        "tls",
        &[
            ("endpoint", "ceph.storage:7480"),
            ("use_path_style_access", "true"),
        ],
    )
    .await
    .unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn path_style_access_is_the_default_from_6_3_0() {
    for (version, verifies) in [("6.2.7", false), ("6.3.0", true)] {
        let (sim, client) = sim_with(version, minio()).await;
        let result = create(
            &client,
            "repo",
            &[("endpoint", MINIO), ("protocol", "http")],
        )
        .await;
        assert_eq!(result.is_ok(), verifies, "{version}: {result:?}");
        sim.shutdown().await;
    }
    // A store that answers virtual-hosted requests needs no path style.
    let (sim, client) = sim_with("5.10.3", minio().virtual_host_style(true)).await;
    create(
        &client,
        "repo",
        &[("endpoint", MINIO), ("protocol", "http")],
    )
    .await
    .unwrap();
    sim.shutdown().await;
}

#[tokio::test]
async fn region_is_a_setting_from_6_3_0_and_checked_where_the_store_has_one() {
    let garage = || {
        Storage::s3(BUCKET, BASE, ACCESS, SECRET)
            .endpoint("garage.s3:3900")
            .protocol("http")
            .region("garage")
    };
    let at = [("endpoint", "garage.s3:3900"), ("protocol", "http")];
    let with = |extra: &[(&'static str, &'static str)]| {
        let mut all = at.to_vec();
        all.push(("use_path_style_access", "true"));
        all.extend_from_slice(extra);
        all
    };

    // Before 6.3.0: an unknown setting, and the region the client signs for is us-east-1.
    let (sim, client) = sim_with("6.2.7", garage()).await;
    let err = create(&client, "r", &with(&[("region", "garage")]))
        .await
        .unwrap_err();
    assert_eq!(err, "Setting 'region' is not supported");
    let err = create(&client, "r", &with(&[])).await.unwrap_err();
    assert_eq!(
        err,
        unverified(
            "r",
            "AmazonS3Exception 'The authorization header is malformed; the region 'us-east-1' is wrong; expecting 'garage' (Service: Amazon S3; Status Code: 400; Error Code: AuthorizationHeaderMalformed)'"
        )
    );
    sim.shutdown().await;

    // From 6.3.0: recorded, shown, and it has to be the store's.
    let (sim, client) = sim_with("6.3.0", garage()).await;
    let err = create(&client, "wrong", &with(&[("region", "eu-west-1")]))
        .await
        .unwrap_err();
    assert!(
        err.contains("the region 'eu-west-1' is wrong; expecting 'garage'"),
        "{err}"
    );
    let err = create(&client, "none", &with(&[])).await.unwrap_err();
    assert!(err.contains("the region 'us-east-1' is wrong"), "{err}");
    create(&client, "repo", &with(&[("region", "garage")]))
        .await
        .unwrap();
    let region: String = client
        .query_one(
            "SELECT settings['region'] FROM sys.repositories WHERE name = 'repo'",
            &[],
        )
        .await
        .unwrap()
        .get(0);
    assert_eq!(region, "garage");
    assert_eq!(
        sim.repository("repo").unwrap().setting("region"),
        Some("garage")
    );
    sim.shutdown().await;

    // A store without a region takes any.
    let (sim, client) = sim_with("6.3.0", minio()).await;
    create(
        &client,
        "repo",
        &[
            ("endpoint", MINIO),
            ("protocol", "http"),
            ("region", "anything"),
        ],
    )
    .await
    .unwrap();
    // Azure has no region setting.
    let err = client
        .execute(
            "CREATE REPOSITORY az TYPE azure WITH (account = 'a', key = 'k', region = 'x')",
            &[],
        )
        .await
        .unwrap_err();
    assert_eq!(err.code(), Some(&SqlState::FEATURE_NOT_SUPPORTED));
    assert_eq!(server_message(&err), "Setting 'region' is not supported");
    sim.shutdown().await;
}

#[tokio::test]
async fn endpoints_come_from_the_json_config_too() {
    let config: SimConfig = serde_json::from_value(json!({
        "server_version": "6.3.0",
        "users": [{"name": "system", "password": SYSTEM_PW}],
        "storages": [{
            "type": "s3", "bucket": BUCKET, "base_path": BASE,
            "access_key": ACCESS, "secret_key": SECRET,
            "endpoint": MINIO, "protocol": "http", "region": "minio-1",
            "snapshots": [{"name": "snap1", "version": "5.5.0"}]
        }]
    }))
    .unwrap();
    let sim = Simulator::builder().config(config).start().await.unwrap();
    let client = system(&sim).await;
    let err = create(&client, "r", &[("endpoint", MINIO), ("region", "minio-1")])
        .await
        .unwrap_err();
    assert!(
        err.contains("Unsupported or unrecognized SSL message"),
        "{err}"
    );
    create(
        &client,
        "r",
        &[
            ("endpoint", MINIO),
            ("protocol", "http"),
            ("region", "minio-1"),
        ],
    )
    .await
    .unwrap();
    let n: i64 = client
        .query_one("SELECT count(*) FROM sys.snapshots", &[])
        .await
        .unwrap()
        .get(0);
    assert_eq!(n, 1);
    sim.shutdown().await;
}
