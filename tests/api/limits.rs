//! Connection limits, black box, over raw TCP: slow and idle clients are cut off while normal
//! requests are answered, slow bodies are refused, early answers reach clients that send
//! their whole body first, header counts are bounded, HTTP/2 cleartext is off.
//!
//! Every wait is bounded; the assertions are on what happened, never on how fast.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

use crate::helpers::{TestApp, TestStore, reading, spawn_app, spawn_app_with};

/// Waits (at most `within`) for the server to close `stream`; true when it did.
async fn closed_by_server(stream: &mut TcpStream, within: Duration) -> bool {
    let mut buf = [0u8; 4096];
    let deadline = tokio::time::Instant::now() + within;
    loop {
        match tokio::time::timeout_at(deadline, stream.read(&mut buf)).await {
            Err(_) => return false,
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue, // an answer (408...) before the close
        }
    }
}

async fn connect(app: &TestApp) -> TcpStream {
    TcpStream::connect(("127.0.0.1", app.port))
        .await
        .expect("connects")
}

/// Reads one HTTP/1.1 answer's status line and headers.
async fn read_head(stream: &mut TcpStream, within: Duration) -> String {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    let read = async {
        while !head.ends_with(b"\r\n\r\n") {
            match stream.read(&mut byte).await {
                Ok(1) => head.push(byte[0]),
                _ => break,
            }
        }
    };
    let _ = tokio::time::timeout(within, read).await;
    String::from_utf8_lossy(&head).into_owned()
}

fn short_timeouts(store: &TestStore) -> telemetry::config::Config {
    let mut config = store.config();
    config.header_read_timeout_seconds = 1;
    config.idle_timeout_seconds = 2;
    config.body_read_timeout_seconds = 2;
    config
}

#[tokio::test]
async fn slowloris_connections_are_closed_and_normal_requests_are_answered() {
    let store = TestStore::new();
    let app = spawn_app_with(short_timeouts(&store)).await;
    // 300 clients that start a request head and then send a byte now and then.
    let mut slow = Vec::new();
    for _ in 0..300 {
        let mut stream = connect(&app).await;
        stream
            .write_all(b"GET /api HTTP/1.1\r\nHost: x\r\nX-Slow: ")
            .await
            .unwrap();
        slow.push(stream);
    }
    let dribble = async {
        for _ in 0..4 {
            tokio::time::sleep(Duration::from_millis(400)).await;
            for stream in &mut slow {
                let _ = stream.write_all(b"a").await;
            }
        }
    };
    let normal = async {
        for second in 0..10 {
            let response = app.get("/api").await;
            assert_eq!(response.status(), StatusCode::OK);
            app.put_ok(&reading(
                "normal",
                &format!("2021-10-04 09:00:0{second}"),
                1.0,
            ))
            .await;
        }
    };
    tokio::join!(dribble, normal);
    let mut closed = 0;
    for stream in &mut slow {
        if closed_by_server(stream, Duration::from_secs(10)).await {
            closed += 1;
        }
    }
    assert_eq!(closed, 300, "every slow head is cut off");
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l == "telemetry_connections_closed_total{reason=\"header_timeout\"} 300"),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn an_idle_keep_alive_connection_is_closed_after_the_idle_timeout() {
    let store = TestStore::new();
    let app = spawn_app_with(short_timeouts(&store)).await;
    let mut stream = connect(&app).await;
    stream
        .write_all(b"GET /api HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let head = read_head(&mut stream, Duration::from_secs(5)).await;
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    assert!(
        closed_by_server(&mut stream, Duration::from_secs(10)).await,
        "the idle connection stays open"
    );
    let metrics = app.get("/metrics").await.text().await.unwrap();
    assert!(
        metrics
            .lines()
            .any(|l| l.starts_with("telemetry_connections_closed_total{reason=\"idle\"}")),
        "{metrics}"
    );
    app.stop().await;
}

#[tokio::test]
async fn a_body_sent_a_byte_at_a_time_is_cut_off_with_408() {
    let store = TestStore::new();
    let app = spawn_app_with(short_timeouts(&store)).await;
    let stream = connect(&app).await;
    let (mut reader, mut writer) = stream.into_split();
    writer
        .write_all(
            b"PUT /api/temperature HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
              Content-Length: 1048576\r\n\r\n",
        )
        .await
        .unwrap();
    // One byte every 100 ms, for at most 10 s (the limit is 2 s).
    let dribble = tokio::spawn(async move {
        for _ in 0..100 {
            if writer.write_all(b" ").await.is_err() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    });
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(15), reader.read_to_end(&mut answer)).await;
    dribble.abort();
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("application/problem+json"), "{answer}");
    app.stop().await;
}

/// A plain client, like Python's `http.client` or a sensor's stack: no `Expect:
/// 100-continue`, the whole body written before the answer is read.
fn send_whole_body_then_read(port: u16, body_bytes: usize) -> std::io::Result<String> {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(20)))?;
    stream.set_write_timeout(Some(Duration::from_secs(20)))?;
    let head = format!(
        "PUT /api/temperature HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {body_bytes}\r\n\r\n"
    );
    stream.write_all(head.as_bytes())?;
    let chunk = vec![b' '; 64 * 1024];
    let mut left = body_bytes;
    while left > 0 {
        let n = left.min(chunk.len());
        stream.write_all(&chunk[..n])?;
        left -= n;
    }
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer)?;
    Ok(String::from_utf8_lossy(&answer).into_owned())
}

#[tokio::test]
async fn a_client_that_sends_its_whole_oversized_body_first_reads_the_413() {
    let (app, _store) = spawn_app().await;
    let port = app.port;
    let outcomes = tokio::task::spawn_blocking(move || {
        (0..50)
            .map(|_| send_whole_body_then_read(port, 3 * 1024 * 1024))
            .collect::<Vec<_>>()
    })
    .await
    .unwrap();
    let got_413 = outcomes
        .iter()
        .filter(|o| o.as_ref().is_ok_and(|a| a.starts_with("HTTP/1.1 413")))
        .count();
    let failures: Vec<_> = outcomes.iter().filter(|o| o.is_err()).take(3).collect();
    assert_eq!(got_413, 50, "first failures: {failures:?}");
    app.stop().await;
}

#[tokio::test]
async fn header_lines_are_bounded() {
    let (app, _store) = spawn_app().await;
    let request_with = |count: usize| {
        let mut request = String::from("GET /api HTTP/1.1\r\nHost: x\r\n");
        for i in 0..count {
            request.push_str(&format!("X-Header-{i}: {i}\r\n"));
        }
        request.push_str("Connection: close\r\n\r\n");
        request
    };
    for (count, expected) in [(100, "HTTP/1.1 200"), (200, "HTTP/1.1 431")] {
        let mut stream = connect(&app).await;
        stream
            .write_all(request_with(count).as_bytes())
            .await
            .unwrap();
        let head = read_head(&mut stream, Duration::from_secs(5)).await;
        assert!(head.starts_with(expected), "{count} headers: {head}");
    }
    app.stop().await;
}

#[tokio::test]
async fn http2_cleartext_is_off_by_default() {
    let (app, _store) = spawn_app().await;
    let mut stream = connect(&app).await;
    // The HTTP/2 connection preface (prior knowledge), then an empty SETTINGS frame.
    stream
        .write_all(b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n\x00\x00\x00\x04\x00\x00\x00\x00\x00")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(5), stream.read_to_end(&mut answer)).await;
    // An HTTP/2 server answers with a SETTINGS frame (type 4 in the 4th byte).
    let is_http2 = answer.len() >= 9 && answer[3] == 4;
    assert!(!is_http2, "HTTP/2 answered: {answer:?}");
    app.stop().await;
}
