//! Property test: adversarial entries sent through every path that parses one. Each case
//! plants one crafted entry where a path finds it (a queue list for dispatch, the schedule
//! or retry set for promote, a dead process's processing list for the reaper), with a
//! status record when it has a jid, then runs a worker (dispatch, the runner and settle).
//! It asserts that nothing panics, that the worker still runs jobs pushed afterwards, that
//! the entry ends in exactly one defined place (or was acked), that its status record
//! agrees with that place, and that every `inspect` reader still reads the lot.
//!
//! One Redis server for the whole test, flushed between cases.

mod worker_in_process;

use proptest::prelude::*;
use proptest::test_runner::{Config, TestCaseError, TestRunner};
use queue_core::inspect::{Inspector, JobSet, Page};
use queue_core::testing::TestRedis;
use queue_core::{Client, Job, JobId, JobPayload, JobState};
use queue_worker::{Failure, JobContext, MALFORMED_CLASS, RunningWorker, Worker};
use redis::AsyncCommands;
use serde::{Deserialize, Serialize};
use std::fmt::Write as _;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;
use worker_in_process::*;

/// Runs with any arguments.
#[derive(Serialize, Deserialize)]
struct Fine(serde_json::Value);
impl Job for Fine {
    const NAME: &'static str = "Fine";
}

/// Fails with any arguments, so the failure path rewrites the entry.
#[derive(Serialize, Deserialize)]
struct Fails(serde_json::Value);
impl Job for Fails {
    const NAME: &'static str = "Fails";
}

/// The identity of a process that died holding the crafted entry.
const DEAD_PROCESS: &str = "crashed-host:1:0000";
/// Long enough for the reaper (every 300 ms here) and the scheduler to get to the entry.
const SETTLE_DEADLINE: Duration = Duration::from_secs(10);
/// "1 MiB strings".
const HUGE: usize = 1 << 20;

/// Panics anywhere in the process, worker tasks included (tokio keeps a task's panic to
/// itself, and none of the handlers here panics).
static PANICS: AtomicUsize = AtomicUsize::new(0);

/// Where the crafted entry is planted, and so which path reads it first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// `queue:default`: dispatch.
    Queue,
    /// `schedule`, due: promote.
    Schedule,
    /// `retry`, due: promote.
    Retry,
    /// A dead process's processing list: the reaper, then the hand-back.
    DeadProcess,
}

impl Place {
    /// The state of the status record a job in this place has.
    fn state(self) -> &'static str {
        match self {
            Place::Queue => "queued",
            Place::Schedule => "scheduled",
            Place::Retry => "retrying",
            Place::DeadProcess => "running",
        }
    }
}

/// A JSON number (or something in its place) as a writer other than ours may put it.
#[derive(Debug, Clone)]
enum Num {
    Int(i64),
    /// Past u64.
    Huge,
    /// Past f64: Lua reads `inf`, serde refuses it.
    Overflow,
    Float(f64),
    /// Lua's cjson reads `NaN`; it is not JSON.
    NaN,
    Str,
    Null,
    Nested,
}

impl Num {
    fn text(&self) -> String {
        match self {
            Num::Int(n) => n.to_string(),
            Num::Huge => "184467440737095516150".to_owned(),
            Num::Overflow => "1e400".to_owned(),
            Num::Float(f) => format!("{f:e}"),
            Num::NaN => "NaN".to_owned(),
            Num::Str => r#""7""#.to_owned(),
            Num::Null => "null".to_owned(),
            Num::Nested => r#"{"n":[1]}"#.to_owned(),
        }
    }
}

fn num() -> impl Strategy<Value = Num> {
    // Integers most of the time, so that whole entries often parse and reach the
    // arithmetic on their counters (a single `NaN` makes serde refuse the entry).
    prop_oneof![
        8 => prop_oneof![
            Just(0i64),
            Just(1),
            Just(70_000),
            Just(-1),
            Just(-70_000),
            Just(i64::from(u32::MAX)),
            Just(i64::MAX),
            Just(i64::MIN),
        ]
        .prop_map(Num::Int),
        1 => Just(Num::Huge),
        1 => Just(Num::Overflow),
        1 => prop_oneof![Just(1e308), Just(-1e308), Just(1.5), Just(1.76e9)].prop_map(Num::Float),
        1 => Just(Num::NaN),
        1 => Just(Num::Str),
        1 => Just(Num::Null),
        1 => Just(Num::Nested),
    ]
}

#[derive(Debug, Clone)]
enum Jid {
    /// A string id: its status record must agree with where the entry ends.
    Known(String),
    Missing,
    Other(Num),
}

#[derive(Debug, Clone)]
enum Args {
    Empty,
    Values,
    /// Nested arrays this deep (serde stops at 128, Lua's cjson at 1000).
    Deep(usize),
    /// One 1 MiB string.
    Huge,
    NotArray,
    Missing,
}

#[derive(Debug, Clone, Copy)]
enum Damage {
    None,
    /// Bytes after the closing brace.
    Trailing,
    /// Bytes that are not UTF-8 inside a string value.
    NotUtf8,
    /// The end cut off.
    Truncated,
    /// Not JSON at all.
    Garbage,
}

#[derive(Debug, Clone)]
struct Crafted {
    jid: Jid,
    jid_first: bool,
    class: Option<&'static str>,
    args: Args,
    queue: Option<&'static str>,
    retry: Option<Num>,
    counters: Vec<(&'static str, Num)>,
    times: Vec<(&'static str, Num)>,
    huge_extra: bool,
    damage: Damage,
}

impl Crafted {
    fn bytes(&self) -> Vec<u8> {
        if let Damage::Garbage = self.damage {
            return b"\xff\xfe{\"jid\" garbage [[[".to_vec();
        }
        let mut fields = Vec::new();
        match &self.jid {
            Jid::Known(id) => fields.push(format!(r#""jid":"{id}""#)),
            Jid::Missing => {}
            Jid::Other(n) => fields.push(format!(r#""jid":{}"#, n.text())),
        }
        if let Some(class) = self.class {
            fields.push(format!(r#""class":{class}"#));
        }
        match &self.args {
            Args::Empty => fields.push(r#""args":[]"#.to_owned()),
            Args::Values => fields.push(r#""args":[1,"x",{"k":null}]"#.to_owned()),
            Args::Deep(d) => {
                fields.push(format!(r#""args":[{}1{}]"#, "[".repeat(*d), "]".repeat(*d)))
            }
            Args::Huge => fields.push(format!(r#""args":["{}"]"#, "a".repeat(HUGE))),
            Args::NotArray => fields.push(r#""args":{"a":1}"#.to_owned()),
            Args::Missing => {}
        }
        if let Some(queue) = self.queue {
            fields.push(format!(r#""queue":{queue}"#));
        }
        if let Some(retry) = &self.retry {
            fields.push(format!(r#""retry":{}"#, retry.text()));
        }
        for (name, n) in self.counters.iter().chain(&self.times) {
            fields.push(format!(r#""{name}":{}"#, n.text()));
        }
        if self.huge_extra {
            fields.push(format!(r#""note":"{}""#, "n".repeat(HUGE)));
        }
        if !self.jid_first && fields.len() > 1 && matches!(self.jid, Jid::Known(_)) {
            fields.rotate_left(1);
        }
        let mut raw = format!("{{{}}}", fields.join(",")).into_bytes();
        match self.damage {
            Damage::None | Damage::Garbage => {}
            Damage::Trailing => raw.extend_from_slice(b" trailing}"),
            Damage::NotUtf8 => {
                raw.pop();
                raw.extend_from_slice(b",\"bad\":\"\xff\xfe\"}");
            }
            Damage::Truncated => raw.truncate(raw.len() - raw.len().min(3)),
        }
        raw
    }

    fn known_jid(&self) -> Option<&str> {
        match (&self.jid, self.damage) {
            (_, Damage::Garbage) => None,
            (Jid::Known(id), _) => Some(id),
            _ => None,
        }
    }
}

/// Half the entries are hostile in type (wrong types, `NaN`, damage, deep nesting); the
/// other half are well-formed with extreme values, so that they get past the parser to the
/// arithmetic on their counters.
fn crafted() -> impl Strategy<Value = Crafted> {
    any::<bool>().prop_flat_map(crafted_with)
}

fn crafted_with(hostile: bool) -> impl Strategy<Value = Crafted> {
    let number = move || -> BoxedStrategy<Num> {
        if hostile {
            num().boxed()
        } else {
            prop_oneof![Just(0i64), Just(1), Just(70_000), Just(i64::from(u32::MAX))]
                .prop_map(Num::Int)
                .boxed()
        }
    };
    let jid = if hostile {
        prop_oneof![
            6 => "[a-z0-9_]{1,12}".prop_map(Jid::Known),
            1 => Just(Jid::Missing),
            1 => num().prop_map(Jid::Other),
        ]
        .boxed()
    } else {
        "[a-z0-9_]{1,12}".prop_map(Jid::Known).boxed()
    };
    let class = prop_oneof![
        2 => Just(Some(r#""Fine""#)),
        2 => Just(Some(r#""Fails""#)),
        2 => Just(Some(r#""FromTheNextDeploy""#)),
        1 => Just(Some("5")),
        1 => Just(Some("null")),
        1 => Just(None),
    ];
    let args = if hostile {
        prop_oneof![
            3 => Just(Args::Empty),
            3 => Just(Args::Values),
            2 => prop_oneof![Just(10usize), Just(126), Just(129), Just(300)].prop_map(Args::Deep),
            1 => Just(Args::Huge),
            1 => Just(Args::NotArray),
            1 => Just(Args::Missing),
        ]
        .boxed()
    } else {
        prop_oneof![Just(Args::Empty), Just(Args::Values)].boxed()
    };
    let queue = prop_oneof![
        Just(Some(r#""default""#)),
        Just(Some(r#""other""#)),
        Just(Some("null")),
        Just(Some(r#""""#)),
        Just(Some("5")),
        Just(None),
    ];
    let retry = prop_oneof![Just(None), Just(Some(Num::Str)), number().prop_map(Some),];
    let fields = move |names: Vec<&'static str>, most: usize| {
        proptest::sample::subsequence(names, 0..=most)
            .prop_flat_map(move |names| {
                let n = names.len();
                (Just(names), proptest::collection::vec(number(), n))
            })
            .prop_map(|(names, nums)| names.into_iter().zip(nums).collect::<Vec<_>>())
    };
    let counters = fields(
        vec!["retry_count", "unknown_class", "recovered", "deferred"],
        4,
    );
    let times = fields(
        vec!["created_at", "enqueued_at", "failed_at", "retried_at"],
        2,
    );
    let damage = if hostile {
        prop_oneof![
            4 => Just(Damage::None),
            1 => Just(Damage::Trailing),
            1 => Just(Damage::NotUtf8),
            1 => Just(Damage::Truncated),
            1 => Just(Damage::Garbage),
        ]
        .boxed()
    } else {
        Just(Damage::None).boxed()
    };
    let huge_extra = proptest::bool::weighted(if hostile { 0.1 } else { 0.0 });
    (
        (jid, any::<bool>(), class, args, queue),
        (retry, counters, times, huge_extra, damage),
    )
        .prop_map(
            |(
                (jid, jid_first, class, args, queue),
                (retry, counters, times, huge_extra, damage),
            )| {
                Crafted {
                    jid,
                    // Cut at the end: keep the id before the cut.
                    jid_first: jid_first || matches!(damage, Damage::Truncated),
                    class,
                    args,
                    queue,
                    retry,
                    counters,
                    times,
                    huge_extra,
                    damage,
                }
            },
        )
}

fn place() -> impl Strategy<Value = Place> {
    prop_oneof![
        3 => Just(Place::Queue),
        1 => Just(Place::Schedule),
        1 => Just(Place::Retry),
        2 => Just(Place::DeadProcess),
    ]
}

fn worker(client: &Client) -> RunningWorker {
    Worker::builder()
        .config(fast_config())
        .register(|_: Fine, _: JobContext| async { Ok::<_, Failure>("fine") })
        .register(|_: Fails, _: JobContext| async { Err::<(), _>(Failure::retry("no luck")) })
        .build(client.clone())
        .unwrap()
        .start()
}

#[test]
fn adversarial_entries_end_in_a_defined_place_with_their_status_agreeing() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        PANICS.fetch_add(1, Ordering::SeqCst);
        report(info);
    }));
    let redis = TestRedis::start();
    let rt = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap();
    let client = rt.block_on(client(&redis, "adversarial"));
    let mut runner = TestRunner::new(Config {
        // About 10 s here; `PROPTEST_CASES=2000` for a soak run.
        cases: std::env::var("PROPTEST_CASES")
            .ok()
            .and_then(|n| n.parse().ok())
            .unwrap_or(96),
        max_shrink_iters: 32,
        failure_persistence: None,
        ..Config::default()
    });
    let outcome = runner.run(&(crafted(), place()), |(entry, place)| {
        rt.block_on(run_case(&redis, &client, &entry, place))
            .map_err(TestCaseError::fail)
    });
    if let Err(e) = outcome {
        panic!("{e}\n--- redis-server log ---\n{}", redis.log());
    }
}

/// One case: plant, run a worker, wait for everything to settle, check where the entry is.
async fn run_case(
    redis: &TestRedis,
    client: &Client,
    entry: &Crafted,
    place: Place,
) -> Result<(), String> {
    let mut conn = raw(redis).await;
    clear(redis, &mut conn).await;
    let keys = client.keys();
    let raw_entry = entry.bytes();
    let jid = entry.known_jid();
    if let Some(jid) = jid {
        let _: () = conn
            .hset_multiple(
                keys.status(jid),
                &[("state", place.state()), ("queue", "default"), ("rev", "3")],
            )
            .await
            .unwrap();
    }
    let now = Inspector::new(client)
        .redis_now()
        .await
        .unwrap()
        .as_secs_f64();
    match place {
        Place::Queue => {
            let _: () = conn.lpush(keys.queue("default"), &raw_entry).await.unwrap();
        }
        Place::Schedule | Place::Retry => {
            let set = if place == Place::Schedule {
                keys.schedule()
            } else {
                keys.retry()
            };
            let _: () = conn.zadd(set, &raw_entry, now - 1.0).await.unwrap();
        }
        Place::DeadProcess => {
            let _: () = conn.sadd(keys.workers(), DEAD_PROCESS).await.unwrap();
            let _: () = conn
                .rpush(keys.processing(DEAD_PROCESS), &raw_entry)
                .await
                .unwrap();
        }
    }
    let w = worker(client);
    let identity = w.identity();
    let result = async {
        let canary = client
            .enqueue(&Fine(serde_json::Value::Null))
            .await
            .map_err(|e| e.to_string())?;
        let ran = eventually(|| async {
            let s = client.status(&canary).await.ok().flatten();
            s.is_some_and(|s| s.state == JobState::Succeeded)
        })
        .await;
        if !ran {
            return Err("a job pushed after the crafted entry did not run".to_owned());
        }
        if !eventually(|| settled(conn.clone(), client)).await {
            return Err(format!(
                "still in flight, queued or due after {SETTLE_DEADLINE:?}"
            ));
        }
        check(&mut conn.clone(), client, entry, jid).await?;
        read_everything(client, &identity, jid).await
    }
    .await;
    w.shutdown().await.map_err(|e| e.to_string())?;
    let panics = PANICS.swap(0, Ordering::SeqCst);
    if panics > 0 {
        return Err(format!(
            "{panics} panic(s) while the worker handled the entry"
        ));
    }
    result
}

/// Polls `check` until it holds or [`SETTLE_DEADLINE`] passes.
async fn eventually<F, Fut>(mut check: F) -> bool
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let start = std::time::Instant::now();
    while start.elapsed() < SETTLE_DEADLINE {
        if check().await {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    false
}

/// Nothing is in flight, nothing waits in `queue:default`, nothing in `schedule` or `retry`
/// is due, and the dead process was reaped: read in one script, so that an entry moving
/// between two reads (reaped into a processing list, handed back to its queue) cannot make
/// every read miss it.
const SETTLED: &str = r"
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
for _, list in ipairs(redis.call('KEYS', ARGV[1] .. '*')) do
  if redis.call('LLEN', list) > 0 then return 0 end
end
if redis.call('LLEN', KEYS[1]) > 0 then return 0 end
if redis.call('SISMEMBER', KEYS[2], ARGV[2]) == 1 then return 0 end
for _, set in ipairs({KEYS[3], KEYS[4]}) do
  if redis.call('ZCOUNT', set, '-inf', now) > 0 then return 0 end
end
return 1
";

async fn settled(mut conn: redis::aio::MultiplexedConnection, client: &Client) -> bool {
    let keys = client.keys();
    let done: i64 = redis::Script::new(SETTLED)
        .key(keys.queue("default"))
        .key(keys.workers())
        .key(keys.schedule())
        .key(keys.retry())
        .arg(keys.processing_prefix())
        .arg(DEAD_PROCESS)
        .invoke_async(&mut conn)
        .await
        .unwrap();
    done == 1
}

/// Where an entry can end.
#[derive(Debug, PartialEq)]
enum End {
    Queue(String),
    Set(JobSet),
}

async fn check(
    conn: &mut redis::aio::MultiplexedConnection,
    client: &Client,
    entry: &Crafted,
    jid: Option<&str>,
) -> Result<(), String> {
    let keys = client.keys();
    let mut found: Vec<(End, Vec<u8>)> = Vec::new();
    let lists: Vec<String> = conn
        .keys(format!("{}*", keys.queue_prefix()))
        .await
        .unwrap();
    for list in lists {
        let name = list[keys.queue_prefix().len()..].to_owned();
        let members: Vec<Vec<u8>> = conn.lrange(&list, 0, -1).await.unwrap();
        found.extend(members.into_iter().map(|m| (End::Queue(name.clone()), m)));
    }
    for set in JobSet::ALL {
        let members: Vec<Vec<u8>> = conn.zrange(set.key(keys), 0, -1).await.unwrap();
        found.extend(members.into_iter().map(|m| (End::Set(set), m)));
    }
    let summary = || {
        let mut s = String::new();
        for (end, raw) in &found {
            let _ = write!(s, "\n  {end:?}: {}", preview(raw));
        }
        s
    };
    if found.len() > 1 {
        return Err(format!("the entry is in more than one place:{}", summary()));
    }
    let Some(jid) = jid else {
        // No id to follow: being in at most one place is all that can be asked.
        return Ok(());
    };
    let id = JobId::parse(jid).unwrap();
    let status = client
        .status(&id)
        .await
        .map_err(|e| format!("status record unreadable: {e}"))?
        .ok_or_else(|| "status record gone".to_owned())?;
    let Some((end, raw)) = found.first() else {
        return if status.state == JobState::Succeeded {
            Ok(())
        } else {
            Err(format!(
                "the entry is gone but its status says {}",
                status.state
            ))
        };
    };
    // An entry waiting in a queue or set may still be unreadable (a queue nobody here
    // listens to, say): whoever takes it buries it. What is dead must be readable, under
    // the entry's own jid.
    if *end == End::Set(JobSet::Dead) {
        let stored = JobPayload::from_json(raw);
        let own = stored
            .as_ref()
            .is_ok_and(|s| s.class != MALFORMED_CLASS || s.jid.as_str() == jid);
        if !own {
            return Err(format!(
                "buried unreadable or under another jid: {}",
                preview(raw)
            ));
        }
    }
    let expected = match end {
        End::Queue(_) => JobState::Queued,
        End::Set(JobSet::Schedule) => JobState::Scheduled,
        End::Set(JobSet::Retry) => JobState::Retrying,
        End::Set(JobSet::Dead) => JobState::Dead,
    };
    if status.state != expected {
        return Err(format!(
            "the entry is in {end:?} but its status says {} (entry {:?})",
            status.state, entry.damage
        ));
    }
    Ok(())
}

/// Every `inspect` reader over what the case left: none may fail or panic.
async fn read_everything(client: &Client, identity: &str, jid: Option<&str>) -> Result<(), String> {
    let inspect = Inspector::new(client);
    let e = |what: &str, e: queue_core::Error| format!("inspect {what}: {e}");
    inspect.stats().await.map_err(|x| e("stats", x))?;
    inspect.totals().await.map_err(|x| e("totals", x))?;
    for q in inspect.queues().await.map_err(|x| e("queues", x))? {
        inspect
            .queue_page(&q.name, Page::first())
            .await
            .map_err(|x| e("queue_page", x))?;
    }
    for set in JobSet::ALL {
        inspect
            .set_page(set, Page::first())
            .await
            .map_err(|x| e("set_page", x))?;
    }
    inspect.processes().await.map_err(|x| e("processes", x))?;
    for who in [identity, DEAD_PROCESS] {
        inspect
            .in_flight(who, Page::first())
            .await
            .map_err(|x| e("in_flight", x))?;
    }
    let now = inspect.redis_now().await.map_err(|x| e("redis_now", x))?;
    inspect.history(3, now).await.map_err(|x| e("history", x))?;
    if let Some(id) = jid.and_then(|j| JobId::parse(j).ok()) {
        inspect.find_job(&id).await.map_err(|x| e("find_job", x))?;
        inspect
            .status_revs(&[id])
            .await
            .map_err(|x| e("status_revs", x))?;
    }
    Ok(())
}

fn preview(raw: &[u8]) -> String {
    let text = String::from_utf8_lossy(&raw[..raw.len().min(300)]).into_owned();
    format!("{text} ({} bytes)", raw.len())
}
