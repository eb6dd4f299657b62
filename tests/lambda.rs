//! The built `telemetry-lambda` binary, run as Lambda runs it: against a stand-in for the Lambda
//! Runtime API served here on 127.0.0.1 (`AWS_LAMBDA_RUNTIME_API` points at it), with items
//! stored through the service on DynamoDB Local.
//!
//! The stand-in serves the documented endpoints: `GET /2018-06-01/runtime/invocation/next`
//! (a long poll that hands out the next event with its `Lambda-Runtime-*` headers), `POST
//! .../invocation/{id}/response` and `POST .../invocation/{id}/error`, and `POST
//! .../runtime/init/error`. Each test feeds events (an ALB target-group event, an API Gateway
//! HTTP API v2 event, malformed ones) and reads what the function posted back.
//!
//! Needs `--features lambda`, `TELEMETRY_TEST_STORAGE=dynamodb` and DynamoDB
//! Local at `AWS_ENDPOINT_URL`: `scripts/dynamodb-tests.sh` (or `scripts/lambda-tests.sh` for
//! this target alone) provides them. The binary is
//! `TELEMETRY_LAMBDA_BIN` when set (the release build, for the cold-start figure), else the one
//! cargo built for this test.

#[path = "api/helpers.rs"]
mod helpers;

use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use helpers::{TestApp, TestStore, spawn_app_with};
use reqwest::StatusCode;
use serde_json::{Value, json};
use telemetry::auth::TokenSet;
use telemetry::config::StorageKind;
use tokio::sync::{Mutex, mpsc};
use warp::Filter;
use warp::http::Response;

const ADMIN: &str = "admin-token-for-the-lambda-0123";
const READ: &str = "read-token-for-the-lambda-01234";
/// Bounds every wait on the function (a hung binary fails the test instead of hanging it).
const PATIENCE: Duration = Duration::from_secs(60);

fn sha256_hex(token: &str) -> String {
    telemetry::auth::tokens::digest(token)
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// `API_TOKENS` as Terraform hands it to the function: digests only, never a usable token.
fn hashed_tokens() -> String {
    format!(
        "admin:sha256:{},read:sha256:{}",
        sha256_hex(ADMIN),
        sha256_hex(READ)
    )
}

fn dynamodb_store() -> TestStore {
    let store = TestStore::new();
    assert_eq!(
        store.kind,
        StorageKind::Dynamodb,
        "tests/lambda.rs needs TELEMETRY_TEST_STORAGE=dynamodb and DynamoDB Local at \
         AWS_ENDPOINT_URL: run scripts/lambda-tests.sh"
    );
    store
}

/// The service on the test's table, with the same tokens (in clear) as the function.
async fn spawn_service(store: &TestStore) -> TestApp {
    let mut config = store.config();
    config.tokens = TokenSet::parse(&format!("admin:{ADMIN},read:{READ}")).expect("tokens");
    spawn_app_with(config).await
}

async fn put_item(service: &TestApp, item: &Value) -> String {
    let response = service
        .client
        .post(service.url("/picus/put"))
        .bearer_auth(ADMIN)
        .json(item)
        .send()
        .await
        .expect("request sent");
    assert_eq!(response.status(), StatusCode::CREATED);
    let body: Value = response.json().await.expect("JSON");
    body["id"].as_str().expect("an id").to_owned()
}

async fn item_status(service: &TestApp, id: &str) -> StatusCode {
    service
        .client
        .get(service.url(&format!("/picus/get/{id}")))
        .bearer_auth(READ)
        .send()
        .await
        .expect("request sent")
        .status()
}

// --- the Runtime API stand-in ------------------------------------------------------------

/// What the function posted for one invocation.
#[derive(Debug)]
enum Posted {
    Response(Value),
    Error(Value),
    InitError(Value),
}

struct RuntimeApi {
    address: String,
    events: mpsc::Sender<(String, String)>,
    posted: Mutex<mpsc::Receiver<(String, Posted)>>,
    next_id: std::sync::atomic::AtomicU64,
}

impl RuntimeApi {
    async fn start() -> Arc<Self> {
        let (events, pending) = mpsc::channel::<(String, String)>(16);
        let (post, posted) = mpsc::channel::<(String, Posted)>(16);
        let pending = Arc::new(Mutex::new(pending));

        let next = warp::path!("2018-06-01" / "runtime" / "invocation" / "next")
            .and(warp::get())
            .then(move || {
                let pending = pending.clone();
                async move {
                    // A long poll, as on Lambda: answered when the test has an event.
                    let Some((id, event)) = pending.lock().await.recv().await else {
                        return Response::builder().status(500).body(String::new()).unwrap();
                    };
                    let deadline = SystemTime::now()
                        .duration_since(UNIX_EPOCH)
                        .expect("clock")
                        .as_millis()
                        + 30_000;
                    Response::builder()
                        .header("lambda-runtime-aws-request-id", &id)
                        .header("lambda-runtime-deadline-ms", deadline.to_string())
                        .header(
                            "lambda-runtime-invoked-function-arn",
                            "arn:aws:lambda:us-east-1:123456789012:function:telemetry-test",
                        )
                        .header("lambda-runtime-trace-id", format!("Root=1-test-{id}"))
                        .header("content-type", "application/json")
                        .body(event)
                        .unwrap()
                }
            });
        let record = |post: mpsc::Sender<(String, Posted)>, kind: fn(Value) -> Posted| {
            move |id: String, body: bytes::Bytes| {
                let post = post.clone();
                async move {
                    let value = serde_json::from_slice(&body)
                        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(&body).into()));
                    let _ = post.send((id, kind(value))).await;
                    Response::builder()
                        .status(202)
                        .body(r#"{"status":"OK"}"#.to_owned())
                        .unwrap()
                }
            }
        };
        let response = warp::path!("2018-06-01" / "runtime" / "invocation" / String / "response")
            .and(warp::post())
            .and(warp::body::bytes())
            .then(record(post.clone(), Posted::Response));
        let error = warp::path!("2018-06-01" / "runtime" / "invocation" / String / "error")
            .and(warp::post())
            .and(warp::body::bytes())
            .then(record(post.clone(), Posted::Error));
        let init_error = warp::path!("2018-06-01" / "runtime" / "init" / "error")
            .and(warp::post())
            .and(warp::body::bytes())
            .then({
                let post = post.clone();
                move |body: bytes::Bytes| {
                    let post = post.clone();
                    async move {
                        let value = serde_json::from_slice(&body).unwrap_or(Value::Null);
                        let _ = post.send(("init".into(), Posted::InitError(value))).await;
                        Response::builder().status(202).body(String::new()).unwrap()
                    }
                }
            });
        let routes = next
            .or(response)
            .unify()
            .or(error)
            .unify()
            .or(init_error)
            .unify();
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the stand-in");
        let address = listener.local_addr().expect("address").to_string();
        tokio::spawn(warp::serve(routes).incoming(listener).run());
        Arc::new(Self {
            address,
            events,
            posted: Mutex::new(posted),
            next_id: std::sync::atomic::AtomicU64::new(1),
        })
    }

    /// Hands `event` (raw text: it need not be JSON) to the function and returns what it posted.
    async fn invoke_raw(&self, event: String) -> Posted {
        let id = format!(
            "req-{}",
            self.next_id
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        );
        self.events
            .send((id.clone(), event))
            .await
            .expect("stand-in running");
        let mut posted = self.posted.lock().await;
        loop {
            let (for_id, what) = tokio::time::timeout(PATIENCE, posted.recv())
                .await
                .unwrap_or_else(|_| panic!("no answer to {id} within {PATIENCE:?}"))
                .expect("stand-in running");
            if let Posted::InitError(error) = &what {
                panic!("the function reported an init error: {error}");
            }
            if for_id == id {
                return what;
            }
        }
    }

    /// The HTTP answer the function gave to `event`.
    async fn invoke(&self, event: &Value) -> Value {
        match self.invoke_raw(event.to_string()).await {
            Posted::Response(answer) => answer,
            other => panic!("expected a response to {event}, got {other:?}"),
        }
    }
}

// --- the function's process ----------------------------------------------------------------

/// The running binary; killed when dropped.
struct Lambda {
    child: Child,
    output: PathBuf,
    _dir: tempfile::TempDir,
}

impl Drop for Lambda {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Lambda {
    /// Peak resident memory so far (Linux `VmHWM`), in KiB.
    fn peak_rss_kib(&self) -> Option<u64> {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).ok()?;
        let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
        line.split_whitespace().nth(1)?.parse().ok()
    }

    fn output(&self) -> String {
        std::fs::read_to_string(&self.output).unwrap_or_default()
    }

    /// Waits (bounded) for the process to exit by itself.
    fn exit_status(&mut self) -> ExitStatus {
        let started = Instant::now();
        while started.elapsed() < PATIENCE {
            if let Some(status) = self.child.try_wait().expect("try_wait") {
                return status;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        panic!(
            "the function did not exit within {PATIENCE:?}: {}",
            self.output()
        );
    }
}

fn binary() -> PathBuf {
    std::env::var_os("TELEMETRY_LAMBDA_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_BIN_EXE_telemetry-lambda")))
}

/// Starts the binary with the environment Lambda and the Terraform give it, plus `extra`
/// (`(name, None)` removes a variable).
fn spawn_lambda(runtime: &RuntimeApi, table: &str, extra: &[(&str, Option<&str>)]) -> Lambda {
    let dir = tempfile::tempdir().expect("temporary directory");
    let output = dir.path().join("output.log");
    let log = std::fs::File::create(&output).expect("log file");
    let mut command = Command::new(binary());
    command.env_clear();
    for name in [
        "AWS_ENDPOINT_URL",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_REGION",
        "AWS_EC2_METADATA_DISABLED",
    ] {
        if let Some(value) = std::env::var_os(name) {
            command.env(name, value);
        }
    }
    let tokens = hashed_tokens();
    let mut vars: Vec<(&str, Option<&str>)> = vec![
        ("AWS_LAMBDA_RUNTIME_API", Some(runtime.address.as_str())),
        (
            "AWS_LAMBDA_FUNCTION_NAME",
            Some("telemetry-test-picus-delete"),
        ),
        ("AWS_LAMBDA_FUNCTION_MEMORY_SIZE", Some("256")),
        ("AWS_LAMBDA_FUNCTION_VERSION", Some("$LATEST")),
        ("STORAGE", Some("dynamodb")),
        ("TABLE_NAME", Some(table)),
        ("LOG_FORMAT", Some("json")),
        ("REQUIRE_AUTH", Some("true")),
        ("TRUST_X_FORWARDED_FOR", Some("true")),
        ("API_TOKENS", Some(tokens.as_str())),
    ];
    for (name, value) in extra {
        vars.retain(|(n, _)| n != name);
        vars.push((name, *value));
    }
    for (name, value) in vars {
        if let Some(value) = value {
            command.env(name, value);
        }
    }
    let child = command
        .stdin(Stdio::null())
        .stdout(log.try_clone().expect("log file"))
        .stderr(log)
        .spawn()
        .expect("the telemetry-lambda binary starts");
    Lambda {
        child,
        output,
        _dir: dir,
    }
}

// --- events --------------------------------------------------------------------------------

fn alb_event(method: &str, path: &str, authorization: Option<&str>) -> Value {
    let mut headers = json!({
        "host": "telemetry-alb-123.us-east-1.elb.amazonaws.com",
        "user-agent": "curl/8.5.0",
        "x-amzn-trace-id": "Root=1-5c536348-3d683b8b04734faae651f476",
        "x-forwarded-for": "203.0.113.7",
        "x-forwarded-port": "443",
        "x-forwarded-proto": "https"
    });
    if let Some(authorization) = authorization {
        headers["authorization"] = json!(authorization);
    }
    json!({
        "requestContext": {
            "elb": {
                "targetGroupArn": "arn:aws:elasticloadbalancing:us-east-1:123456789012:targetgroup/telemetry-fn/49e9d65c45c6791a"
            }
        },
        "httpMethod": method,
        "path": path,
        "queryStringParameters": {},
        "headers": headers,
        "body": "",
        "isBase64Encoded": false
    })
}

fn apigw_v2_event(method: &str, stage: &str, raw_path: &str, authorization: &str) -> Value {
    json!({
        "version": "2.0",
        "routeKey": "DELETE /picus/{key}",
        "rawPath": raw_path,
        "rawQueryString": "",
        "headers": {
            "authorization": authorization,
            "host": "abc123.execute-api.us-east-1.amazonaws.com",
            "user-agent": "curl/8.5.0",
            "x-forwarded-for": "198.51.100.9",
            "x-forwarded-port": "443",
            "x-forwarded-proto": "https"
        },
        "requestContext": {
            "accountId": "123456789012",
            "apiId": "abc123",
            "domainName": "abc123.execute-api.us-east-1.amazonaws.com",
            "domainPrefix": "abc123",
            "http": {
                "method": method,
                "path": raw_path,
                "protocol": "HTTP/1.1",
                "sourceIp": "198.51.100.9",
                "userAgent": "curl/8.5.0"
            },
            "requestId": "JKJaXmPLvHcESHA=",
            "routeKey": "DELETE /picus/{key}",
            "stage": stage,
            "time": "10/Mar/2026:00:03:16 +0000",
            "timeEpoch": 1_773_100_996_000_u64
        },
        "isBase64Encoded": false
    })
}

/// A header of an answer, whichever of `headers` / `multiValueHeaders` carries it.
fn header(answer: &Value, name: &str) -> Option<String> {
    if let Some(value) = answer["headers"][name].as_str() {
        return Some(value.to_owned());
    }
    answer["multiValueHeaders"][name][0]
        .as_str()
        .map(str::to_owned)
}

fn body(answer: &Value) -> Value {
    assert_ne!(answer["isBase64Encoded"], json!(true), "{answer}");
    let text = answer["body"].as_str().expect("a body");
    serde_json::from_str(text).unwrap_or_else(|_| panic!("a JSON body: {answer}"))
}

fn assert_deleted(answer: &Value) {
    assert_eq!(answer["statusCode"], json!(200), "{answer}");
    assert_eq!(
        header(answer, "content-type").as_deref(),
        Some("application/json")
    );
    assert_eq!(
        body(answer),
        json!({"message": "Item deleted successfully"})
    );
}

fn assert_problem(answer: &Value, status: u16) -> Value {
    assert_eq!(answer["statusCode"], json!(status), "{answer}");
    assert_eq!(
        header(answer, "content-type").as_deref(),
        Some("application/problem+json"),
        "{answer}"
    );
    let problem = body(answer);
    assert_eq!(problem["status"], json!(status), "{answer}");
    problem
}

// --- the tests -----------------------------------------------------------------------------

#[tokio::test]
async fn alb_and_api_gateway_events_delete_items_stored_by_the_service() {
    let store = dynamodb_store();
    let service = spawn_service(&store).await;
    let first = put_item(&service, &json!({"name": "first"})).await;
    let second = put_item(&service, &json!({"name": "second"})).await;
    let third = put_item(&service, &json!({"name": "third"})).await;
    let runtime = RuntimeApi::start().await;
    let lambda = spawn_lambda(&runtime, &store.table, &[]);

    // An ALB target-group event: the answer has the ALB's shape (statusDescription).
    let bearer = format!("Bearer {ADMIN}");
    let answer = runtime
        .invoke(&alb_event(
            "DELETE",
            &format!("/picus/{first}"),
            Some(&bearer),
        ))
        .await;
    assert_deleted(&answer);
    assert_eq!(answer["statusDescription"], json!("200 OK"), "{answer}");
    assert_eq!(item_status(&service, &first).await, StatusCode::NOT_FOUND);

    // An API Gateway HTTP API event on the $default stage, with the `Token` form.
    let answer = runtime
        .invoke(&apigw_v2_event(
            "DELETE",
            "$default",
            &format!("/picus/{second}"),
            &format!("Token {ADMIN}"),
        ))
        .await;
    assert_deleted(&answer);
    assert!(answer.get("statusDescription").is_none(), "{answer}");
    assert_eq!(item_status(&service, &second).await, StatusCode::NOT_FOUND);

    // A named stage prefixes rawPath with it.
    let answer = runtime
        .invoke(&apigw_v2_event(
            "DELETE",
            "prod",
            &format!("/prod/picus/{third}"),
            &bearer,
        ))
        .await;
    assert_deleted(&answer);
    assert_eq!(item_status(&service, &third).await, StatusCode::NOT_FOUND);

    // Deleting again: the item is gone, 404 as the service answers.
    let answer = runtime
        .invoke(&alb_event(
            "DELETE",
            &format!("/picus/{first}"),
            Some(&bearer),
        ))
        .await;
    let problem = assert_problem(&answer, 404);
    assert_eq!(problem["key"], json!(first));
    drop(lambda);
    service.stop().await;
}

#[tokio::test]
async fn unknown_and_malformed_keys_are_404_and_other_routes_405() {
    let store = dynamodb_store();
    let service = spawn_service(&store).await;
    let kept = put_item(&service, &json!({"keep": true})).await;
    let runtime = RuntimeApi::start().await;
    let _lambda = spawn_lambda(&runtime, &store.table, &[]);
    let bearer = format!("Bearer {ADMIN}");

    for key in ["987654321", "abc", "01", "0", "-1"] {
        let answer = runtime
            .invoke(&alb_event(
                "DELETE",
                &format!("/picus/{key}"),
                Some(&bearer),
            ))
            .await;
        let problem = assert_problem(&answer, 404);
        assert_eq!(problem["key"], json!(key), "{answer}");
    }
    for (method, path) in [
        ("GET", format!("/picus/{kept}")),
        ("POST", "/picus/put".to_owned()),
        ("DELETE", format!("/picus/get/{kept}")),
        ("DELETE", "/api/stats".to_owned()),
    ] {
        let answer = runtime
            .invoke(&alb_event(method, &path, Some(&bearer)))
            .await;
        assert_problem(&answer, 405);
        assert_eq!(
            header(&answer, "allow").as_deref(),
            Some("DELETE"),
            "{answer}"
        );
    }
    assert_eq!(item_status(&service, &kept).await, StatusCode::OK);
    service.stop().await;
}

#[tokio::test]
async fn a_missing_wrong_or_read_only_token_deletes_nothing() {
    let store = dynamodb_store();
    let service = spawn_service(&store).await;
    let id = put_item(&service, &json!({"guarded": true})).await;
    let runtime = RuntimeApi::start().await;
    let _lambda = spawn_lambda(&runtime, &store.table, &[]);
    let path = format!("/picus/{id}");

    let answer = runtime.invoke(&alb_event("DELETE", &path, None)).await;
    assert_problem(&answer, 401);
    assert_eq!(
        header(&answer, "www-authenticate").as_deref(),
        Some("Bearer realm=\"telemetry\"")
    );

    let answer = runtime
        .invoke(&alb_event(
            "DELETE",
            &path,
            Some("Bearer not-a-token-of-this-service"),
        ))
        .await;
    assert_problem(&answer, 401);
    assert_eq!(
        header(&answer, "www-authenticate").as_deref(),
        Some("Bearer realm=\"telemetry\", error=\"invalid_token\"")
    );
    // The digest itself is no token: only the secret it was computed from is.
    let answer = runtime
        .invoke(&alb_event(
            "DELETE",
            &path,
            Some(&format!("Bearer {}", sha256_hex(ADMIN))),
        ))
        .await;
    assert_problem(&answer, 401);

    let answer = runtime
        .invoke(&apigw_v2_event(
            "DELETE",
            "$default",
            &path,
            &format!("Bearer {READ}"),
        ))
        .await;
    let problem = assert_problem(&answer, 403);
    assert_eq!(problem["scope"], json!("admin"));
    let text = answer.to_string();
    assert!(!text.contains(READ) && !text.contains(ADMIN), "{text}");

    assert_eq!(item_status(&service, &id).await, StatusCode::OK);
    // The right token still works afterwards.
    let answer = runtime
        .invoke(&alb_event(
            "DELETE",
            &path,
            Some(&format!("Bearer {ADMIN}")),
        ))
        .await;
    assert_deleted(&answer);
    service.stop().await;
}

#[tokio::test]
async fn a_malformed_event_is_an_invocation_error_and_the_function_keeps_serving() {
    let store = dynamodb_store();
    let service = spawn_service(&store).await;
    let id = put_item(&service, &json!({"after": "the bad events"})).await;
    let runtime = RuntimeApi::start().await;
    let lambda = spawn_lambda(&runtime, &store.table, &[]);

    for event in [
        "this is not JSON".to_owned(),
        json!({"hello": "world"}).to_string(),
        json!({"Records": [{"eventSource": "aws:sqs"}]}).to_string(),
    ] {
        match runtime.invoke_raw(event.clone()).await {
            Posted::Error(error) => {
                assert!(error["errorType"].is_string(), "{error}");
                assert!(error["errorMessage"].is_string(), "{error}");
            }
            other => panic!("{event}: expected an invocation error, got {other:?}"),
        }
    }
    let answer = runtime
        .invoke(&alb_event(
            "DELETE",
            &format!("/picus/{id}"),
            Some(&format!("Bearer {ADMIN}")),
        ))
        .await;
    assert_deleted(&answer);
    assert!(
        lambda.output().contains("\"status\":200"),
        "{}",
        lambda.output()
    );
    service.stop().await;
}

#[tokio::test]
async fn without_an_admin_token_or_dynamodb_the_function_does_not_start() {
    let store = dynamodb_store();
    let runtime = RuntimeApi::start().await;
    for (extra, expected) in [
        (
            vec![("API_TOKENS", None), ("REQUIRE_AUTH", None)],
            "API_TOKENS",
        ),
        (vec![("STORAGE", Some("embedded"))], "STORAGE=dynamodb"),
        (vec![("TABLE_NAME", None)], "TABLE_NAME"),
    ] {
        let mut lambda = spawn_lambda(&runtime, &store.table, &extra);
        let status = lambda.exit_status();
        assert_eq!(status.code(), Some(2), "{extra:?}: {}", lambda.output());
        assert!(
            lambda.output().contains(expected),
            "{extra:?}: {}",
            lambda.output()
        );
    }
}

/// Not a test: the cold-start figure of BENCHMARKS.md. Each run starts the binary and times
/// process start to the first answer posted back (a real `DeleteItem` on DynamoDB Local).
/// `TELEMETRY_LAMBDA_BIN=target/release/telemetry-lambda scripts/lambda-tests.sh --ignored
/// --nocapture cold_start`.
#[tokio::test]
#[ignore = "a measurement, run by hand for BENCHMARKS.md"]
async fn cold_start() {
    let store = dynamodb_store();
    let service = spawn_service(&store).await;
    let mut samples = Vec::new();
    let mut peaks = Vec::new();
    for _ in 0..7 {
        let id = put_item(&service, &json!({"cold": true})).await;
        let runtime = RuntimeApi::start().await;
        let event = alb_event(
            "DELETE",
            &format!("/picus/{id}"),
            Some(&format!("Bearer {ADMIN}")),
        );
        let started = Instant::now();
        let lambda = spawn_lambda(&runtime, &store.table, &[]);
        let answer = runtime.invoke(&event).await;
        samples.push(started.elapsed());
        assert_deleted(&answer);
        peaks.extend(lambda.peak_rss_kib());
    }
    samples.sort();
    peaks.sort_unstable();
    println!(
        "cold start to first answer over {} runs: median {:?}, min {:?}, max {:?}; peak RSS \
         after the first answer: median {} KiB ({})",
        samples.len(),
        samples[samples.len() / 2],
        samples[0],
        samples[samples.len() - 1],
        peaks.get(peaks.len() / 2).copied().unwrap_or(0),
        binary().display()
    );
    service.stop().await;
}
