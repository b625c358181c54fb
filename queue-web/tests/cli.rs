//! The `dynoqueue` binary against a private Redis: what it prints (tables and `--json`),
//! what each verb changes in Redis, and its exit status on bad input.

use queue_core::testing::{TestRedis, config_env};
use queue_core::{Client, JobId, JobState, NewJob};
use redis::AsyncCommands;
use serde_json::{Value, json};
use std::process::{Command, Output};

struct Cli {
    /// Where the client of the test connects, and its prefix.
    redis_env: Vec<(&'static str, String)>,
}

impl Cli {
    fn run(&self, args: &[&str]) -> Output {
        Command::new(env!("CARGO_BIN_EXE_dynoqueue"))
            .args(args)
            .env_clear()
            .envs(self.redis_env.iter().map(|(k, v)| (k, v)))
            .output()
            .unwrap()
    }

    /// Runs `args` with `--json`, expects success, and parses stdout.
    fn json(&self, args: &[&str]) -> Value {
        let mut all = args.to_vec();
        all.push("--json");
        let out = self.run(&all);
        assert!(
            out.status.success(),
            "{args:?}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        serde_json::from_slice(&out.stdout).unwrap()
    }

    /// Runs `args`, expects exit status `code`, and returns stdout.
    fn expect(&self, args: &[&str], code: i32) -> String {
        let out = self.run(args);
        assert_eq!(
            out.status.code(),
            Some(code),
            "{args:?}: stdout {} stderr {}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8(out.stdout).unwrap()
    }
}

async fn setup(redis: &TestRedis) -> (Client, redis::aio::MultiplexedConnection, Cli) {
    let config = redis.config("cli_test");
    let redis_env = config_env(&config);
    let client = Client::connect(config).await.unwrap();
    let conn = redis::Client::open(redis.url())
        .unwrap()
        .get_multiplexed_async_connection()
        .await
        .unwrap();
    (client, conn, Cli { redis_env })
}

/// Puts a job in the sorted set at `set` (`retry`, `schedule` or `dead`) as Sidekiq stores it.
async fn in_set(conn: &mut redis::aio::MultiplexedConnection, set: String, class: &str) -> JobId {
    let id = JobId::new();
    let job = json!({"jid": id.as_str(), "class": class, "args": [1, "<b>x</b>"],
        "queue": "default", "retry_count": 2, "error_class": "RuntimeError",
        "error_message": "boom", "failed_at": 1.0e9});
    let _: () = conn
        .zadd(set, job.to_string(), 1_900_000_000.0)
        .await
        .unwrap();
    id
}

#[tokio::test]
async fn queues_stats_and_pause_resume() {
    let redis = TestRedis::start();
    let (client, _conn, cli) = setup(&redis).await;
    for i in 0..3 {
        client
            .push(NewJob::new("Mail", vec![json!(i)]))
            .await
            .unwrap();
    }
    let queues = cli.json(&["queues"]);
    assert_eq!(
        queues,
        json!([{"name": "default", "size": 3, "latency_secs": queues[0]["latency_secs"], "paused": false}])
    );
    let stats = cli.json(&["stats"]);
    assert_eq!(stats["enqueued"], 3);

    assert!(cli.expect(&["pause", "default"], 0).contains("paused"));
    assert_eq!(cli.json(&["queues"])[0]["paused"], true);
    assert_eq!(
        queue_core::Inspector::new(&client).paused().await.unwrap(),
        ["default"]
    );
    // Pausing twice does nothing, and says so with status 1.
    cli.expect(&["pause", "default"], 1);
    cli.expect(&["resume", "default"], 0);
    assert_eq!(cli.json(&["queues"])[0]["paused"], false);
    // The table has a header and one row per queue.
    let table = cli.expect(&["queues"], 0);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("QUEUE") && lines[0].contains("PAUSED"),
        "{table}"
    );
    assert!(
        lines[1].starts_with("default") && lines[1].contains(" 3 "),
        "{table}"
    );
}

#[tokio::test]
async fn set_verbs_act_on_the_job_named() {
    let redis = TestRedis::start();
    let (client, mut conn, cli) = setup(&redis).await;
    let dead = in_set(&mut conn, client.keys().dead(), "Dead").await;
    let retry = in_set(&mut conn, client.keys().retry(), "Retry").await;
    let scheduled = in_set(&mut conn, client.keys().schedule(), "Later").await;

    let listed = cli.json(&["ls", "dead"]);
    assert_eq!(listed["total"], 1);
    assert_eq!(listed["items"][0]["id"], dead.as_str());
    assert_eq!(listed["items"][0]["error_message"], "boom");
    let table = cli.expect(&["ls", "retry"], 0);
    assert!(
        table.contains(retry.as_str()) && table.contains("RuntimeError: boom"),
        "{table}"
    );

    // retry ID: from the dead set back to its queue.
    cli.expect(&["retry", dead.as_str()], 0);
    let shown = cli.json(&["show", dead.as_str()]);
    assert_eq!(shown["location"], "queued in default");
    assert_eq!(cli.json(&["ls", "dead"])["total"], 0);
    // Again: it is queued now, not in a set.
    cli.expect(&["retry", dead.as_str()], 1);

    // delete ID from the retry set; kill ID moves a scheduled job to the dead set.
    cli.expect(&["delete", retry.as_str()], 0);
    assert_eq!(cli.json(&["ls", "retry"])["total"], 0);
    cli.expect(&["kill", scheduled.as_str()], 0);
    assert_eq!(
        cli.json(&["ls", "dead"])["items"][0]["id"],
        scheduled.as_str()
    );

    // --all: every job of a set.
    in_set(&mut conn, client.keys().retry(), "A").await;
    in_set(&mut conn, client.keys().retry(), "B").await;
    assert_eq!(cli.json(&["retry", "--all", "retry"])["queued"], 2);
    assert_eq!(cli.json(&["delete", "--all", "dead"])["deleted"], 1);
    assert_eq!(cli.json(&["queues"])[0]["size"], 3);
    let page = cli.json(&["ls", "queue", "default", "--size", "2"]);
    assert_eq!(
        (page["total"].clone(), page["more"].clone()),
        (json!(3), json!(true))
    );
    assert_eq!(page["items"].as_array().unwrap().len(), 2);
    let _ = client;
}

#[tokio::test]
async fn cancel_show_and_bad_input() {
    let redis = TestRedis::start();
    let (client, _conn, cli) = setup(&redis).await;
    let id = client
        .push(NewJob::new("Report", vec![json!("x")]))
        .await
        .unwrap();
    assert_eq!(cli.json(&["show", id.as_str()])["state"], "queued");
    cli.expect(&["cancel", id.as_str()], 0);
    assert_eq!(
        client.status(&id).await.unwrap().unwrap().state,
        JobState::Cancelled
    );
    // Finished already: nothing to do.
    cli.expect(&["cancel", id.as_str()], 1);
    // Unknown job: 1; not a job id, or a bad queue name: 2; bad usage: 2.
    cli.expect(&["show", JobId::new().as_str()], 1);
    cli.expect(&["show", "not a job id!"], 2);
    cli.expect(&["pause", "no spaces please"], 2);
    cli.expect(&["ls", "everything"], 2);
    cli.expect(&["retry"], 2);
    // No processes to quiet.
    cli.expect(&["quiet", "--all"], 1);
    cli.expect(&["stop", "nobody"], 1);
}

#[test]
fn without_redis_it_says_so() {
    let out = Command::new(env!("CARGO_BIN_EXE_dynoqueue"))
        .arg("stats")
        .env_clear()
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(3));
    assert!(String::from_utf8_lossy(&out.stderr).contains("REDIS_URL"));
}

// `quiet --all` / `stop --all` stopped at the first process it could not signal (an
// identity too long or empty, as anything writing Sidekiq's `processes` set may leave, or a
// signals key of another type): the processes after it, in SMEMBERS order, were never told,
// and the exit status said bad usage. It also printed identities raw, so one carrying an
// escape sequence drove the operator's terminal.
#[tokio::test]
async fn signalling_every_process_reaches_each_valid_one_and_prints_identities_safely() {
    let redis = TestRedis::start();
    let (client, mut conn, cli) = setup(&redis).await;
    let keys = client.keys();
    let long = "x".repeat(300);
    let blocked = "host:3:blocked";
    let evil = "evil\u{1b}]0;pwned\u{7}:2";
    let good = "host:1:good";
    for identity in [good, evil, long.as_str(), blocked, ""] {
        let _: () = conn.sadd(keys.processes(), identity).await.unwrap();
        let _: () = conn
            .hset(keys.process(identity), "beat", "1.0")
            .await
            .unwrap();
    }
    let _: () = conn.set(keys.signals(blocked), "x").await.unwrap();

    for verb in ["quiet", "stop"] {
        let out = cli.run(&[verb, "--all"]);
        // Some processes could not be signalled: not a success, but not bad usage either.
        assert_eq!(out.status.code(), Some(1), "{verb}: {out:?}");
        for stream in [&out.stdout, &out.stderr] {
            assert!(
                !stream.contains(&0x1b) && !stream.contains(&0x07),
                "{verb}: control characters printed: {}",
                String::from_utf8_lossy(stream)
            );
        }
    }
    let good_signals: Vec<String> = conn.lrange(keys.signals(good), 0, -1).await.unwrap();
    assert_eq!(good_signals, ["TERM", "TSTP"]);
    let evil_signals: Vec<String> = conn.lrange(keys.signals(evil), 0, -1).await.unwrap();
    assert_eq!(evil_signals, ["TERM", "TSTP"]);
}
