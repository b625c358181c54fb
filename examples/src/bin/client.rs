//! Run with
//! ```sh
//! APP_URL=http://127.0.0.1:3000 cargo run -p examples --bin client -- "Q3 revenue"
//! APP_URL=http://127.0.0.1:3000 cargo run -p examples --bin client -- --flaky
//! ```
//!
//! The client: asks the web process for a report, then follows its status URL to the end.
//! Usage: `client [--flaky] [--pages N] [TITLE]`, or `client --follow STATUS_URL` to follow
//! a job enqueued elsewhere. Environment: `APP_URL` (default `http://127.0.0.1:3000`; plain
//! HTTP only).
//!
//! It posts the request, reads `Location` from the `202`, then long-polls that URL
//! (`?wait=20&rev=N`, under the platform router's 30 s) and draws a progress bar with the job's
//! message on a terminal (one line per change otherwise). On `succeeded` it prints the
//! result and exits 0; on `dead` or `cancelled` it prints the error and exits 1; on a
//! usage or HTTP problem it exits 2.

use indicatif::{ProgressBar, ProgressStyle};
use reqwest::{StatusCode, Url};
use serde_json::{Value, json};
use std::io::IsTerminal;
use std::process::ExitCode;
use std::time::Duration;

/// Where the web process listens when `APP_URL` is unset (`script/demo` sets it).
const DEFAULT_APP_URL: &str = "http://127.0.0.1:3000";
/// Seconds of each long poll: the server caps it at 20 (`queue_web::MAX_WAIT`).
const LONG_POLL_SECS: u64 = 20;
/// Bound of one HTTP request: a long poll plus the server's own margins.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(LONG_POLL_SECS + 10);
/// Consecutive failed polls (network errors, 5xx) after which the client gives up.
const MAX_POLL_FAILURES: u32 = 30;

/// What to ask for.
#[derive(Debug)]
struct Args {
    follow: Option<String>,
    flaky: bool,
    title: String,
    pages: Option<u32>,
}

const USAGE: &str =
    "usage: client [--flaky] [--pages N] [TITLE]   (APP_URL, default http://127.0.0.1:3000)";

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        follow: None,
        flaky: false,
        title: String::new(),
        pages: None,
    };
    let mut words = Vec::new();
    let mut it = std::env::args().skip(1);
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "-h" | "--help" => return Err(USAGE.to_owned()),
            "--flaky" => args.flaky = true,
            "--follow" => args.follow = Some(it.next().ok_or("--follow needs a status URL")?),
            "--pages" => {
                let n = it.next().and_then(|n| n.parse().ok());
                args.pages = Some(n.ok_or("--pages needs a number")?);
            }
            other if other.starts_with('-') => {
                return Err(format!("unknown option {other}\n{USAGE}"));
            }
            other => words.push(other.to_owned()),
        }
    }
    args.title = if words.is_empty() {
        "Q3".to_owned()
    } else {
        words.join(" ")
    };
    Ok(args)
}

/// Why the client stopped before a terminal state.
enum Stop {
    /// The job ended badly (`dead` or `cancelled`): exit 1.
    JobFailed(String),
    /// Usage, HTTP or network trouble: exit 2.
    Trouble(String),
}

#[tokio::main]
async fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("{e}");
            return ExitCode::from(2);
        }
    };
    match run(args).await {
        Ok(()) => ExitCode::SUCCESS,
        Err(Stop::JobFailed(e)) => {
            eprintln!("job failed: {e}");
            ExitCode::from(1)
        }
        Err(Stop::Trouble(e)) => {
            eprintln!("error: {e}");
            ExitCode::from(2)
        }
    }
}

async fn run(args: Args) -> Result<(), Stop> {
    let app = std::env::var("APP_URL").unwrap_or_else(|_| DEFAULT_APP_URL.to_owned());
    let app = Url::parse(&app).map_err(|e| Stop::Trouble(format!("APP_URL {app:?}: {e}")))?;
    let http = reqwest::Client::builder()
        .timeout(REQUEST_TIMEOUT)
        .build()
        .map_err(|e| Stop::Trouble(format!("HTTP client: {e}")))?;

    let status_url = match &args.follow {
        // A relative status URL (`/jobs/<id>`, as in `Location`) is resolved against APP_URL.
        Some(url) => app
            .join(url)
            .map_err(|e| Stop::Trouble(format!("status URL {url:?}: {e}")))?,
        None => {
            let (path, body) = if args.flaky {
                ("/flaky", json!({ "label": args.title }))
            } else {
                let body = json!({ "title": args.title, "pages": args.pages });
                ("/reports", body)
            };
            let status_url = submit(&http, &app, path, &body).await?;
            println!("POST {path} -> 202 Accepted, status at {status_url}");
            status_url
        }
    };

    let final_status = follow(&http, &status_url).await?;
    let state = final_status["state"].as_str().unwrap_or_default();
    if state != "succeeded" {
        let error = final_status["error"]
            .as_str()
            .unwrap_or("no error recorded");
        return Err(Stop::JobFailed(format!("{state}: {error}")));
    }
    let attempt = final_status["attempt"].as_u64().unwrap_or(0);
    println!("succeeded on attempt {attempt}; result:");
    // The result is the job's JSON: print its text for people, then the rest as JSON.
    let mut result = final_status["result"].clone();
    if let Some(text) = result.as_object_mut().and_then(|r| r.remove("text")) {
        println!("{}", text.as_str().unwrap_or_default());
    }
    println!("{}", result.get("summary").unwrap_or(&result));
    Ok(())
}

/// Posts `body` to `path` and returns the absolute status URL from the `202`'s `Location`.
async fn submit(http: &reqwest::Client, app: &Url, path: &str, body: &Value) -> Result<Url, Stop> {
    let url = app.join(path).map_err(|e| Stop::Trouble(e.to_string()))?;
    let response = http
        .post(url.clone())
        .json(body)
        .send()
        .await
        .map_err(|e| Stop::Trouble(format!("POST {url}: {e} (is the web process running?)")))?;
    let status = response.status();
    if status != StatusCode::ACCEPTED {
        let text = response.text().await.unwrap_or_default();
        return Err(Stop::Trouble(format!("POST {url}: {status} {text}")));
    }
    let location = response
        .headers()
        .get(reqwest::header::LOCATION)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| Stop::Trouble("202 without a Location header".to_owned()))?;
    // `Location` may be relative (`/jobs/<id>`): resolve it against the app's URL.
    app.join(location)
        .map_err(|e| Stop::Trouble(format!("Location {location:?}: {e}")))
}

/// Long-polls `status_url` until the job reaches a terminal state; returns that answer.
async fn follow(http: &reqwest::Client, status_url: &Url) -> Result<Value, Stop> {
    let mut view = View::new();
    let mut failures = 0;
    // The first read answers at once (so "queued" shows); later ones pass the last `rev`
    // seen, so the server answers as soon as anything changed since, and holds the request
    // until then otherwise: no state between two polls is missed.
    let mut url = status_url.clone();
    loop {
        let retry_in = match http.get(url.clone()).send().await {
            Ok(response) if response.status() == StatusCode::OK => {
                let body: Value = response
                    .json()
                    .await
                    .map_err(|e| Stop::Trouble(format!("status answer is not JSON: {e}")))?;
                failures = 0;
                url = status_url.clone();
                url.query_pairs_mut()
                    .append_pair("wait", &LONG_POLL_SECS.to_string())
                    .append_pair("rev", &body["rev"].as_u64().unwrap_or(0).to_string());
                view.show(&body);
                if matches!(
                    body["state"].as_str(),
                    Some("succeeded" | "dead" | "cancelled")
                ) {
                    view.finish(&body);
                    return Ok(body);
                }
                continue;
            }
            Ok(response) if response.status() == StatusCode::NOT_FOUND => {
                view.abandon();
                return Err(Stop::Trouble(format!(
                    "{status_url}: 404, no such job (unknown, or its record expired)"
                )));
            }
            Ok(response) => {
                let status = response.status();
                let after = response
                    .headers()
                    .get(reqwest::header::RETRY_AFTER)
                    .and_then(|v| v.to_str().ok())
                    .and_then(|v| v.parse::<u64>().ok())
                    .unwrap_or(1);
                view.note(&format!(
                    "status URL answered {status}; trying again in {after} s"
                ));
                Duration::from_secs(after.clamp(1, 30))
            }
            Err(e) => {
                view.note(&format!(
                    "status URL unreachable ({e}); trying again in 1 s"
                ));
                Duration::from_secs(1)
            }
        };
        failures += 1;
        if failures >= MAX_POLL_FAILURES {
            view.abandon();
            return Err(Stop::Trouble(format!(
                "gave up after {failures} failed polls of {status_url}"
            )));
        }
        // Back off before retrying a failed poll (a successful one goes round at once: the
        // server itself holds it until something changes).
        tokio::time::sleep(retry_in).await;
    }
}

/// What the user sees: a progress bar on a terminal, one line per change otherwise.
struct View {
    bar: Option<ProgressBar>,
    last_state: String,
    last_line: String,
}

impl View {
    fn new() -> Self {
        let bar = std::io::stderr().is_terminal().then(|| {
            let bar = ProgressBar::new(100);
            let style = ProgressStyle::with_template(
                "{spinner:.green} [{elapsed_precise}] [{bar:40.cyan/blue}] {pos:>3}% {msg}",
            )
            .unwrap_or_else(|_| ProgressStyle::default_bar())
            .progress_chars("=> ");
            bar.set_style(style);
            bar.enable_steady_tick(Duration::from_millis(120));
            bar
        });
        Self {
            bar,
            last_state: String::new(),
            last_line: String::new(),
        }
    }

    /// Shows one status answer: state changes as lines, progress on the bar.
    fn show(&mut self, status: &Value) {
        let state = status["state"].as_str().unwrap_or("unknown").to_owned();
        let attempt = status["attempt"].as_u64().unwrap_or(0);
        let percent = status["progress"]["percent"].as_u64().unwrap_or(0);
        let message = status["progress"]["message"].as_str().unwrap_or("");
        if state != self.last_state {
            let line = match state.as_str() {
                "running" => format!("running (attempt {attempt})"),
                "retrying" => format!(
                    "attempt {attempt} failed: {}; retrying",
                    status["error"].as_str().unwrap_or("unknown error")
                ),
                other => other.to_owned(),
            };
            self.note(&format!("state: {line}"));
            self.last_state.clone_from(&state);
        }
        let text = if message.is_empty() {
            state.clone()
        } else {
            format!("{state}: {message}")
        };
        match &self.bar {
            Some(bar) => {
                bar.set_position(percent.min(100));
                bar.set_message(text);
            }
            // A terminal state has already been printed as a state line.
            None if matches!(state.as_str(), "succeeded" | "dead" | "cancelled") => {}
            None => {
                let line = format!("[{percent:>3}%] {text}");
                if line != self.last_line {
                    eprintln!("{line}");
                    self.last_line = line;
                }
            }
        }
    }

    /// Prints a line above the bar (or just a line).
    fn note(&self, line: &str) {
        match &self.bar {
            Some(bar) => bar.println(line),
            None => eprintln!("{line}"),
        }
    }

    /// Leaves the bar full on success, where it stopped otherwise.
    fn finish(&self, status: &Value) {
        if let Some(bar) = &self.bar {
            if status["state"] == "succeeded" {
                bar.set_position(100);
                bar.finish_with_message("succeeded");
            } else {
                bar.abandon();
            }
        }
    }

    fn abandon(&self) {
        if let Some(bar) = &self.bar {
            bar.abandon();
        }
    }
}
