//! The superuser path (SPEC A9, B§4.0): statements run as CrateDB's `crate` user, either through
//! `crash` inside the CrateDB pod (pod exec over WebSocket) or, on OpenShift, through the
//! crate-control sidecar's HTTP endpoint. Both take plain SQL (values already escaped) because
//! crash takes no parameters. Statement text is never logged here: some carry passwords, and
//! those go to crash on stdin.

use std::time::Duration;

use k8s_openapi::{api::core::v1::Pod, apimachinery::pkg::apis::meta::v1::Status};
use kube::{Api, Client, api::AttachParams};
use secrecy::{ExposeSecret, SecretString};
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{SqlError, SqlResult, crash, queries};

/// Where superuser statements go.
pub enum Superuser {
    Exec(PodExec),
    Sidecar(Sidecar),
}

impl Superuser {
    pub async fn execute(&self, sql: &str) -> Result<SqlResult, SqlError> {
        match self {
            Self::Exec(exec) => exec.execute(sql).await,
            Self::Sidecar(sidecar) => sidecar.execute(sql).await,
        }
    }

    /// `ALTER USER "u" SET (password = …)`. Through the sidecar the password is a bound
    /// parameter (CrateDB evaluates parameters in ALTER ROLE properties), so neither the statement
    /// nor CrateDB's sys.jobs_log shows it. crash takes no parameters: there it is an escaped
    /// literal, as in the reference operator, but on crash's stdin, so it is in no exec request
    /// and no command line (SPEC A26); CrateDB's own sys.jobs_log still records the statement.
    pub async fn set_password(&self, user: &str, password: &str) -> Result<SqlResult, SqlError> {
        match self {
            Self::Exec(exec) => {
                exec.execute_secret(&queries::alter_password(user, password))
                    .await
            }
            Self::Sidecar(sidecar) => {
                sidecar
                    .execute_with_args(&queries::alter_password_bound(user), &[password])
                    .await
            }
        }
    }

    pub fn describe(&self) -> String {
        match self {
            Self::Exec(exec) => format!("crash in pod {}/{}", exec.namespace, exec.pod),
            Self::Sidecar(sidecar) => format!("crate-control sidecar {}", sidecar.url),
        }
    }
}

/// `crash --verify-ssl=false --host=<scheme>://localhost:4200` in container `crate`.
pub struct PodExec {
    pub client: Client,
    pub namespace: String,
    pub pod: String,
    pub container: String,
    /// `https` when the cluster has `spec.cluster.ssl`, else `http`.
    pub scheme: &'static str,
    pub timeout: Duration,
}

/// Hands one line of stdin to crash. crash reads statements from stdin only until end of input,
/// and the exec protocol Kubernetes 1.20 speaks over WebSocket (`v4.channel.k8s.io`) cannot
/// close stdin; the shell reads the one line and gives crash a pipe that ends. The statement is
/// in neither the exec request nor any process's command line.
const STDIN_STATEMENT: &str = r#"IFS= read -r statement && printf '%s\n' "$statement" | "$@""#;

impl PodExec {
    fn crash_command(&self) -> Vec<String> {
        vec![
            "crash".to_string(),
            "--verify-ssl=false".to_string(),
            format!("--host={}://localhost:4200", self.scheme),
        ]
    }

    /// A statement without secrets, as `crash … -c <sql>` (the reference's form).
    pub async fn execute(&self, sql: &str) -> Result<SqlResult, SqlError> {
        let mut command = self.crash_command();
        command.extend(["-c".to_string(), sql.to_string()]);
        self.run(command, None).await
    }

    /// A statement that carries a secret: sent on stdin, never in the exec request.
    pub async fn execute_secret(&self, sql: &str) -> Result<SqlResult, SqlError> {
        if sql.contains('\n') {
            return Err(SqlError::Decode(
                "a statement for crash's stdin must be one line".into(),
            ));
        }
        let mut command = vec![
            "sh".to_string(),
            "-c".to_string(),
            STDIN_STATEMENT.to_string(),
            "sh".to_string(),
        ];
        command.extend(self.crash_command());
        self.run(command, Some(format!("{sql}\n"))).await
    }

    async fn run(
        &self,
        command: Vec<String>,
        stdin: Option<String>,
    ) -> Result<SqlResult, SqlError> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), &self.namespace);
        let params = AttachParams::default()
            .container(self.container.clone())
            .stdin(stdin.is_some())
            .stdout(true)
            .stderr(true);
        let target = format!("crash in pod {}/{}", self.namespace, self.pod);
        let run = async {
            let mut process =
                pods.exec(&self.pod, command, &params)
                    .await
                    .map_err(|e| SqlError::Connection {
                        target: target.clone(),
                        detail: e.to_string(),
                    })?;
            // Over `v4.channel.k8s.io` (Kubernetes < 1.29) kube-rs can only signal the end of
            // stdin by closing the whole WebSocket, which loses crash's output and exit status.
            // The shell reads exactly one line, so stdin stays open until the session ends.
            let mut stdin_open_until_exit = None;
            if let (Some(text), Some(mut writer)) = (stdin, process.stdin()) {
                writer
                    .write_all(text.as_bytes())
                    .await
                    .map_err(|e| SqlError::Connection {
                        target: target.clone(),
                        detail: format!("cannot write to crash's stdin: {e}"),
                    })?;
                writer.flush().await.ok();
                stdin_open_until_exit = Some(writer);
            }
            let mut stdout = String::new();
            let mut stderr = String::new();
            let out = process.stdout();
            let err = process.stderr();
            let read_out = async {
                if let Some(mut s) = out {
                    let _ = s.read_to_string(&mut stdout).await;
                }
            };
            let read_err = async {
                if let Some(mut s) = err {
                    let _ = s.read_to_string(&mut stderr).await;
                }
            };
            tokio::join!(read_out, read_err);
            let status = match process.take_status() {
                Some(status) => status.await,
                None => None,
            };
            let _ = process.join().await;
            drop(stdin_open_until_exit);
            let Some(status) = status else {
                return Err(SqlError::Connection {
                    target: target.clone(),
                    detail: "the exec session ended without an exit status".into(),
                });
            };
            crash::interpret(&target, &stdout, &stderr, exit_code(&status))
        };
        tokio::time::timeout(self.timeout, run)
            .await
            .unwrap_or(Err(SqlError::Timeout {
                seconds: self.timeout.as_secs(),
            }))
    }
}

/// The exit status in an exec session's final Status: 0 for Success, else the `ExitCode` cause
/// (`-1` when the runtime gave none, e.g. the container is gone).
pub fn exit_code(status: &Status) -> i32 {
    if status.status.as_deref() == Some("Success") {
        return 0;
    }
    status
        .details
        .as_ref()
        .and_then(|d| d.causes.as_ref())
        .and_then(|causes| {
            causes
                .iter()
                .find(|c| c.reason.as_deref() == Some("ExitCode"))
        })
        .and_then(|c| c.message.as_deref())
        .and_then(|m| m.trim().parse().ok())
        .unwrap_or(-1)
}

/// `POST http://crate-control-{name}.{namespace}.svc.cluster.local:5050/exec` with header
/// `token` and body `{"stmt": ...}`.
pub struct Sidecar {
    pub http: reqwest::Client,
    pub url: String,
    pub token: SecretString,
    pub timeout: Duration,
}

impl Sidecar {
    pub async fn execute(&self, sql: &str) -> Result<SqlResult, SqlError> {
        self.post(serde_json::json!({ "stmt": sql })).await
    }

    /// With `?` placeholders bound to `args`.
    pub async fn execute_with_args(&self, sql: &str, args: &[&str]) -> Result<SqlResult, SqlError> {
        self.post(serde_json::json!({ "stmt": sql, "args": args }))
            .await
    }

    async fn post(&self, body: Value) -> Result<SqlResult, SqlError> {
        let response = self
            .http
            .post(&self.url)
            .header("token", self.token.expose_secret())
            .timeout(self.timeout)
            .json(&body)
            .send()
            .await
            .map_err(|e| {
                if e.is_timeout() {
                    SqlError::Timeout {
                        seconds: self.timeout.as_secs(),
                    }
                } else {
                    SqlError::Connection {
                        target: self.url.clone(),
                        detail: e.without_url().to_string(),
                    }
                }
            })?;
        let status = response.status();
        let body = response.text().await.map_err(|e| SqlError::Connection {
            target: self.url.clone(),
            detail: format!("HTTP {status}, body unreadable: {}", e.without_url()),
        })?;
        // 429: the sidecar asks to slow down; 5xx: it or CrateDB is not ready. Both pass.
        if status.is_server_error() || status == reqwest::StatusCode::TOO_MANY_REQUESTS {
            return Err(SqlError::Connection {
                target: self.url.clone(),
                detail: format!("HTTP {status}: {}", truncate(&body)),
            });
        }
        parse_sidecar_body(status.as_u16(), &body)
    }
}

fn truncate(text: &str) -> String {
    text.chars().take(300).collect()
}

/// The sidecar answers `{"rowcount", "rows", "cols"}` or `{"error": ...}` / `{"detail": ...}`.
pub fn parse_sidecar_body(status: u16, body: &str) -> Result<SqlResult, SqlError> {
    let value: Value = serde_json::from_str(body).map_err(|_| {
        SqlError::Decode(format!(
            "HTTP {status} with a non-JSON body: {}",
            truncate(body)
        ))
    })?;
    if let Some(error) = value.get("error").or_else(|| value.get("detail")) {
        let message = match error {
            Value::String(s) => s.clone(),
            other => other
                .get("message")
                .and_then(Value::as_str)
                .map(str::to_string)
                .unwrap_or_else(|| other.to_string()),
        };
        let code = error
            .get("code")
            .map(|c| c.to_string())
            .unwrap_or_else(|| status.to_string());
        return Err(SqlError::Sql { code, message });
    }
    if status >= 400 {
        return Err(SqlError::Sql {
            code: status.to_string(),
            message: truncate(body),
        });
    }
    let rows = value
        .get("rows")
        .and_then(Value::as_array)
        .map(|rows| {
            rows.iter()
                .map(|r| r.as_array().cloned().unwrap_or_default())
                .collect()
        })
        .unwrap_or_default();
    let columns = value
        .get("cols")
        .and_then(Value::as_array)
        .map(|c| {
            c.iter()
                .filter_map(|x| x.as_str().map(str::to_string))
                .collect()
        })
        .unwrap_or_default();
    Ok(SqlResult {
        columns,
        rows,
        rowcount: value.get("rowcount").and_then(Value::as_u64),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn sidecar_bodies() {
        let ok =
            parse_sidecar_body(200, r#"{"cols":["a"],"rows":[[1],[null]],"rowcount":2}"#).unwrap();
        assert_eq!(ok.rows, vec![vec![json!(1)], vec![Value::Null]]);
        assert_eq!(ok.rowcount, Some(2));
        let err = parse_sidecar_body(
            400,
            r#"{"error":{"message":"SQLParseException[x]","code":4000}}"#,
        )
        .unwrap_err();
        assert_eq!(err.to_string(), "SQLParseException[x]");
        assert_eq!(err.sqlstate(), Some("4000"));
        let detail = parse_sidecar_body(401, r#"{"detail":"Invalid token"}"#).unwrap_err();
        assert_eq!(detail.to_string(), "Invalid token");
        assert!(matches!(
            parse_sidecar_body(200, "<html>"),
            Err(SqlError::Decode(_))
        ));
    }
}
