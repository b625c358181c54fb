//! The subcommands: each reads through `queue_core::Inspector` or acts through its verbs, the
//! same script wrappers the dashboard and the workers use.

use clap::{Subcommand, ValueEnum};
use queue_core::inspect::{Acted, Entry, JobSet, Location, Page, ScoredEntry};
use queue_core::{Client, Inspector, JobId, Timestamp};
use serde_json::{Value, json};

use crate::table::Table;

/// What a command did.
#[derive(Debug)]
pub(crate) enum Done {
    Yes,
    /// Nothing to do, or nothing found: the reason, for stderr (exit status 1).
    Nothing(String),
}

/// The subcommands.
#[derive(Debug, Subcommand)]
pub(crate) enum Command {
    /// Totals, set sizes, processes, busy jobs and the longest queue latency.
    Stats,
    /// Every queue with its size, latency and whether it is paused.
    Queues,
    /// Worker processes: identity, queues, concurrency, busy, quiet, last beat.
    Processes,
    /// One page of a set, or of a queue (`ls queue NAME`), newest first.
    Ls {
        /// What to list.
        what: Listable,
        /// The queue, for `ls queue`.
        name: Option<String>,
        /// Page number, from 0.
        #[arg(long, default_value_t = 0)]
        page: u32,
        /// Entries per page (at most 1,000).
        #[arg(long, default_value_t = 25)]
        size: u32,
    },
    /// A job's status record, and where it waits.
    Show {
        /// The job id.
        id: String,
    },
    /// Runs a job of the retry, scheduled or dead set now (or all of one set with `--all`).
    Retry {
        /// The job id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Every job of this set.
        #[arg(long, value_name = "SET")]
        all: Option<SetName>,
    },
    /// Deletes a job of the retry, scheduled or dead set (or clears one set with `--all`).
    Delete {
        /// The job id.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        id: Option<String>,
        /// Every job of this set.
        #[arg(long, value_name = "SET")]
        all: Option<SetName>,
    },
    /// Moves a job of the retry or scheduled set to the dead set.
    Kill {
        /// The job id.
        id: String,
    },
    /// Pauses a queue: no worker takes from it until resumed (survives restarts).
    Pause {
        /// The queue.
        queue: String,
    },
    /// Resumes a paused queue.
    Resume {
        /// The queue.
        queue: String,
    },
    /// Quiets a worker process (or every one with `--all`): it stops fetching.
    Quiet {
        /// The process identity, as `processes` shows it.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        identity: Option<String>,
        /// Every registered process.
        #[arg(long)]
        all: bool,
    },
    /// Stops a worker process (or every one with `--all`), as SIGTERM does.
    Stop {
        /// The process identity, as `processes` shows it.
        #[arg(required_unless_present = "all", conflicts_with = "all")]
        identity: Option<String>,
        /// Every registered process.
        #[arg(long)]
        all: bool,
    },
    /// Cancels a job that is queued, scheduled, waiting for a retry, or running.
    Cancel {
        /// The job id.
        id: String,
    },
}

/// What `ls` lists.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum Listable {
    /// The retry set.
    Retry,
    /// The schedule set.
    Scheduled,
    /// The dead set.
    Dead,
    /// A queue (give its name).
    Queue,
}

/// A set named on the command line.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub(crate) enum SetName {
    /// The retry set.
    Retry,
    /// The schedule set.
    Scheduled,
    /// The dead set.
    Dead,
}

impl From<SetName> for JobSet {
    fn from(set: SetName) -> Self {
        match set {
            SetName::Retry => JobSet::Retry,
            SetName::Scheduled => JobSet::Schedule,
            SetName::Dead => JobSet::Dead,
        }
    }
}

/// Runs `command`, printing a table or (`json`) one JSON document.
pub(crate) async fn run(client: &Client, command: Command, json: bool) -> queue_core::Result<Done> {
    let inspect = Inspector::new(client);
    let out = Output { json };
    match command {
        Command::Stats => {
            let stats = inspect.stats().await?;
            let t = &stats.totals;
            let doc = json!({
                "processed": t.processed, "failed": t.failed, "enqueued": stats.enqueued,
                "scheduled": t.scheduled, "retry": t.retry, "dead": t.dead,
                "busy": stats.busy, "max_latency_secs": stats.max_latency().as_secs_f64(),
            });
            out.object(&doc);
        }
        Command::Queues => {
            let queues = inspect.queues().await?;
            let paused = inspect.paused().await?;
            let mut table = Table::new(&["QUEUE", "SIZE", "LATENCY", "PAUSED"]);
            let mut docs = Vec::new();
            for q in &queues {
                let is_paused = paused.contains(&q.name);
                table.row(vec![
                    q.name.clone(),
                    q.size.to_string(),
                    span(q.latency.as_secs_f64()),
                    yes_no(is_paused),
                ]);
                docs.push(json!({"name": q.name, "size": q.size,
                    "latency_secs": q.latency.as_secs_f64(), "paused": is_paused}));
            }
            out.table(table, Value::Array(docs));
        }
        Command::Processes => {
            let processes = inspect.processes().await?;
            let now = inspect.redis_now().await?;
            let mut table =
                Table::new(&["IDENTITY", "QUEUES", "CONCURRENCY", "BUSY", "QUIET", "BEAT"]);
            let mut docs = Vec::new();
            for p in &processes {
                let info = match &p.info {
                    queue_core::inspect::Info::Json(map) => Value::Object(map.clone()),
                    _ => Value::Null,
                };
                let queues = info.get("queues").cloned().unwrap_or(Value::Null);
                let concurrency = info.get("concurrency").cloned().unwrap_or(Value::Null);
                table.row(vec![
                    p.identity.clone(),
                    compact(&queues),
                    compact(&concurrency),
                    p.busy.to_string(),
                    yes_no(p.quiet),
                    p.beat.map_or("-".into(), |b| ago(now, b)),
                ]);
                docs.push(json!({"identity": p.identity, "queues": queues,
                    "concurrency": concurrency, "busy": p.busy, "quiet": p.quiet,
                    "beat": p.beat.map(Timestamp::as_secs_f64), "rss_kib": p.rss_kib}));
            }
            out.table(table, Value::Array(docs));
        }
        Command::Ls {
            what,
            name,
            page,
            size,
        } => {
            let page = Page::new(page, size);
            let now = inspect.redis_now().await?;
            let set = match what {
                Listable::Retry => JobSet::Retry,
                Listable::Scheduled => JobSet::Schedule,
                Listable::Dead => JobSet::Dead,
                Listable::Queue => {
                    let Some(name) = name else {
                        return Ok(Done::Nothing("ls queue needs the queue's name".into()));
                    };
                    let listing = inspect.queue_page(&name, page).await?;
                    let mut table = Table::new(&["ID", "CLASS", "ARGS", "ENQUEUED"]);
                    let mut docs = Vec::new();
                    for entry in &listing.items {
                        table.row(entry_cells(entry, now, None));
                        docs.push(entry_doc(entry, None));
                    }
                    out.listing(table, docs, listing.total, listing.has_more());
                    return Ok(Done::Yes);
                }
            };
            let listing = inspect.set_page(set, page).await?;
            let mut table = Table::new(&["ID", "CLASS", "ARGS", "AT", "ERROR"]);
            let mut docs = Vec::new();
            for ScoredEntry { at, entry } in &listing.items {
                table.row(entry_cells(entry, now, Some(*at)));
                docs.push(entry_doc(entry, Some(*at)));
            }
            out.listing(table, docs, listing.total, listing.has_more());
        }
        Command::Show { id } => {
            let id = JobId::parse(&id)?;
            let status = client.status(&id).await?;
            let found = inspect.find_job(&id).await?;
            if status.is_none() && found.is_none() {
                return Ok(Done::Nothing(format!("job {id} not found")));
            }
            let mut doc = json!({ "id": id.as_str() });
            if let Some(s) = &status {
                doc["state"] = json!(s.state.as_str());
                doc["queue"] = json!(s.queue);
                doc["class"] = json!(s.class);
                doc["attempt"] = json!(s.attempt);
                doc["progress"] = json!(s.progress.percent);
                doc["message"] = json!(s.progress.message);
                doc["result"] = s.result.clone().unwrap_or(Value::Null);
                doc["error"] = json!(s.error);
                doc["created_at"] = json!(s.created_at);
                doc["started_at"] = json!(s.started_at);
                doc["finished_at"] = json!(s.finished_at);
            }
            if let Some(f) = &found {
                doc["location"] = json!(location(&f.location));
                doc["at"] = json!(f.at.map(Timestamp::as_secs_f64));
                doc["args"] = json!(f.job.args);
                doc["retry_count"] = json!(f.job.retry_count);
                doc["error_class"] = json!(f.job.error_class);
                doc["error_message"] = json!(f.job.error_message);
            }
            out.object(&doc);
        }
        Command::Retry { id, all } => {
            if let Some(set) = all {
                let report = inspect.retry_all(set.into()).await?;
                return Ok(out.report("queued", report.done, report.cancelled, report.left));
            }
            return in_set(&inspect, id, "queued", async |set, raw| {
                inspect.retry_now(set, raw).await
            })
            .await;
        }
        Command::Delete { id, all } => {
            if let Some(set) = all {
                let report = inspect.clear(set.into()).await?;
                return Ok(out.report("deleted", report.done, report.cancelled, report.left));
            }
            return in_set(&inspect, id, "deleted", async |set, raw| {
                inspect.delete(set, raw).await
            })
            .await;
        }
        Command::Kill { id } => {
            return in_set(
                &inspect,
                Some(id),
                "moved to the dead set",
                async |set, raw| inspect.kill(set, raw).await,
            )
            .await;
        }
        Command::Pause { queue } => {
            return Ok(if inspect.pause(&queue).await? {
                said(format!("queue {queue} paused"))
            } else {
                Done::Nothing(format!("queue {queue} was paused already"))
            });
        }
        Command::Resume { queue } => {
            return Ok(if inspect.resume(&queue).await? {
                said(format!("queue {queue} resumed"))
            } else {
                Done::Nothing(format!("queue {queue} was not paused"))
            });
        }
        Command::Quiet { identity, all } => {
            return signal(&inspect, identity, all, "quiet", async |who| {
                inspect.quiet(who).await
            })
            .await;
        }
        Command::Stop { identity, all } => {
            return signal(&inspect, identity, all, "stop", async |who| {
                inspect.stop(who).await
            })
            .await;
        }
        Command::Cancel { id } => {
            let id = JobId::parse(&id)?;
            return Ok(if client.cancel(&id).await? {
                said(format!("job {id} cancelled"))
            } else {
                Done::Nothing(format!(
                    "job {id} not found, untracked, or finished already"
                ))
            });
        }
    }
    Ok(Done::Yes)
}

/// Finds job `id` in one of the sets and applies `verb` to its entry.
async fn in_set(
    inspect: &Inspector<'_>,
    id: Option<String>,
    done: &str,
    verb: impl AsyncFnOnce(JobSet, &[u8]) -> queue_core::Result<Acted>,
) -> queue_core::Result<Done> {
    let Some(id) = id else {
        return Ok(Done::Nothing("give a job id or --all SET".into()));
    };
    let id = JobId::parse(&id)?;
    let Some(found) = inspect.find_job(&id).await? else {
        return Ok(Done::Nothing(format!("job {id} not found")));
    };
    let Location::Set(set) = found.location else {
        return Ok(Done::Nothing(format!(
            "job {id} is {}, not in the retry, scheduled or dead set",
            location(&found.location)
        )));
    };
    Ok(match verb(set, &found.raw).await? {
        Acted::Done => said(format!("job {id} {done}")),
        Acted::Gone => Done::Nothing(format!("job {id} left the {} set meanwhile", set.as_str())),
        Acted::Cancelled => Done::Nothing(format!("job {id} was cancelled; dropped")),
        Acted::Blocked => Done::Nothing(format!(
            "job {id} left in place: its destination holds another type of key"
        )),
        Acted::NotAJob => Done::Nothing(format!("entry {id} is not a job")),
    })
}

/// Sends a signal to one process, or to every registered one.
async fn signal(
    inspect: &Inspector<'_>,
    identity: Option<String>,
    all: bool,
    what: &str,
    send: impl AsyncFn(&str) -> queue_core::Result<bool>,
) -> queue_core::Result<Done> {
    let targets = match identity {
        Some(identity) if !all => vec![identity],
        _ => inspect
            .processes()
            .await?
            .into_iter()
            .map(|p| p.identity)
            .collect(),
    };
    let mut sent = 0;
    for who in &targets {
        if send(who).await? {
            println!("{what} sent to {who}");
            sent += 1;
        }
    }
    Ok(if sent == 0 {
        Done::Nothing("no such process".into())
    } else {
        Done::Yes
    })
}

fn said(what: String) -> Done {
    println!("{what}");
    Done::Yes
}

/// How tables and JSON are printed.
struct Output {
    json: bool,
}

impl Output {
    fn object(&self, doc: &Value) {
        if self.json {
            println!("{doc}");
            return;
        }
        let mut table = Table::new(&["FIELD", "VALUE"]);
        if let Value::Object(map) = doc {
            for (k, v) in map {
                if !v.is_null() {
                    table.row(vec![k.clone(), compact(v)]);
                }
            }
        }
        table.print();
    }

    fn table(&self, table: Table, docs: Value) {
        if self.json {
            println!("{docs}");
        } else {
            table.print();
        }
    }

    fn listing(&self, table: Table, docs: Vec<Value>, total: u64, more: bool) {
        if self.json {
            println!("{}", json!({"total": total, "more": more, "items": docs}));
        } else {
            table.print();
            println!(
                "({total} in all{})",
                if more { "; more with --page" } else { "" }
            );
        }
    }

    fn report(&self, done_word: &str, done: u64, cancelled: u64, left: u64) -> Done {
        if self.json {
            println!(
                "{}",
                json!({ done_word: done, "cancelled": cancelled, "left": left })
            );
        } else {
            println!("{done} {done_word}, {cancelled} cancelled (dropped), {left} left in place");
        }
        Done::Yes
    }
}

fn entry_cells(entry: &Entry, now: Timestamp, at: Option<Timestamp>) -> Vec<String> {
    match entry {
        Entry::Job { job, .. } => {
            let when = at.or(job.enqueued_at).map_or("-".into(), |t| ago(now, t));
            let mut cells = vec![
                job.jid.to_string(),
                job.class.clone(),
                compact(&Value::Array(job.args.clone())),
                when,
            ];
            if at.is_some() {
                cells.push(job.error_message.clone().map_or(String::new(), |m| {
                    format!("{}: {m}", job.error_class.as_deref().unwrap_or("Error"))
                }));
            }
            cells
        }
        Entry::Malformed(m) => vec![
            "(malformed)".into(),
            m.reason.clone(),
            String::from_utf8_lossy(&m.raw).into_owned(),
        ],
    }
}

fn entry_doc(entry: &Entry, at: Option<Timestamp>) -> Value {
    match entry {
        Entry::Job { job, .. } => json!({
            "id": job.jid.as_str(), "class": job.class, "queue": job.queue, "args": job.args,
            "at": at.map(Timestamp::as_secs_f64), "retry_count": job.retry_count,
            "error_class": job.error_class, "error_message": job.error_message,
        }),
        Entry::Malformed(m) => json!({
            "malformed": m.reason, "raw": String::from_utf8_lossy(&m.raw),
            "at": at.map(Timestamp::as_secs_f64),
        }),
    }
}

fn location(location: &Location) -> String {
    match location {
        Location::Queue(q) => format!("queued in {q}"),
        Location::Set(set) => format!("in the {} set", set.as_str()),
        Location::InFlight(identity) => format!("running on {identity}"),
    }
}

/// A length of time in seconds, in its largest sensible unit: `12s`, `3m`, `5h`, `2d`.
fn span(secs: f64) -> String {
    match secs {
        s if s < 120.0 => format!("{s:.0}s"),
        s if s < 7_200.0 => format!("{:.0}m", s / 60.0),
        s if s < 172_800.0 => format!("{:.0}h", s / 3_600.0),
        s => format!("{:.0}d", s / 86_400.0),
    }
}

/// A time relative to `now`: `12s ago`, `in 3m`.
fn ago(now: Timestamp, at: Timestamp) -> String {
    let delta = now.as_secs_f64() - at.as_secs_f64();
    if delta >= 0.0 {
        format!("{} ago", span(delta))
    } else {
        format!("in {}", span(-delta))
    }
}

fn compact(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn yes_no(b: bool) -> String {
    if b { "yes" } else { "no" }.into()
}
