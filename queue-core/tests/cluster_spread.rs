//! Queues spread over a cluster's slots (`ClientConfig::spread_queues`), against a private
//! loopback Redis Cluster (3 masters, 3 replicas): each queue's keys live on the master of
//! its own slot, job ids name their queue, and every call by id or by queue finds the slot.

use queue_core::inspect::StatusRev;
use queue_core::periodic::{PeriodicDefinition, TickKind, Ticked};
use queue_core::testing::{TestCluster, TestRedis};
use queue_core::{
    Client, ClientConfig, EnqueueOptions, Error, Inspector, JobId, JobState, NewJob, Unique,
};
use serde_json::json;
use std::collections::BTreeSet;
use std::time::Duration;

/// Three queue names whose slots are served by three different masters, and those masters.
fn queues_on_three_masters(cluster: &TestCluster, client: &Client) -> Vec<(String, usize)> {
    cluster.queues_on_distinct_masters(client.config(), 3)
}

fn spread(cluster: &TestCluster, name: &str) -> ClientConfig {
    cluster.config(name).spread_queues(true)
}

#[tokio::test]
async fn each_queue_lives_on_the_master_of_its_own_slot() {
    let cluster = TestCluster::start();
    let client = Client::connect(spread(&cluster, "spread")).await.unwrap();
    let queues = queues_on_three_masters(&cluster, &client);

    let mut ids = Vec::new();
    for (queue, _) in &queues {
        let one = client
            .push(NewJob {
                options: EnqueueOptions::new().queue(queue),
                ..NewJob::new("Greet", vec![json!(queue)])
            })
            .await
            .unwrap();
        assert_eq!(one.queue_slot(), Some(queue.as_str()), "{one}");
        ids.push(one);
    }
    // One bulk call over the three queues: one chunk per queue, each in its slot.
    let bulk: Vec<NewJob> = (0..300)
        .map(|i| NewJob {
            options: EnqueueOptions::new().queue(&queues[i % 3].0),
            ..NewJob::new("Greet", vec![json!(i)])
        })
        .collect();
    let bulk_ids = client.push_bulk(bulk).await.unwrap();
    assert_eq!(bulk_ids.len(), 300);
    for (i, id) in bulk_ids.iter().enumerate() {
        assert_eq!(id.queue_slot(), Some(queues[i % 3].0.as_str()));
    }

    let inspector = Inspector::new(&client);
    for (queue, _) in &queues {
        assert_eq!(inspector.queue(queue).await.unwrap().size, 101, "{queue}");
    }
    let listed: BTreeSet<String> = inspector
        .queues()
        .await
        .unwrap()
        .into_iter()
        .map(|q| {
            assert_eq!(q.size, 101, "{}", q.name);
            q.name
        })
        .collect();
    assert_eq!(
        listed,
        queues
            .iter()
            .map(|(q, _)| q.clone())
            .collect::<BTreeSet<_>>()
    );

    // Reads by id find each record in its own slot, in one call across slots too.
    for id in &ids {
        assert_eq!(
            client.status(id).await.unwrap().unwrap().state,
            JobState::Queued
        );
    }
    let revs = inspector.status_revs(&bulk_ids).await.unwrap();
    assert!(revs.iter().all(|r| *r == StatusRev::Rev(1)), "{revs:?}");
    let states = inspector.states(&ids).await.unwrap();
    assert_eq!(states, vec![Some(JobState::Queued); 3]);
    let found = inspector.find_job(&ids[1]).await.unwrap().unwrap();
    assert_eq!(found.job.jid, ids[1]);

    // Each master holds the keys of its own queue's slot: the queue, its `queues` set and
    // 101 records; one of them also holds the app's own `queues` set. Nothing else.
    let home = cluster.master_of(&client.keys().queues());
    for (queue, master) in &queues {
        let slot = client.for_queue(queue);
        let node = &cluster.nodes()[*master];
        assert_eq!(node.command(&["EXISTS", &slot.keys().queue(queue)]), "1");
        assert_eq!(node.command(&["EXISTS", &slot.keys().queues()]), "1");
        let own = 1 + 1 + 101 + usize::from(*master == home);
        assert_eq!(
            node.command(&["DBSIZE"]),
            own.to_string(),
            "{queue} on master {master}"
        );
    }
}

#[tokio::test]
async fn schedule_cancel_and_unique_work_per_queue_slot() {
    let cluster = TestCluster::start();
    let client = Client::connect(spread(&cluster, "spread_ops"))
        .await
        .unwrap();
    let queues = queues_on_three_masters(&cluster, &client);
    let (a, b) = (&queues[0].0, &queues[1].0);

    let later = client
        .push(NewJob {
            options: EnqueueOptions::new()
                .queue(a)
                .delay(Duration::from_secs(600)),
            ..NewJob::new("Later", vec![])
        })
        .await
        .unwrap();
    assert_eq!(
        client.status(&later).await.unwrap().unwrap().state,
        JobState::Scheduled
    );
    let schedule = client.for_queue(a).keys().schedule();
    assert_eq!(
        cluster.nodes()[queues[0].1].command(&["ZCARD", &schedule]),
        "1"
    );
    assert!(client.cancel(&later).await.unwrap());
    assert_eq!(
        client.status(&later).await.unwrap().unwrap().state,
        JobState::Cancelled
    );

    // A caller-given id gets its queue in front, and stays idempotent.
    let given = JobId::parse("order-7").unwrap();
    let push_given = || NewJob {
        options: EnqueueOptions::new().queue(b).job_id(given.clone()),
        ..NewJob::new("Ship", vec![])
    };
    let first = client.push(push_given()).await.unwrap();
    assert_eq!(first.as_str(), format!("{b}.order-7"));
    assert_eq!(client.push(push_given()).await.unwrap(), first);
    assert_eq!(Inspector::new(&client).queue(b).await.unwrap().size, 1);
    // An id with a dot cannot carry its queue in front: refused, nothing written.
    let dotted = client
        .push(NewJob {
            options: EnqueueOptions::new()
                .queue(b)
                .job_id(JobId::parse("a.b").unwrap()),
            ..NewJob::new("Ship", vec![])
        })
        .await
        .unwrap_err();
    assert!(matches!(dotted, Error::InvalidJobId), "{dotted:?}");

    let once = Unique::until_succeeded(Duration::from_secs(60));
    let unique = |n: u32| NewJob {
        options: EnqueueOptions::new().queue(a).unique_by("nightly", once),
        ..NewJob::new("Nightly", vec![json!(n)])
    };
    let holder = client.push(unique(1)).await.unwrap();
    assert_eq!(client.push(unique(2)).await.unwrap(), holder);
    assert!(client.cancel(&holder).await.unwrap());
    assert_ne!(client.push(unique(3)).await.unwrap(), holder);
}

#[tokio::test]
async fn spreading_needs_cluster_mode() {
    // A server of its own: on the cluster target, `start` would hand out a cluster share.
    let redis = TestRedis::start_private();
    let err = Client::connect(redis.config("single").spread_queues(true))
        .await
        .unwrap_err();
    assert!(
        matches!(
            err,
            Error::InvalidSetting {
                name: "spread_queues",
                ..
            }
        ),
        "{err:?}"
    );
}

/// The operators' views and verbs read and act on every queue's slot: set sizes add up,
/// a page merges the slots by score, and each verb acts in the entry's own slot.
#[tokio::test]
async fn the_inspector_sees_and_acts_on_every_slot() {
    use queue_core::inspect::{JobSet, Page};
    use queue_core::scripts::Acted;
    let cluster = TestCluster::start();
    let client = Client::connect(spread(&cluster, "spread_inspect"))
        .await
        .unwrap();
    let queues = queues_on_three_masters(&cluster, &client);
    // Run times interleave the queues: minute i goes to queue i % 3.
    let mut ids = Vec::new();
    for i in 0..9u64 {
        let id = client
            .push(NewJob {
                options: EnqueueOptions::new()
                    .queue(&queues[(i % 3) as usize].0)
                    .delay(Duration::from_secs(600 + 60 * i)),
                ..NewJob::new("Later", vec![json!(i)])
            })
            .await
            .unwrap();
        ids.push(id);
    }
    let inspector = Inspector::new(&client);
    assert_eq!(inspector.set_size(JobSet::Schedule).await.unwrap(), 9);
    assert_eq!(inspector.totals().await.unwrap().scheduled, 9);
    // Highest score first, across slots: ids 8, 7, 6 on the first page of 3, then 5, 4, 3.
    for (page, expected) in [(0u32, [8usize, 7, 6]), (1, [5, 4, 3])] {
        let listing = inspector
            .set_page(JobSet::Schedule, Page::new(page, 3))
            .await
            .unwrap();
        assert_eq!(listing.total, 9);
        let got: Vec<&JobId> = listing
            .items
            .iter()
            .map(|e| &e.entry.job().unwrap().jid)
            .collect();
        let want: Vec<&JobId> = expected.iter().map(|&i| &ids[i]).collect();
        assert_eq!(got, want, "page {page}");
    }

    // Each verb finds the entry's slot: retry now, kill, delete.
    let first = inspector
        .set_page(JobSet::Schedule, Page::new(0, 3))
        .await
        .unwrap();
    let [now, dead, gone] = &first.items[..] else {
        panic!("{first:?}");
    };
    let again = inspector
        .set_entry(JobSet::Schedule, now.at, &ids[8])
        .await
        .unwrap()
        .unwrap();
    assert_eq!(again.entry.raw(), now.entry.raw());
    let retried = inspector
        .retry_now(JobSet::Schedule, now.entry.raw())
        .await
        .unwrap();
    assert_eq!(retried, Acted::Done);
    assert_eq!(
        client.status(&ids[8]).await.unwrap().unwrap().state,
        JobState::Queued
    );
    assert_eq!(
        inspector.queue(&queues[2].0).await.unwrap().size,
        1,
        "job 8 is queue 2's"
    );
    assert_eq!(
        inspector
            .kill(JobSet::Schedule, dead.entry.raw())
            .await
            .unwrap(),
        Acted::Done
    );
    assert_eq!(inspector.set_size(JobSet::Dead).await.unwrap(), 1);
    assert_eq!(
        inspector
            .delete(JobSet::Schedule, gone.entry.raw())
            .await
            .unwrap(),
        Acted::Done
    );
    assert!(client.status(&ids[6]).await.unwrap().is_none());

    // Retry all and clear go through every slot.
    let report = inspector.retry_all(JobSet::Schedule).await.unwrap();
    assert_eq!(report.done, 6, "{report:?}");
    assert_eq!(inspector.stats().await.unwrap().enqueued, 7);
    assert_eq!(inspector.clear(JobSet::Dead).await.unwrap().done, 1);
    assert_eq!(inspector.set_size(JobSet::Dead).await.unwrap(), 0);
}

/// A periodic entry lives in its queue's slot, and a queue fed only by cron is listed.
#[tokio::test]
async fn periodic_entries_register_in_their_queues_slots() {
    let cluster = TestCluster::start();
    let client = Client::connect(spread(&cluster, "spread_cron"))
        .await
        .unwrap();
    let queues = queues_on_three_masters(&cluster, &client);
    let entry = |name: &str, queue: &str| PeriodicDefinition {
        name: name.to_owned(),
        cron: "* * * * *".to_owned(),
        tz: "UTC".to_owned(),
        missed: "skip".to_owned(),
        job: NewJob {
            options: EnqueueOptions::new().queue(queue),
            ..NewJob::new("Tick", vec![])
        },
    };
    let entries = [entry("a", &queues[0].0), entry("b", &queues[1].0)];
    assert_eq!(client.register_periodic(&entries).await.unwrap(), 0);
    for (entry, (queue, master)) in entries.iter().zip(&queues) {
        let key = client.for_queue(queue).keys().periodic_entry(&entry.name);
        assert_eq!(cluster.nodes()[*master].command(&["EXISTS", &key]), "1");
    }
    let inspector = Inspector::new(&client);
    let names: Vec<String> = inspector
        .periodic()
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    assert_eq!(names, ["a", "b"]);
    let listed: BTreeSet<String> = inspector
        .queues()
        .await
        .unwrap()
        .into_iter()
        .map(|q| q.name)
        .collect();
    assert!(
        listed.contains(&queues[0].0) && listed.contains(&queues[1].0),
        "{listed:?}"
    );
}

/// Every queue name and periodic entry name the validators accept gets an id in its
/// queue's slot: the id carries the queue in front, so the bound on ids must leave room for
/// the longest queue name. Before, a queue of 32+ characters could not be pushed to at all,
/// and a periodic entry of a long name on a queue of 8+ characters failed every tick.
#[tokio::test]
async fn the_longest_valid_names_get_ids_in_their_slot() {
    let cluster = TestCluster::start();
    let client = Client::connect(spread(&cluster, "long_names"))
        .await
        .unwrap();
    let queue = "q".repeat(128);
    queue_core::validate_queue_name(&queue).unwrap();

    let id = client
        .push(NewJob {
            options: EnqueueOptions::new().queue(&queue),
            ..NewJob::new("Greet", vec![json!(1)])
        })
        .await
        .unwrap();
    assert_eq!(id.queue_slot(), Some(queue.as_str()));
    // The status URL's parse takes what the push gave out.
    let parsed = JobId::parse(id.as_str()).unwrap();
    let status = client.status(&parsed).await.unwrap().unwrap();
    assert_eq!(status.state, JobState::Queued);
    // A caller-given id of the longest plain length, on the longest queue.
    let given = JobId::parse(&"g".repeat(64)).unwrap();
    let id = client
        .push(NewJob {
            options: EnqueueOptions::new().queue(&queue).job_id(given),
            ..NewJob::new("Greet", vec![json!(2)])
        })
        .await
        .unwrap();
    assert!(client.status(&id).await.unwrap().is_some());
    // A plain id still may not exceed 64 characters, nor a queue part 128.
    assert!(JobId::parse(&"g".repeat(65)).is_err());
    assert!(JobId::parse(&format!("{}.{}", "q".repeat(129), "g")).is_err());
    assert!(JobId::parse(&format!("{queue}.{}", "g".repeat(65))).is_err());

    let entry = PeriodicDefinition {
        name: "n".repeat(queue_core::periodic::MAX_PERIODIC_NAME_LEN),
        cron: "* * * * *".to_owned(),
        tz: "UTC".to_owned(),
        missed: "skip".to_owned(),
        job: NewJob {
            options: EnqueueOptions::new().queue(&queue),
            ..NewJob::new("Report", vec![json!(1)])
        },
    };
    entry.validate().unwrap();
    client
        .register_periodic(std::slice::from_ref(&entry))
        .await
        .unwrap();
    let tick = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
        - 1;
    let ticked = client
        .enqueue_tick(&entry, &entry.digest(), tick, tick + 60, TickKind::Due)
        .await
        .unwrap();
    assert!(matches!(ticked, Ticked::Pushed { .. }), "{ticked:?}");
}
