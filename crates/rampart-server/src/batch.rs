//! Dynamic batching (`[[models]] batch = { max_batch, max_delay_us }`): requests for one model are gathered
//! for at most `max_delay_us` or until `max_batch` rows, scored in one backend call, and the results split
//! back to their requests, as Triton's dynamic batcher does.
//!
//! Where batches run: with `max_delay_us = 0` (the default) nothing waits, so a batch is scored by a task on
//! the async runtime, started by the request that finds no batch being drained; it takes what has queued,
//! scores it, yields so that requests parsed meanwhile can queue for the next batch, and stops when the queue
//! is empty. Every hand-off stays inside the runtime (a wake is a push onto a worker's run queue): a
//! dedicated thread cost two OS context switches a batch, and on the benchmark's 2-core VM those were a
//! sixth of that thread's time. With `max_delay_us > 0` a batch waits for company for a few hundred
//! microseconds, finer than the runtime's millisecond timer, so that gathering runs on a thread of its own.
//! Either way requests queue in a bounded queue; a full queue is a 503 `overloaded` at once rather than a
//! wait.
//!
//! Adaptive: a request that finds no other request of its model in flight (between routing and its answer;
//! see `Batcher::track`) is scored at once on its own task, with no hand-off, so a lone caller does not
//! pay the hand-off (concurrency 1: 37 µs at p50 on the full-defense bench when every request went through
//! the thread). Only when requests overlap do they queue for the thread, and then one call per batch
//! instead of one per request pays: +21 % throughput at concurrency 64 on the benchmark's 30-feature model
//! (27.5k → 33.4k req/s), more for models whose per-call cost is large against their per-row cost. Hence
//! on by default (`max_batch = 32`, `max_delay_us = 0`: no waiting, only the requests that queued by
//! themselves); `max_batch = 1` turns it off.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, RecvTimeoutError, SyncSender, TrySendError};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde::Deserialize;
use tokio::sync::oneshot;

use rampart_core::{GuardId, Reason, Rejection};
use rampart_model::{Backend, Output, RunError};

/// `[[models]] batch`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BatchConfig {
    /// Rows per backend call at most (a request is never split: one larger than this runs alone). Default
    /// 32; 1 turns batching off (every request calls the model on its own task).
    #[serde(default = "default_max_batch")]
    pub max_batch: usize,
    /// How long the first request of a batch waits for others, in microseconds. 0: take only what is
    /// already queued (no added latency; batches form only when requests queue up on their own).
    #[serde(default)]
    pub max_delay_us: u64,
    /// Requests waiting for the batcher before new ones are refused with 503 `overloaded`. Default 1024.
    #[serde(default = "default_queue")]
    pub queue: usize,
}

fn default_queue() -> usize {
    1024
}

fn default_max_batch() -> usize {
    32
}

impl Default for BatchConfig {
    fn default() -> Self {
        Self {
            max_batch: default_max_batch(),
            max_delay_us: 0,
            queue: default_queue(),
        }
    }
}

impl BatchConfig {
    /// Config errors, as `(field, problem)`.
    pub(crate) fn problems(&self) -> Vec<(&'static str, &'static str)> {
        let mut p = Vec::new();
        if self.max_batch == 0 {
            p.push(("max_batch", "must be at least 1 (1 turns batching off)"));
        }
        if self.max_batch > 4096 {
            p.push(("max_batch", "must be at most 4096"));
        }
        if self.max_delay_us > 100_000 {
            p.push(("max_delay_us", "must be at most 100000 (0.1 s)"));
        }
        if self.queue == 0 {
            p.push(("queue", "must be at least 1"));
        }
        p
    }
}

/// One request waiting for the batcher.
struct Job {
    rows: Vec<f32>,
    n_rows: usize,
    reply: oneshot::Sender<Result<Output, RunError>>,
}

/// The request path's handle on a model's batcher. A batching thread ends when the last handle is dropped
/// (a hot swap drops the old version's); a draining task ends when its queue is empty.
pub(crate) struct Batcher {
    gather: Gather,
    name: Arc<str>,
    /// Called in place when a request finds nothing else in flight.
    backend: Arc<dyn Backend>,
    /// Requests of this model between the start and the end of their model call.
    in_flight: AtomicUsize,
}

/// How jobs reach a batch.
enum Gather {
    /// `max_delay_us = 0`: drained by a task on the runtime.
    Runtime(Arc<RuntimeQueue>),
    /// `max_delay_us > 0`: gathered and scored by the model's batching thread.
    Thread(SyncSender<Job>),
}

/// The queue a runtime task drains (`max_delay_us = 0`).
struct RuntimeQueue {
    backend: Arc<dyn Backend>,
    max_batch: usize,
    capacity: usize,
    state: parking_lot::Mutex<QueueState>,
}

#[derive(Default)]
struct QueueState {
    jobs: VecDeque<Job>,
    /// A task is draining: a job queued now is in its next batch. Set and cleared under the lock, together
    /// with the look at `jobs`, so no job is left queued with no task to drain it.
    draining: bool,
}

impl RuntimeQueue {
    /// Queues `job`; returns whether the caller must start a draining task.
    fn push(&self, job: Job) -> Result<bool, BatchError> {
        let mut state = self.state.lock();
        if state.jobs.len() >= self.capacity {
            return Err(BatchError::Full);
        }
        state.jobs.push_back(job);
        Ok(!std::mem::replace(&mut state.draining, true))
    }

    /// Scores batches until the queue is empty.
    async fn drain(self: Arc<Self>) {
        let mut guard = Draining {
            queue: &self,
            armed: true,
        };
        let width = self.backend.info().width;
        let mut jobs: Vec<Job> = Vec::with_capacity(self.max_batch);
        let mut rows: Vec<f32> = Vec::with_capacity(self.max_batch * width);
        loop {
            let n = {
                let mut state = self.state.lock();
                let mut n = 0;
                while n < self.max_batch {
                    let Some(job) = state.jobs.pop_front() else {
                        break;
                    };
                    n += job.n_rows;
                    jobs.push(job);
                }
                if jobs.is_empty() {
                    state.draining = false;
                    guard.armed = false;
                    return;
                }
                n
            };
            score(&*self.backend, &mut jobs, &mut rows, n);
            // Requests parsed while this batch ran queue up for the next one; answered ones go on.
            tokio::task::yield_now().await;
        }
    }
}

/// Clears `draining` if a draining task ends early (its runtime shutting down, or a backend that panics),
/// refusing what is queued, so later requests start a new task instead of waiting for a gone one.
struct Draining<'a> {
    queue: &'a RuntimeQueue,
    armed: bool,
}

impl Drop for Draining<'_> {
    fn drop(&mut self) {
        if self.armed {
            let mut state = self.queue.state.lock();
            state.draining = false;
            // Dropping a job's reply answers its request with `Stopped`.
            state.jobs.clear();
        }
    }
}

/// Why a batched call did not produce an output.
#[derive(Debug, thiserror::Error)]
pub(crate) enum BatchError {
    /// The queue is full.
    #[error("the batching queue is full")]
    Full,
    /// The batching thread, or the task draining the queue, has stopped.
    #[error("the batcher has stopped")]
    Stopped,
    /// The backend failed on the batch.
    #[error("{0}")]
    Run(RunError),
}

impl BatchError {
    /// The refusal the request ends in.
    pub(crate) fn rejection(&self) -> Rejection {
        match self {
            BatchError::Full => Rejection::new(Reason::Overloaded, GuardId::MODEL),
            BatchError::Stopped | BatchError::Run(_) => rampart_pipeline::model_unavailable(),
        }
    }
}

impl Batcher {
    /// The batcher for `backend`: a queue drained on the runtime, or with `max_delay_us > 0` a batching
    /// thread, started here.
    pub(crate) fn spawn(backend: Arc<dyn Backend>, config: BatchConfig) -> std::io::Result<Self> {
        let name: Arc<str> = Arc::from(backend.info().name.as_str());
        let gather = if config.max_delay_us == 0 {
            Gather::Runtime(Arc::new(RuntimeQueue {
                backend: Arc::clone(&backend),
                max_batch: config.max_batch,
                capacity: config.queue,
                state: parking_lot::Mutex::default(),
            }))
        } else {
            let (tx, rx) = mpsc::sync_channel::<Job>(config.queue);
            let for_thread = Arc::clone(&backend);
            std::thread::Builder::new()
                .name("rampart-batch".into())
                .spawn(move || run(&*for_thread, &rx, config))?;
            Gather::Thread(tx)
        };
        Ok(Self {
            gather,
            name,
            backend,
            in_flight: AtomicUsize::new(0),
        })
    }

    /// Counts a request of this model as in flight until the guard is dropped. The gateway holds one from
    /// routing to the answer (the audit commit included): a request waiting for its fsync is one whose model
    /// call could have shared a batch with the next.
    pub(crate) fn track(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::AcqRel);
        InFlight {
            counter: &self.in_flight,
        }
    }

    /// Scores `rows`: at once on the caller's task when no other request of the model is in flight (the
    /// caller's own [`Batcher::track`] guard aside), as part of the next batch otherwise.
    pub(crate) async fn predict(&self, rows: &[f32], n_rows: usize) -> Result<Output, BatchError> {
        if self.in_flight.load(Ordering::Acquire) <= 1 {
            return self.backend.predict(rows, n_rows).map_err(BatchError::Run);
        }
        self.queue(rows, n_rows).await
    }

    /// Scores `rows` as part of the next batch.
    async fn queue(&self, rows: &[f32], n_rows: usize) -> Result<Output, BatchError> {
        let (reply, answer) = oneshot::channel();
        let job = Job {
            rows: rows.to_vec(),
            n_rows,
            reply,
        };
        match &self.gather {
            Gather::Runtime(queue) => {
                if queue.push(job)? {
                    tokio::spawn(Arc::clone(queue).drain());
                }
            }
            Gather::Thread(tx) => match tx.try_send(job) {
                Ok(()) => {}
                Err(TrySendError::Full(_)) => return Err(BatchError::Full),
                Err(TrySendError::Disconnected(_)) => return Err(BatchError::Stopped),
            },
        }
        match answer.await {
            Ok(Ok(output)) => Ok(output),
            Ok(Err(e)) => Err(BatchError::Run(e)),
            Err(_) => Err(BatchError::Stopped),
        }
    }

    /// The model's name, for logs.
    pub(crate) fn name(&self) -> &str {
        &self.name
    }
}

/// A request of a batched model in flight, for as long as it lives (dropped on every path, a cancelled
/// request's too).
pub(crate) struct InFlight<'a> {
    counter: &'a AtomicUsize,
}

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.counter.fetch_sub(1, Ordering::AcqRel);
    }
}

/// The batching loop: wait for a first job, gather until the batch is full or the delay is spent, score,
/// answer, repeat.
fn run(backend: &dyn Backend, rx: &mpsc::Receiver<Job>, config: BatchConfig) {
    let width = backend.info().width;
    let delay = Duration::from_micros(config.max_delay_us);
    let mut jobs: Vec<Job> = Vec::with_capacity(config.max_batch);
    let mut rows: Vec<f32> = Vec::with_capacity(config.max_batch * width);
    while let Ok(first) = rx.recv() {
        let deadline = Instant::now() + delay;
        let mut n = first.n_rows;
        jobs.push(first);
        while n < config.max_batch {
            let next = if delay.is_zero() {
                rx.try_recv().map_err(|_| RecvTimeoutError::Timeout)
            } else {
                match deadline.checked_duration_since(Instant::now()) {
                    Some(left) => rx.recv_timeout(left),
                    None => rx.try_recv().map_err(|_| RecvTimeoutError::Timeout),
                }
            };
            match next {
                // A job that would overflow the batch still joins it: splitting a request's rows over two
                // calls would buy nothing, and leaving it for later would need a second queue.
                Ok(job) => {
                    n += job.n_rows;
                    jobs.push(job);
                }
                Err(_) => break,
            }
        }
        score(backend, &mut jobs, &mut rows, n);
    }
}

/// Runs one batch and answers each job with its own rows of the output.
fn score(backend: &dyn Backend, jobs: &mut Vec<Job>, rows: &mut Vec<f32>, n: usize) {
    if jobs.len() == 1 {
        if let Some(job) = jobs.pop() {
            let out = backend.predict(&job.rows, job.n_rows);
            // The requester may have gone (client disconnected): nothing to answer.
            let _ = job.reply.send(out);
        }
        return;
    }
    rows.clear();
    for job in jobs.iter() {
        rows.extend_from_slice(&job.rows);
    }
    match backend.predict(rows, n) {
        Ok(output) => {
            let columns = output.kind.columns();
            let mut at = 0;
            for job in jobs.drain(..) {
                let values = output
                    .values
                    .get(at * columns..(at + job.n_rows) * columns)
                    .map(<[f32]>::to_vec);
                let labels = output
                    .labels
                    .as_ref()
                    .map(|l| l.get(at..at + job.n_rows).map(<[i64]>::to_vec));
                let part = match (values, labels) {
                    (Some(values), None) => Ok(Output {
                        n_rows: job.n_rows,
                        kind: output.kind,
                        values,
                        labels: None,
                    }),
                    (Some(values), Some(Some(labels))) => Ok(Output {
                        n_rows: job.n_rows,
                        kind: output.kind,
                        values,
                        labels: Some(labels),
                    }),
                    _ => Err(RunError::Model {
                        model: backend.info().name.clone(),
                        reason: format!("the batched output has fewer rows than the {n} rows sent"),
                    }),
                };
                let _ = job.reply.send(part);
                at += job.n_rows;
            }
        }
        Err(e) => {
            let msg = e.to_string();
            for job in jobs.drain(..) {
                let _ = job.reply.send(Err(RunError::Model {
                    model: backend.info().name.clone(),
                    reason: format!("batched call failed: {msg}"),
                }));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use parking_lot::Mutex;

    use rampart_model::{ModelInfo, ModelKind};

    use super::*;

    /// Two features; class 1's probability is the first feature. Records the rows of each call.
    struct Recording {
        info: ModelInfo,
        calls: Mutex<Vec<usize>>,
        /// Held by a test to keep the batcher inside a call.
        gate: Mutex<()>,
    }

    impl Recording {
        fn new() -> Self {
            Self {
                info: ModelInfo {
                    name: "recording".into(),
                    input_name: "x".into(),
                    width: 2,
                    kind: ModelKind::Classifier { classes: 2 },
                    outputs: vec!["probabilities".into()],
                    values_output: "probabilities".into(),
                    labels_output: None,
                    opset: 0,
                    ops: Vec::new(),
                },
                calls: Mutex::new(Vec::new()),
                gate: Mutex::new(()),
            }
        }
    }

    impl Backend for Recording {
        fn info(&self) -> &ModelInfo {
            &self.info
        }
        fn predict(&self, rows: &[f32], n_rows: usize) -> Result<Output, RunError> {
            let _wait = self.gate.lock();
            self.calls.lock().push(n_rows);
            let values = rows
                .chunks_exact(2)
                .flat_map(|r| [1.0 - r[0], r[0]])
                .collect();
            Ok(Output {
                n_rows,
                kind: self.info.kind,
                values,
                labels: None,
            })
        }
    }

    #[tokio::test]
    async fn concurrent_requests_share_a_call_and_get_their_own_rows() {
        // On the thread that waits for company, and on the runtime with no wait.
        for max_delay_us in [50_000, 0] {
            share_a_call(max_delay_us).await;
        }
    }

    #[tokio::test]
    async fn a_drain_that_ends_early_refuses_what_is_queued_and_the_next_request_starts_another() {
        let backend = Arc::new(Recording::new());
        let queue = Arc::new(RuntimeQueue {
            backend: backend.clone(),
            max_batch: 4,
            capacity: 8,
            state: parking_lot::Mutex::default(),
        });
        let (reply, answer) = oneshot::channel();
        let job = Job {
            rows: vec![0.5, 0.0],
            n_rows: 1,
            reply,
        };
        assert!(queue.push(job).unwrap_or_else(|e| panic!("{e}")));
        // A draining task dropped before its first poll, as at runtime shutdown.
        drop(Draining {
            queue: &queue,
            armed: true,
        });
        assert!(
            answer.await.is_err(),
            "the queued job is answered, not left waiting"
        );
        let (reply, answer) = oneshot::channel();
        let job = Job {
            rows: vec![0.5, 0.0],
            n_rows: 1,
            reply,
        };
        assert!(
            queue.push(job).unwrap_or_else(|e| panic!("{e}")),
            "a new drain is started"
        );
        tokio::spawn(Arc::clone(&queue).drain());
        let out = answer.await.unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(out.map(|o| o.values).ok(), Some(vec![0.5, 0.5]));
    }

    async fn share_a_call(max_delay_us: u64) {
        let backend = Arc::new(Recording::new());
        let config = BatchConfig {
            max_batch: 64,
            max_delay_us,
            queue: 64,
        };
        let batcher = Batcher::spawn(backend.clone(), config).unwrap_or_else(|e| panic!("{e}"));
        // Request i sends i + 1 rows whose first feature encodes (request, row).
        let inputs: Vec<Vec<f32>> = (0..8)
            .map(|i| {
                (0..=i)
                    .flat_map(|r| [(i * 10 + r) as f32 / 100.0, 0.0])
                    .collect()
            })
            .collect();
        // Eight requests in flight at once, as the gateway tracks them from routing on.
        let guards: Vec<_> = inputs.iter().map(|_| batcher.track()).collect();
        let answers = futures_util::future::join_all(
            inputs
                .iter()
                .map(|rows| batcher.predict(rows, rows.len() / 2)),
        )
        .await;
        drop(guards);
        for (rows, answer) in inputs.iter().zip(answers) {
            let out = answer.unwrap_or_else(|e| panic!("{e}"));
            assert_eq!(out.n_rows, rows.len() / 2);
            let expected: Vec<f32> = rows
                .chunks_exact(2)
                .flat_map(|r| [1.0 - r[0], r[0]])
                .collect();
            assert_eq!(out.values, expected);
        }
        let calls = backend.calls.lock().clone();
        assert_eq!(
            calls.iter().sum::<usize>(),
            36,
            "every row scored once: {calls:?}"
        );
        assert!(
            calls.len() < 8,
            "the overlapping requests were batched: {calls:?}"
        );

        // A request alone in flight is scored at once, on the caller's task, with no hand-off.
        let before = backend.calls.lock().len();
        let _alone = batcher.track();
        let out = batcher.predict(&[0.25, 0.0], 1).await;
        assert_eq!(out.map(|o| o.values).ok(), Some(vec![0.75, 0.25]));
        assert_eq!(backend.calls.lock().len(), before + 1);
    }

    // Two workers: the draining task blocks one inside the held model call while this test's task sends.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    // The lock is the model's gate, held on purpose while this test's task sends: only the draining task,
    // on the other worker, takes it.
    #[allow(clippy::await_holding_lock)]
    async fn a_full_queue_is_refused_not_waited_for() {
        let backend = Arc::new(Recording::new());
        let config = BatchConfig {
            max_batch: 2,
            max_delay_us: 0,
            queue: 1,
        };
        let batcher = Batcher::spawn(backend.clone(), config).unwrap_or_else(|e| panic!("{e}"));
        let row = [0.5f32, 0.0];
        let all = futures_util::future::join_all((0..6).map(|_| batcher.queue(&row, 1)));
        tokio::pin!(all);
        {
            // The batcher is held inside its first call while all six are sent: it holds at most one batch
            // of two, the queue one more, so three or more must be refused at once.
            let _held = backend.gate.lock();
            let sent = tokio::time::timeout(Duration::from_millis(20), &mut all).await;
            assert!(sent.is_err(), "nothing can finish while the model is held");
        }
        let answers = all.await;
        let full = answers
            .iter()
            .filter(|a| matches!(a, Err(BatchError::Full)))
            .count();
        assert!(full >= 3, "{full} of six refused");
        assert!(answers.iter().any(Result::is_ok));
        assert_eq!(BatchError::Full.rejection().reason, Reason::Overloaded);
    }

    #[test]
    fn bad_settings_are_named() {
        let c = BatchConfig {
            max_batch: 0,
            max_delay_us: 200_000,
            queue: 0,
        };
        let fields: Vec<&str> = c.problems().iter().map(|(f, _)| *f).collect();
        assert_eq!(fields, ["max_batch", "max_delay_us", "queue"]);
    }
}
