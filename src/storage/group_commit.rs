//! Group commit: one writer (an async task, or an OS thread for a blocking backend), one
//! transaction and one durable commit for everything pending.
//!
//! Callers `submit` a write and wait for its answer. The writer takes the first pending write,
//! then every other write already queued (up to `max_batch`; a blocking writer also stops at
//! [`BlockingCommitter::MAX_GROUP_WEIGHT`], e.g. readings), and hands them to the backend as
//! one group. Under load many requests share one fsync (embedded) or one round of DynamoDB
//! transactions, so concurrency raises throughput instead of queueing commits. Each write carries
//! its own reply channel, and the backend answers it only after the group is durable.
//!
//! Load shedding: a write is refused at once (`Unavailable`, so 503 + `Retry-After`) instead
//! of queueing when the queue is full, or when the writer is behind — the group it took last
//! had waited longer than [`MAX_QUEUE_WAIT`], or its current group has been committing longer
//! than that while writes wait. A refused write was never queued, so nothing acknowledged is
//! lost, and the writes already queued are committed and answered as usual. See [`Pressure`].

use std::future::Future;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use tokio::sync::mpsc;

use super::StorageError;

/// How long a write may wait in the queue before new writes are refused.
pub const MAX_QUEUE_WAIT: Duration = Duration::from_secs(1);

/// How far behind the writer is, for load shedding: shared by the senders and the writer.
struct Pressure {
    started: Instant,
    /// Writes queued and not yet taken.
    pending: AtomicUsize,
    /// The writer waits for writes (the queue is empty).
    waiting: AtomicBool,
    /// Microseconds since `started` when the writer took its last group.
    last_take: AtomicU64,
    /// Microseconds the oldest write of the last group had waited.
    last_wait: AtomicU64,
}

impl Pressure {
    fn new() -> Self {
        Self {
            started: Instant::now(),
            pending: AtomicUsize::new(0),
            waiting: AtomicBool::new(true),
            last_take: AtomicU64::new(0),
            last_wait: AtomicU64::new(0),
        }
    }

    fn micros(&self, at: Instant) -> u64 {
        u64::try_from(at.saturating_duration_since(self.started).as_micros()).unwrap_or(u64::MAX)
    }

    /// Why a new write should be refused now, if it should.
    fn overloaded(&self) -> Option<&'static str> {
        if self.pending.load(Ordering::Relaxed) == 0 || self.waiting.load(Ordering::Relaxed) {
            return None;
        }
        let bound = u64::try_from(MAX_QUEUE_WAIT.as_micros()).unwrap_or(u64::MAX);
        let busy_for = self
            .micros(Instant::now())
            .saturating_sub(self.last_take.load(Ordering::Relaxed));
        (busy_for > bound || self.last_wait.load(Ordering::Relaxed) > bound)
            .then_some("the storage writer is overloaded; retry later")
    }

    /// The writer took a group of `size` writes, the oldest queued at `oldest`.
    fn taken(&self, size: usize, oldest: Instant) {
        let now = Instant::now();
        self.pending.fetch_sub(size, Ordering::Relaxed);
        self.last_take.store(self.micros(now), Ordering::Relaxed);
        let waited = u64::try_from(now.saturating_duration_since(oldest).as_micros());
        self.last_wait
            .store(waited.unwrap_or(u64::MAX), Ordering::Relaxed);
    }
}

/// A storage backend's write side: makes a group of writes durable, then answers each of them.
pub trait Committer: Send + 'static {
    type Write: Send + 'static;

    /// Applies every write of `group` and answers each write's caller once it is durable.
    fn commit(&mut self, group: Vec<Self::Write>) -> impl Future<Output = ()> + Send;
}

/// A write side that blocks (file I/O, fsync): runs on its own OS thread, see
/// [`GroupCommit::spawn_thread`].
pub trait BlockingCommitter: Send + 'static {
    type Write: Send + 'static;

    /// Applies every write of `group` and answers each write's caller once it is durable.
    fn commit(&mut self, group: Vec<Self::Write>);

    /// Called once when every sender is gone, after the last group (e.g. a final checkpoint).
    fn finish(&mut self) {}

    /// A group stops taking writes once their [`Self::weight`]s add up to this (so it may pass
    /// it by one write), besides the writer's `max_batch` writes: bounds a commit's work, and
    /// the time and memory its writes wait in, by what they carry, not by how many they are.
    const MAX_GROUP_WEIGHT: usize = usize::MAX;

    /// What one write carries towards [`Self::MAX_GROUP_WEIGHT`] (e.g. its readings).
    fn weight(_write: &Self::Write) -> usize {
        1
    }
}

/// Called with the number of writes in each group, e.g. to feed a histogram.
pub type GroupObserver = Box<dyn Fn(usize) + Send + Sync>;

/// An observer that ignores group sizes (tests, benchmarks).
pub fn unobserved() -> GroupObserver {
    Box::new(|_| {})
}

/// The sending side: cheap to clone, shared by every request handler.
pub struct GroupCommit<W> {
    sender: mpsc::Sender<(Instant, W)>,
    pressure: Arc<Pressure>,
}

impl<W> Clone for GroupCommit<W> {
    fn clone(&self) -> Self {
        Self {
            sender: self.sender.clone(),
            pressure: self.pressure.clone(),
        }
    }
}

impl<W: Send + 'static> GroupCommit<W> {
    /// Spawns the writer task. `queue` bounds pending writes (back-pressure on callers);
    /// `max_batch` bounds one group, so one transaction stays a bounded amount of work.
    pub fn spawn<C>(
        mut committer: C,
        queue: usize,
        max_batch: usize,
        on_group: GroupObserver,
    ) -> Self
    where
        C: Committer<Write = W>,
    {
        let (sender, mut receiver) = mpsc::channel::<(Instant, W)>(queue);
        let pressure = Arc::new(Pressure::new());
        let writer_pressure = pressure.clone();
        tokio::spawn(async move {
            let mut queued = Vec::with_capacity(max_batch);
            // `recv_many` waits for at least one write, then takes what is already queued.
            while receiver.recv_many(&mut queued, max_batch).await > 0 {
                writer_pressure.waiting.store(false, Ordering::Relaxed);
                writer_pressure.taken(queued.len(), queued[0].0);
                let group: Vec<W> = queued.drain(..).map(|(_, write)| write).collect();
                on_group(group.len());
                committer.commit(group).await;
                writer_pressure
                    .waiting
                    .store(receiver.is_empty(), Ordering::Relaxed);
            }
        });
        Self { sender, pressure }
    }

    /// Like [`Self::spawn`], but the writer is a dedicated OS thread named `name` that blocks on
    /// the queue and commits synchronously: no async task and no `spawn_blocking` hand-off per
    /// group, so a group costs two cross-thread wake-ups (the first write wakes the thread, the
    /// answers wake the callers) instead of four. Needs no runtime of its own; `submit` stays
    /// async for the callers. The thread ends, after [`BlockingCommitter::finish`], once every
    /// clone of the returned handle is dropped; join it to wait for that.
    pub fn spawn_thread<C>(
        mut committer: C,
        name: &str,
        queue: usize,
        max_batch: usize,
        on_group: GroupObserver,
    ) -> std::io::Result<(Self, std::thread::JoinHandle<()>)>
    where
        C: BlockingCommitter<Write = W>,
    {
        let (sender, mut receiver) = mpsc::channel::<(Instant, W)>(queue);
        let pressure = Arc::new(Pressure::new());
        let writer_pressure = pressure.clone();
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                // `blocking_recv` waits for at least one write, `try_recv` takes what is queued.
                while let Some((oldest, first)) = receiver.blocking_recv() {
                    writer_pressure.waiting.store(false, Ordering::Relaxed);
                    let mut group = Vec::with_capacity(max_batch.min(64));
                    let mut weight = C::weight(&first);
                    group.push(first);
                    while group.len() < max_batch && weight < C::MAX_GROUP_WEIGHT {
                        match receiver.try_recv() {
                            Ok((_, write)) => {
                                weight = weight.saturating_add(C::weight(&write));
                                group.push(write);
                            }
                            Err(_) => break,
                        }
                    }
                    writer_pressure.taken(group.len(), oldest);
                    on_group(group.len());
                    committer.commit(group);
                    writer_pressure
                        .waiting
                        .store(receiver.is_empty(), Ordering::Relaxed);
                }
                committer.finish();
            })?;
        Ok((Self { sender, pressure }, thread))
    }

    /// Queues a write from a thread outside the runtime (blocks while the queue is full; never
    /// shed: the start-up rollup build uses it).
    pub fn submit_blocking(&self, write: W) -> Result<(), StorageError> {
        self.pressure.pending.fetch_add(1, Ordering::Relaxed);
        self.sender
            .blocking_send((Instant::now(), write))
            .map_err(|_| {
                self.pressure.pending.fetch_sub(1, Ordering::Relaxed);
                StorageError::Unavailable("the storage writer has stopped".into())
            })
    }

    /// `Unavailable` when a write submitted now would be refused because the writer is behind
    /// or the queue is full: lets a route refuse a write before it spends CPU on parsing and
    /// validating a body that could not be queued anyway. A hint only: [`Self::submit`] checks
    /// again.
    pub fn accepting(&self) -> Result<(), StorageError> {
        if let Some(reason) = self.pressure.overloaded() {
            return Err(StorageError::Unavailable(reason.into()));
        }
        if self.sender.capacity() == 0 {
            return Err(StorageError::Unavailable(
                "the storage write queue is full; retry later".into(),
            ));
        }
        Ok(())
    }

    /// Queues a write, or refuses it at once (`Unavailable`) when the queue is full or the
    /// writer is behind (see the module documentation), or the writer is gone.
    pub async fn submit(&self, write: W) -> Result<(), StorageError> {
        if let Some(reason) = self.pressure.overloaded() {
            return Err(StorageError::Unavailable(reason.into()));
        }
        self.pressure.pending.fetch_add(1, Ordering::Relaxed);
        self.sender
            .try_send((Instant::now(), write))
            .map_err(|error| {
                self.pressure.pending.fetch_sub(1, Ordering::Relaxed);
                StorageError::Unavailable(match error {
                    mpsc::error::TrySendError::Full(_) => {
                        "the storage write queue is full; retry later".into()
                    }
                    mpsc::error::TrySendError::Closed(_) => "the storage writer has stopped".into(),
                })
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::sync::oneshot;

    /// Records the size of every group and answers with the group's sequence number.
    struct Recorder {
        groups: Arc<Mutex<Vec<usize>>>,
    }

    impl Committer for Recorder {
        type Write = oneshot::Sender<usize>;

        async fn commit(&mut self, group: Vec<Self::Write>) {
            record_and_answer(&self.groups, group);
        }
    }

    /// Queues `n` writes; returns their answers.
    async fn submit_many(
        writer: &GroupCommit<oneshot::Sender<usize>>,
        n: usize,
    ) -> Vec<oneshot::Receiver<usize>> {
        let mut answers = Vec::new();
        for _ in 0..n {
            let (reply, answer) = oneshot::channel();
            writer.submit(reply).await.unwrap();
            answers.push(answer);
        }
        answers
    }

    /// Records a group's size and answers each of its writes with the group's number.
    fn record_and_answer(groups: &Mutex<Vec<usize>>, group: Vec<oneshot::Sender<usize>>) {
        let sequence = {
            let mut groups = groups.lock().unwrap();
            groups.push(group.len());
            groups.len()
        };
        for reply in group {
            let _ = reply.send(sequence);
        }
    }

    /// A recorder whose first commit waits for the gate, so the next writes queue up behind it.
    struct Gate(Option<oneshot::Receiver<()>>, Recorder);

    impl Committer for Gate {
        type Write = oneshot::Sender<usize>;
        async fn commit(&mut self, group: Vec<Self::Write>) {
            if let Some(gate) = self.0.take() {
                let _ = gate.await;
            }
            self.1.commit(group).await;
        }
    }

    /// A full queue and a writer stuck on one group refuse new writes at once; the queued ones
    /// are committed and answered when the writer moves on, and writes are taken again after.
    #[tokio::test]
    async fn a_full_queue_or_a_stuck_writer_sheds_new_writes_and_loses_no_queued_one() {
        let (hold, release) = oneshot::channel::<()>();
        let groups = Arc::new(Mutex::new(Vec::new()));
        let writer = GroupCommit::spawn(
            Gate(
                Some(release),
                Recorder {
                    groups: groups.clone(),
                },
            ),
            4,
            16,
            unobserved(),
        );
        let mut answers = Vec::new();
        let (reply, answer) = oneshot::channel();
        writer.submit(reply).await.unwrap();
        answers.push(answer);
        // The writer takes the first write and blocks on it; four more fill the queue.
        while writer.pressure.waiting.load(Ordering::Relaxed) {
            tokio::task::yield_now().await;
        }
        assert!(writer.accepting().is_ok(), "room in the queue");
        answers.extend(submit_many(&writer, 4).await);
        assert!(
            matches!(writer.accepting(), Err(StorageError::Unavailable(_))),
            "a full queue is announced before a write is submitted"
        );
        let (reply, _refused) = oneshot::channel();
        let error = writer.submit(reply).await.unwrap_err();
        assert!(matches!(error, StorageError::Unavailable(_)), "{error:?}");
        hold.send(()).unwrap();
        for answer in answers {
            answer.await.expect("every queued write is answered");
        }
        assert_eq!(groups.lock().unwrap().iter().sum::<usize>(), 5);
        let (reply, answer) = oneshot::channel();
        writer
            .submit(reply)
            .await
            .expect("taken again once the queue drained");
        answer.await.unwrap();
        assert!(writer.accepting().is_ok(), "accepting again");
    }

    #[test]
    fn a_writer_behind_its_bound_sheds_and_an_idle_one_never_does() {
        let pressure = Pressure::new();
        assert_eq!(pressure.overloaded(), None, "idle");
        pressure.pending.store(3, Ordering::Relaxed);
        assert_eq!(
            pressure.overloaded(),
            None,
            "writes queued but the writer is waiting"
        );
        pressure.waiting.store(false, Ordering::Relaxed);
        pressure.taken(0, Instant::now());
        assert_eq!(pressure.overloaded(), None, "busy, within the bound");
        pressure.taken(0, Instant::now() - MAX_QUEUE_WAIT * 2);
        assert!(
            pressure.overloaded().is_some(),
            "the last group waited too long"
        );
        pressure.pending.store(0, Ordering::Relaxed);
        assert_eq!(pressure.overloaded(), None, "nothing waits any more");
    }

    /// The thread flavour: queued writes share groups, every caller is answered, `finish` runs.
    #[tokio::test]
    async fn a_writer_thread_groups_pending_writes_and_finishes_when_senders_are_gone() {
        struct Blocking {
            gate: Option<std::sync::mpsc::Receiver<()>>,
            groups: Arc<Mutex<Vec<usize>>>,
            finished: Arc<Mutex<bool>>,
        }
        impl BlockingCommitter for Blocking {
            type Write = oneshot::Sender<usize>;
            fn commit(&mut self, group: Vec<Self::Write>) {
                if let Some(gate) = self.gate.take() {
                    let _ = gate.recv();
                }
                record_and_answer(&self.groups, group);
            }
            fn finish(&mut self) {
                *self.finished.lock().unwrap() = true;
            }
        }
        let (hold, release) = std::sync::mpsc::channel();
        let groups = Arc::new(Mutex::new(Vec::new()));
        let finished = Arc::new(Mutex::new(false));
        let (writer, thread) = GroupCommit::spawn_thread(
            Blocking {
                gate: Some(release),
                groups: groups.clone(),
                finished: finished.clone(),
            },
            "test-writer",
            64,
            16,
            unobserved(),
        )
        .unwrap();
        let answers = submit_many(&writer, 21).await;
        hold.send(()).unwrap();
        for answer in answers {
            answer.await.unwrap();
        }
        let sizes = groups.lock().unwrap().clone();
        assert_eq!(sizes.iter().sum::<usize>(), 21);
        assert!(
            sizes.len() <= 3 && sizes.iter().all(|g| *g <= 16),
            "{sizes:?}"
        );
        drop(writer);
        thread.join().unwrap();
        assert!(
            *finished.lock().unwrap(),
            "finish runs once the senders are gone"
        );
    }

    /// A writer thread whose writes weigh what they say: a group stops growing once it holds
    /// `MAX_GROUP_WEIGHT`, whatever `max_batch` allows, and no write is lost or answered twice.
    #[tokio::test]
    async fn a_group_stops_growing_at_its_weight_bound() {
        struct Weighed {
            gate: Option<std::sync::mpsc::Receiver<()>>,
            groups: Arc<Mutex<Vec<usize>>>,
        }
        impl BlockingCommitter for Weighed {
            type Write = (usize, oneshot::Sender<usize>);
            const MAX_GROUP_WEIGHT: usize = 10;
            fn weight(write: &Self::Write) -> usize {
                write.0
            }
            fn commit(&mut self, group: Vec<Self::Write>) {
                if let Some(gate) = self.gate.take() {
                    let _ = gate.recv();
                }
                let weights: Vec<usize> = group.iter().map(|(weight, _)| *weight).collect();
                let sequence = {
                    let mut groups = self.groups.lock().unwrap();
                    groups.push(weights.iter().sum());
                    groups.len()
                };
                for (_, reply) in group {
                    let _ = reply.send(sequence);
                }
            }
        }
        let (hold, release) = std::sync::mpsc::channel();
        let groups = Arc::new(Mutex::new(Vec::new()));
        let (writer, thread) = GroupCommit::spawn_thread(
            Weighed {
                gate: Some(release),
                groups: groups.clone(),
            },
            "test-weighed-writer",
            64,
            64,
            unobserved(),
        )
        .unwrap();
        // The first group is held at the gate while the rest of the 13 writes (weight 4
        // each) queue up behind it.
        let mut answers = Vec::new();
        for _ in 0..13 {
            let (reply, answer) = oneshot::channel();
            writer.submit((4, reply)).await.unwrap();
            answers.push(answer);
        }
        hold.send(()).unwrap();
        for answer in answers {
            answer.await.expect("every write is answered");
        }
        let sums = groups.lock().unwrap().clone();
        assert_eq!(
            sums.iter().sum::<usize>(),
            13 * 4,
            "every write committed once"
        );
        assert!(
            sums.iter().all(|sum| *sum <= 12),
            "a group takes writes until it holds 10, so at most 3 of 4: {sums:?}"
        );
        assert!(
            sums.iter().skip(1).any(|sum| *sum == 12),
            "queued writes still share groups: {sums:?}"
        );
        drop(writer);
        thread.join().unwrap();
    }

    #[tokio::test]
    async fn pending_writes_share_one_group_and_every_caller_is_answered() {
        let groups = Arc::new(Mutex::new(Vec::new()));
        let (hold, release) = oneshot::channel::<()>();
        // A first write whose commit we hold open, so the next ones queue up behind it.
        let observed = Arc::new(Mutex::new(Vec::new()));
        let sizes = observed.clone();
        let writer = GroupCommit::spawn(
            Gate(
                Some(release),
                Recorder {
                    groups: groups.clone(),
                },
            ),
            64,
            16,
            Box::new(move |size| sizes.lock().unwrap().push(size)),
        );
        let answers = submit_many(&writer, 21).await;
        hold.send(()).unwrap();
        let mut sequences = Vec::new();
        for answer in answers {
            sequences.push(answer.await.unwrap());
        }
        let groups = groups.lock().unwrap().clone();
        assert_eq!(
            groups.iter().sum::<usize>(),
            21,
            "every write committed once"
        );
        assert!(groups.len() <= 3, "21 queued writes took {groups:?} groups");
        assert!(
            groups.iter().all(|g| *g <= 16),
            "max_batch respected: {groups:?}"
        );
        assert!(
            sequences.windows(2).all(|w| w[0] <= w[1]),
            "answers follow commit order"
        );
    }
}
