//! A stand-in for the Kubernetes API's pod exec endpoint: it speaks the real streaming protocol
//! (WebSocket, `v5.channel.k8s.io` or `v4.channel.k8s.io`, one byte of channel per frame:
//! 0 stdin, 1 stdout, 2 stderr, 3 status JSON), runs the `crash -c <sql>` it is asked for (or
//! the product's `sh -c 'read one line | crash'` form, with the statement on stdin) against the
//! CrateDB simulator, and prints what crash prints, with its exit status. kube-rs's own exec
//! client talks to it.

use std::{
    net::SocketAddr,
    sync::{Arc, Mutex},
};

use axum::{
    Router,
    extract::{
        Path, RawQuery, State,
        ws::{Message, WebSocket, WebSocketUpgrade},
    },
    response::Response,
    routing::get,
};
use cratedb_sim::SimulatorHandle;

#[derive(Debug, Clone, PartialEq)]
pub struct ExecCall {
    pub namespace: String,
    pub pod: String,
    pub container: String,
    pub command: Vec<String>,
    pub protocol: String,
    /// The whole query string of the request, as an API server's audit log would record it.
    pub query: String,
}

/// What the endpoint does instead of running crash.
#[derive(Clone, Copy, PartialEq, Eq)]
pub enum Mode {
    /// Run the SQL on the simulator.
    Crash,
    /// The container has no crash: exit status failure, nothing on stdout.
    CommandNotFound,
}

#[derive(Clone)]
struct Shared {
    sim: Arc<SimulatorHandle>,
    calls: Arc<Mutex<Vec<ExecCall>>>,
    protocols: &'static [&'static str],
    mode: Mode,
}

pub struct ExecEndpoint {
    pub addr: SocketAddr,
    calls: Arc<Mutex<Vec<ExecCall>>>,
}

impl ExecEndpoint {
    pub async fn start(
        sim: Arc<SimulatorHandle>,
        protocols: &'static [&'static str],
        mode: Mode,
    ) -> Self {
        let calls = Arc::new(Mutex::new(Vec::new()));
        let shared = Shared {
            sim,
            calls: calls.clone(),
            protocols,
            mode,
        };
        let app = Router::new()
            .route("/api/v1/namespaces/{ns}/pods/{pod}/exec", get(upgrade))
            .with_state(shared);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Self { addr, calls }
    }

    pub fn calls(&self) -> Vec<ExecCall> {
        self.calls.lock().unwrap().clone()
    }

    /// A kube client whose API server is this endpoint.
    pub fn client(&self) -> kube::Client {
        cratedb_restore::install_crypto_provider();
        let config = kube::Config::new(format!("http://{}", self.addr).parse().unwrap());
        kube::Client::try_from(config).unwrap()
    }
}

async fn upgrade(
    State(shared): State<Shared>,
    Path((namespace, pod)): Path<(String, String)>,
    RawQuery(query): RawQuery,
    ws: WebSocketUpgrade,
) -> Response {
    let mut container = String::new();
    let mut command = Vec::new();
    let query = query.unwrap_or_default();
    for (k, v) in form_urlencoded::parse(query.as_bytes()) {
        match k.as_ref() {
            "container" => container = v.into_owned(),
            "command" => command.push(v.into_owned()),
            _ => {}
        }
    }
    let ws = ws.protocols(shared.protocols.iter().copied());
    ws.on_upgrade(move |socket| async move {
        let protocol = socket
            .protocol()
            .and_then(|p| p.to_str().ok())
            .unwrap_or_default()
            .to_string();
        shared.calls.lock().unwrap().push(ExecCall {
            namespace,
            pod,
            container,
            command: command.clone(),
            protocol,
            query,
        });
        serve(socket, shared, command).await;
    })
}

fn frame(channel: u8, data: &[u8]) -> Message {
    let mut bytes = Vec::with_capacity(data.len() + 1);
    bytes.push(channel);
    bytes.extend_from_slice(data);
    Message::Binary(bytes.into())
}

/// The statement of a `crash … -c <sql>` command, or `None` for the stdin form.
fn statement_argument(command: &[String]) -> Option<String> {
    command
        .iter()
        .position(|a| a == "-c")
        .filter(|_| command.first().map(String::as_str) == Some("crash"))
        .and_then(|i| command.get(i + 1))
        .cloned()
}

/// Reads stdin frames until one whole line arrived (what `IFS= read -r` takes).
async fn read_stdin_line(socket: &mut WebSocket) -> String {
    let mut buffer = Vec::new();
    while let Some(Ok(message)) = socket.recv().await {
        if let Message::Binary(bytes) = message
            && bytes.first() == Some(&0)
        {
            buffer.extend_from_slice(&bytes[1..]);
            if let Some(end) = buffer.iter().position(|b| *b == b'\n') {
                buffer.truncate(end);
                break;
            }
        }
    }
    String::from_utf8_lossy(&buffer).into_owned()
}

fn exit_status(code: i32) -> serde_json::Value {
    if code == 0 {
        return serde_json::json!({"metadata": {}, "status": "Success"});
    }
    serde_json::json!({
        "metadata": {}, "status": "Failure",
        "message": format!("command terminated with non-zero exit code: exit status {code}"),
        "reason": "NonZeroExitCode",
        "details": {"causes": [{"reason": "ExitCode", "message": code.to_string()}]}
    })
}

async fn serve(mut socket: WebSocket, shared: Shared, command: Vec<String>) {
    let status = match shared.mode {
        Mode::CommandNotFound => exit_status(127),
        Mode::Crash => {
            let sql = match statement_argument(&command) {
                Some(sql) => sql,
                None => read_stdin_line(&mut socket).await,
            };
            let out = shared.sim.crash_output(&sql);
            if !out.stdout.is_empty() {
                let _ = socket.send(frame(1, out.stdout.as_bytes())).await;
            }
            if !out.stderr.is_empty() {
                let _ = socket.send(frame(2, out.stderr.as_bytes())).await;
            }
            exit_status(out.exit_code)
        }
    };
    let _ = socket.send(frame(3, status.to_string().as_bytes())).await;
    let _ = socket.send(Message::Close(None)).await;
}
