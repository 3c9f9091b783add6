//! The admin API's command-line client: `waterspout deploy NAME FILE.wasm`,
//! `handlers`, `versions NAME`, `activate NAME VERSION`, `rollback NAME`.
//!
//! Errors say what to do: a refused connection asks whether the server runs
//! with an admin token, a 401 says the token is wrong or missing, and a
//! refused component shows the server's reason.

use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context as _, anyhow};
use bytes::Bytes;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::Value;

/// Where the admin API is and how to authenticate (shared by every command).
#[derive(Debug, Clone, clap::Args)]
pub struct AdminArgs {
    /// The admin API's URL.
    #[arg(long, env = "WATERSPOUT_ADMIN_URL", default_value = "http://127.0.0.1:8889")]
    pub server: String,
    /// The admin token (the server's --admin-token).
    #[arg(long, env = "WATERSPOUT_ADMIN_TOKEN", hide_env_values = true)]
    pub token: Option<String>,
}

/// A client of the admin API.
pub struct AdminClient {
    base: String,
    token: Option<String>,
    http: reqwest::Client,
}

impl AdminClient {
    pub fn new(args: &AdminArgs) -> anyhow::Result<Self> {
        let base = args.server.trim_end_matches('/').to_owned();
        if !base.starts_with("http://") && !base.starts_with("https://") {
            anyhow::bail!("--server {base:?} is not a URL: expected something like http://127.0.0.1:8889");
        }
        Ok(AdminClient {
            base,
            token: args.token.clone().filter(|t| !t.trim().is_empty()),
            http: reqwest::Client::builder()
                .connect_timeout(Duration::from_secs(5))
                .build()?,
        })
    }

    fn request(&self, method: reqwest::Method, path: &str) -> reqwest::RequestBuilder {
        let builder = self.http.request(method, format!("{}{path}", self.base));
        match &self.token {
            Some(token) => builder.bearer_auth(token),
            None => builder,
        }
    }

    /// Sends, and turns every failure into a message a person can act on.
    async fn send(&self, builder: reqwest::RequestBuilder) -> anyhow::Result<Value> {
        let response = builder.send().await.map_err(|e| self.transport_error(e))?;
        let status = response.status();
        let text = response.text().await.map_err(|e| self.transport_error(e))?;
        let body: Value = serde_json::from_str(&text).unwrap_or(Value::Null);
        if status.is_success() {
            return Ok(body);
        }
        let message = body
            .get("error")
            .and_then(Value::as_str)
            .map(str::to_owned)
            .unwrap_or_else(|| text.trim().chars().take(500).collect());
        if status == reqwest::StatusCode::UNAUTHORIZED {
            let hint = if self.token.is_none() {
                "no token given: pass --token or set WATERSPOUT_ADMIN_TOKEN to the server's admin token"
            } else {
                "wrong token: use the one the server was started with (--admin-token / WATERSPOUT_ADMIN_TOKEN)"
            };
            return Err(anyhow!(
                "the admin API refused the request: wrong or missing token ({hint})"
            ));
        }
        Err(anyhow!(
            "the server refused: {message} (HTTP {})",
            status.as_u16()
        ))
    }

    fn transport_error(&self, e: reqwest::Error) -> anyhow::Error {
        if e.is_connect() {
            anyhow!(
                "cannot connect to the admin API at {}: is the server running with an admin token? \
                 Start it with `waterspout serve APP --admin-token TOKEN` (or WATERSPOUT_ADMIN_TOKEN set); \
                 the admin API listens on 127.0.0.1:8889 unless moved with --admin-listen, in which case pass --server",
                self.base
            )
        } else if e.is_timeout() {
            anyhow!("the admin API at {} did not answer in time: {e}", self.base)
        } else {
            anyhow!("talking to the admin API at {}: {e}", self.base)
        }
    }
}

/// `waterspout deploy NAME FILE.wasm`: uploads with a progress bar, then a
/// spinner while the server validates and compiles.
pub async fn deploy(args: &AdminArgs, name: &str, file: &PathBuf, activate: bool) -> anyhow::Result<()> {
    let client = AdminClient::new(args)?;
    let bytes = Bytes::from(std::fs::read(file).with_context(|| format!("cannot read {}", file.display()))?);
    let total = bytes.len() as u64;
    let bar = ProgressBar::new(total);
    bar.set_style(
        ProgressStyle::with_template("{msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec}")
            .expect("valid template")
            .progress_chars("=> "),
    );
    bar.set_message(format!("uploading {}", file.display()));
    const CHUNK: usize = 64 << 10;
    let chunks: Vec<Bytes> = (0..bytes.len())
        .step_by(CHUNK)
        .map(|at| bytes.slice(at..(at + CHUNK).min(bytes.len())))
        .collect();
    let progress = bar.clone();
    let stream = futures_util::stream::iter(chunks).map(move |chunk| {
        progress.inc(chunk.len() as u64);
        if progress.position() >= total {
            progress.set_style(
                ProgressStyle::with_template("{spinner} {msg} {elapsed}").expect("valid template"),
            );
            progress.set_message("uploaded; the server is validating and compiling");
            progress.enable_steady_tick(Duration::from_millis(100));
        }
        Ok::<_, std::io::Error>(chunk)
    });
    let query = if activate { "" } else { "?activate=false" };
    let request = client
        .request(
            reqwest::Method::POST,
            &format!("/handlers/{name}/versions{query}"),
        )
        .header(reqwest::header::CONTENT_TYPE, "application/wasm")
        .header(reqwest::header::CONTENT_LENGTH, total)
        .body(reqwest::Body::wrap_stream(stream));
    let result = client.send(request).await;
    bar.finish_and_clear();
    let info = result?;
    let version = info["version"].as_u64().unwrap_or(0);
    let compile = info["compile_ms"].as_f64().unwrap_or(0.0);
    println!(
        "deployed {name} version {version} (sha256 {}…, {}, validated and compiled in {compile:.0} ms)",
        info["sha256"].as_str().unwrap_or("").get(..12).unwrap_or(""),
        human_size(info["size"].as_u64().unwrap_or(0)),
    );
    if info["active"].as_bool() == Some(true) {
        println!("version {version} is active: new requests to {name} get it");
    } else {
        println!("stored, not active; activate it with `waterspout activate {name} {version}`");
    }
    Ok(())
}

use futures_util::StreamExt as _;

/// `waterspout handlers`.
pub async fn handlers(args: &AdminArgs, raw: bool) -> anyhow::Result<()> {
    let client = AdminClient::new(args)?;
    let body = client
        .send(client.request(reqwest::Method::GET, "/handlers"))
        .await?;
    if raw {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = body["handlers"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|h| {
            vec![
                str_of(&h["name"]),
                h["active_version"].to_string(),
                str_of(&h["world"]),
                human_size(h["size"].as_u64().unwrap_or(0)),
                str_of(&h["sha256"]).chars().take(12).collect(),
                str_of(&h["uploaded_at"]),
                h["routes"]
                    .as_array()
                    .map(|r| r.iter().map(str_of).collect::<Vec<_>>().join(" "))
                    .unwrap_or_default(),
            ]
        })
        .collect();
    print_table(
        &["NAME", "ACTIVE", "WORLD", "SIZE", "SHA256", "UPLOADED", "ROUTES"],
        &rows,
    );
    Ok(())
}

/// `waterspout versions NAME`.
pub async fn versions(args: &AdminArgs, name: &str, raw: bool) -> anyhow::Result<()> {
    let client = AdminClient::new(args)?;
    let body = client
        .send(client.request(reqwest::Method::GET, &format!("/handlers/{name}/versions")))
        .await?;
    if raw {
        println!("{}", serde_json::to_string_pretty(&body)?);
        return Ok(());
    }
    let rows: Vec<Vec<String>> = body["versions"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|v| {
            vec![
                v["version"].to_string(),
                if v["active"].as_bool() == Some(true) {
                    "*".into()
                } else {
                    String::new()
                },
                human_size(v["size"].as_u64().unwrap_or(0)),
                str_of(&v["sha256"]).chars().take(12).collect(),
                str_of(&v["uploaded_at"]),
                str_of(&v["source"]),
            ]
        })
        .collect();
    print_table(
        &["VERSION", "ACTIVE", "SIZE", "SHA256", "UPLOADED", "SOURCE"],
        &rows,
    );
    Ok(())
}

/// `waterspout rollback NAME`.
pub async fn rollback(args: &AdminArgs, name: &str) -> anyhow::Result<()> {
    let client = AdminClient::new(args)?;
    let info = client
        .send(client.request(reqwest::Method::POST, &format!("/handlers/{name}/rollback")))
        .await?;
    println!("rolled {name} back: version {} is active", info["version"]);
    Ok(())
}

/// `waterspout activate NAME VERSION`.
pub async fn activate(args: &AdminArgs, name: &str, version: u64) -> anyhow::Result<()> {
    let client = AdminClient::new(args)?;
    client
        .send(client.request(
            reqwest::Method::POST,
            &format!("/handlers/{name}/versions/{version}/activate"),
        ))
        .await?;
    println!("version {version} of {name} is active");
    Ok(())
}

fn str_of(v: &Value) -> String {
    v.as_str().map(str::to_owned).unwrap_or_else(|| v.to_string())
}

fn human_size(bytes: u64) -> String {
    match bytes {
        b if b >= 1 << 20 => format!("{:.1} MiB", b as f64 / (1 << 20) as f64),
        b if b >= 1 << 10 => format!("{:.1} KiB", b as f64 / (1 << 10) as f64),
        b => format!("{b} B"),
    }
}

fn print_table(headers: &[&str], rows: &[Vec<String>]) {
    let mut widths: Vec<usize> = headers.iter().map(|h| h.len()).collect();
    for row in rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let line = |cells: Vec<&str>| {
        let text: Vec<String> = cells
            .iter()
            .zip(&widths)
            .map(|(c, w)| format!("{c:<w$}"))
            .collect();
        println!("{}", text.join("  ").trim_end());
    };
    line(headers.to_vec());
    for row in rows {
        line(row.iter().map(String::as_str).collect());
    }
}
