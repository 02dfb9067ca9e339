//! Pick-up latency benchmark: from an atomic save (the rename) to the new ETag being served.
//!
//! Run: `cargo run --release --example reload_latency -- [SAVES]` (default 300).
//!
//! Starts the real service in this process on 127.0.0.1:0 (plain HTTP, so that the figure is
//! the reload path, not TLS), then for each save writes a temporary file, renames it over
//! `message.json`, and polls on one keep-alive connection until the answer carries a new
//! ETag. Prints p50 / p90 / p99 / max over all saves.

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::rt::TokioIo;
use tokio::sync::Notify;
use v8help::config::ServeConfig;
use v8help::service::Service;
use v8help::time::Zone;

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let saves: usize = std::env::args().nth(1).map(|s| s.parse()).transpose()?.unwrap_or(300);
    let dir = tempfile::tempdir()?;
    let message = dir.path().join("message.json");
    std::fs::write(&message, doc(0))?;
    let config = ServeConfig {
        listen: "127.0.0.1:0".parse()?,
        http_listen: Some("127.0.0.1:0".parse()?),
        message: message.clone(),
        zone: Zone::UTC,
        ..ServeConfig::default()
    };
    let server = Service::bind(config)?;
    let addr = server.http_addr().ok_or("no plain-HTTP listener")?;
    tokio::spawn(server.run(Arc::new(Notify::new()), std::future::pending()));

    let io = TokioIo::new(tokio::net::TcpStream::connect(addr).await?);
    let (mut sender, conn) = hyper::client::conn::http1::handshake(io).await?;
    tokio::spawn(conn);
    let mut etag = current_etag(&mut sender).await?;

    let mut samples = Vec::with_capacity(saves);
    for i in 1..=saves {
        let tmp = dir.path().join(".message.json.tmp");
        std::fs::write(&tmp, doc(i))?;
        let renamed = Instant::now();
        std::fs::rename(&tmp, &message)?;
        loop {
            let now = current_etag(&mut sender).await?;
            if now != etag {
                samples.push(renamed.elapsed());
                etag = now;
                break;
            }
            if renamed.elapsed() > Duration::from_secs(5) {
                return Err(format!("save {i} was not served within 5 s").into());
            }
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    samples.sort();
    let pick = |q: f64| samples[((samples.len() as f64 * q).ceil() as usize).clamp(1, samples.len()) - 1];
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "pick-up latency over {} atomic saves: p50 {:.2} ms, p90 {:.2} ms, p99 {:.2} ms, max {:.2} ms",
        samples.len(),
        ms(pick(0.50)),
        ms(pick(0.90)),
        ms(pick(0.99)),
        ms(samples[samples.len() - 1])
    );
    Ok(())
}

fn doc(i: usize) -> String {
    format!(r#"{{"userMessage":"Работы, версия {i}","expires":"2099-01-01T00:00:00Z"}}"#)
}

async fn current_etag(
    sender: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
) -> Result<String, Box<dyn std::error::Error>> {
    let req = http::Request::get("/")
        .header("host", "127.0.0.1")
        .body(Full::new(Bytes::new()))?;
    sender.ready().await?;
    let response = sender.send_request(req).await?;
    let etag = response.headers().get("etag").ok_or("no ETag")?.to_str()?.to_string();
    response.into_body().collect().await?;
    Ok(etag)
}
