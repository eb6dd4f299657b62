//! Group commit: one writer (an async task, or an OS thread for a blocking backend), one
//! transaction and one durable commit for everything pending.
//!
//! Callers `submit` a write and wait for its answer. The writer takes the first pending write,
//! then every other write already queued (up to `max_batch`), and hands them to the backend as
//! one group. Under load many requests share one fsync (embedded) or one round of DynamoDB
//! transactions, so concurrency raises throughput instead of queueing commits. Each write carries
//! its own reply channel, and the backend answers it only after the group is durable.

use std::future::Future;

use tokio::sync::mpsc;

use super::StorageError;

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
}

/// Called with the number of writes in each group, e.g. to feed a histogram.
pub type GroupObserver = Box<dyn Fn(usize) + Send + Sync>;

/// An observer that ignores group sizes (tests, benchmarks).
pub fn unobserved() -> GroupObserver {
    Box::new(|_| {})
}

/// The sending side: cheap to clone, shared by every request handler.
pub struct GroupCommit<W> {
    sender: mpsc::Sender<W>,
}

impl<W> Clone for GroupCommit<W> {
    fn clone(&self) -> Self {
        Self {
            sender: self.sender.clone(),
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
        let (sender, mut receiver) = mpsc::channel::<W>(queue);
        tokio::spawn(async move {
            let mut group = Vec::with_capacity(max_batch);
            // `recv_many` waits for at least one write, then takes what is already queued.
            while receiver.recv_many(&mut group, max_batch).await > 0 {
                on_group(group.len());
                committer.commit(std::mem::take(&mut group)).await;
            }
        });
        Self { sender }
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
        let (sender, mut receiver) = mpsc::channel::<W>(queue);
        let thread = std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                // `blocking_recv` waits for at least one write, `try_recv` takes what is queued.
                while let Some(first) = receiver.blocking_recv() {
                    let mut group = Vec::with_capacity(max_batch.min(64));
                    group.push(first);
                    while group.len() < max_batch {
                        match receiver.try_recv() {
                            Ok(write) => group.push(write),
                            Err(_) => break,
                        }
                    }
                    on_group(group.len());
                    committer.commit(group);
                }
                committer.finish();
            })?;
        Ok((Self { sender }, thread))
    }

    /// Queues a write. Fails only when the writer task is gone.
    pub async fn submit(&self, write: W) -> Result<(), StorageError> {
        self.sender
            .send(write)
            .await
            .map_err(|_| StorageError::Unavailable("the storage writer has stopped".into()))
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

    #[tokio::test]
    async fn pending_writes_share_one_group_and_every_caller_is_answered() {
        let groups = Arc::new(Mutex::new(Vec::new()));
        let (hold, release) = oneshot::channel::<()>();
        // A first write whose commit we hold open, so the next ones queue up behind it.
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
