'use strict';
// BullMQ's side of benches/compare: one role per process, driven by compare.py over
// stdin/stdout (it writes `go` and `quit`; this prints `ready`, `gated` and `done JSON`).
//
//   REDIS_URL=redis://127.0.0.1:PORT node driver.js ROLE N [CONCURRENCY] [PAYLOAD_BYTES]
//
// Roles (the same in the Sidekiq and Rust drivers):
//   single N  N sequential Queue.add, each timed (after a warm-up)
//   bulk N    CONCURRENCY gate jobs added before `ready`, then on `go` N no-op jobs with
//             one Queue.addBulk (BullMQ sends them as one MULTI), timed
//   worker N  a Worker (concurrency CONCURRENCY, queue `drain`); `gated` once every slot
//             holds a gate job; `go` releases them; `done` when N no-op jobs ran
//             (monotonic ns of the first and last handler end)
//   pickup N  a Worker on queue `pickup` and a Queue in this process: an idle worker, one
//             add, the time until the handler starts; N times after a warm-up
//
// BullMQ runs at its defaults: completed jobs are kept (removeOnComplete unset: each job's
// hash stays, with its id in the `completed` sorted set), the events stream is capped near
// 10,000 entries, attempts 1, lock 30 s, stalled check every 30 s.

const readline = require('node:readline');
const { Queue, Worker } = require('bullmq');

const [role, nArg, concArg = '10', payloadArg = '64'] = process.argv.slice(2);
const N = Number(nArg);
const CONCURRENCY = Number(concArg);
const PADDING = 'x'.repeat(Number(payloadArg));
// Pickups before the measured ones (connections, code paths and caches warm).
const PICKUP_WARMUP = 50;
// Pause between a pickup's end and the next add, so that the worker is idle (blocked in
// its fetch) when the job arrives.
const IDLE_PAUSE_MS = 2;

const url = new URL(process.env.REDIS_URL);
// maxRetriesPerRequest: null is what BullMQ requires of a Worker's connection.
const connection = { host: url.hostname, port: Number(url.port), maxRetriesPerRequest: null };

const nowNs = () => process.hrtime.bigint();
const say = (line) => process.stdout.write(`${line}\n`);
const lines = readline.createInterface({ input: process.stdin })[Symbol.asyncIterator]();
async function expect(word) {
  const { value } = await lines.next();
  if ((value || '').trim() !== word) throw new Error(`expected ${word}, got ${value}`);
}
const quantileUs = (samples, q) => {
  const sorted = [...samples].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  return Number(sorted[Math.max(Math.ceil(q * sorted.length) - 1, 0)]) / 1000;
};
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// A stream of events from the handlers: waitEvent(kind) resolves with the next one's time.
const events = [];
let waiter = null;
function emit(kind, t) {
  events.push([kind, t]);
  if (waiter) waiter();
}
async function waitEvent(kind) {
  for (;;) {
    while (events.length) {
      const [k, t] = events.shift();
      if (k === kind) return t;
    }
    await new Promise((r) => (waiter = r));
    waiter = null;
  }
}

let openGates;
const gatesOpen = new Promise((r) => (openGates = r));

async function handler(job) {
  switch (job.name) {
    case 'gate':
      emit('gate', nowNs());
      await gatesOpen;
      return;
    case 'pickup':
      emit('start', nowNs());
      return;
    default:
      emit('end', nowNs());
  }
}

async function main() {
  switch (role) {
    case 'single': {
      const queue = new Queue('single', { connection });
      for (let i = 0; i < Math.max(Math.floor(N / 20), 1); i++) await queue.add('noop', [i, PADDING]);
      say('ready');
      await expect('go');
      const samples = [];
      for (let i = 0; i < N; i++) {
        const start = nowNs();
        await queue.add('noop', [i, PADDING]);
        samples.push(nowNs() - start);
      }
      say(`done ${JSON.stringify({ p50_us: quantileUs(samples, 0.5), p99_us: quantileUs(samples, 0.99) })}`);
      await expect('quit');
      await queue.close();
      break;
    }
    case 'bulk': {
      const queue = new Queue('drain', { connection });
      for (let i = 0; i < CONCURRENCY; i++) await queue.add('gate', []);
      say('ready');
      await expect('go');
      const jobs = Array.from({ length: N }, (_, i) => ({ name: 'noop', data: [i, PADDING] }));
      const start = nowNs();
      await queue.addBulk(jobs);
      say(`done ${JSON.stringify({ seconds: Number(nowNs() - start) / 1e9 })}`);
      await expect('quit');
      await queue.close();
      break;
    }
    case 'worker': {
      const worker = new Worker('drain', handler, { connection, concurrency: CONCURRENCY });
      await worker.waitUntilReady();
      say('ready');
      for (let i = 0; i < CONCURRENCY; i++) await waitEvent('gate');
      say('gated');
      await expect('go');
      openGates();
      const first = await waitEvent('end');
      let last = first;
      for (let i = 1; i < N; i++) last = await waitEvent('end');
      say(`done ${JSON.stringify({ first_end_ns: Number(first), last_end_ns: Number(last) })}`);
      await expect('quit');
      await worker.close();
      break;
    }
    case 'pickup': {
      const worker = new Worker('pickup', handler, { connection, concurrency: CONCURRENCY });
      const queue = new Queue('pickup', { connection });
      await worker.waitUntilReady();
      await queue.waitUntilReady();
      say('ready');
      await expect('go');
      const samples = [];
      for (let i = 0; i < PICKUP_WARMUP + N; i++) {
        await sleep(IDLE_PAUSE_MS);
        const start = nowNs();
        await queue.add('pickup', [i, PADDING]);
        const started = await waitEvent('start');
        if (i >= PICKUP_WARMUP) samples.push(started - start);
      }
      say(`done ${JSON.stringify({ p50_us: quantileUs(samples, 0.5), p99_us: quantileUs(samples, 0.99) })}`);
      await expect('quit');
      await queue.close();
      await worker.close();
      break;
    }
    default:
      throw new Error(`unknown role ${role}`);
  }
}

main().then(
  () => process.exit(0),
  (e) => {
    console.error(e);
    process.exit(1);
  },
);
