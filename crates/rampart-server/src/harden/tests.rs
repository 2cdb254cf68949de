#![allow(clippy::unwrap_used, clippy::expect_used)]

use super::*;

#[tokio::test]
async fn pool_refuses_beyond_workers_and_queue() {
    // One worker, no queue: while a call holds the worker, the next is refused at once with 503 overloaded.
    let pool = Arc::new(BlockingPool::new(1, 0));
    let (release, wait) = std::sync::mpsc::channel::<()>();
    let (started_tx, started) = tokio::sync::oneshot::channel::<()>();
    let p = Arc::clone(&pool);
    let first = tokio::spawn(async move {
        p.run(move || {
            let _ = started_tx.send(());
            wait.recv().ok();
            7
        })
        .await
    });
    started.await.unwrap();
    let refused = pool.run(|| 8).await.unwrap_err();
    assert_eq!(refused.reason, Reason::Overloaded);
    assert!(refused.retry_after.is_some());
    release.send(()).unwrap();
    assert_eq!(first.await.unwrap().unwrap(), 7);
    // The slot is free again.
    assert_eq!(pool.run(|| 9).await.unwrap(), 9);
}

#[tokio::test]
async fn queued_calls_wait_for_a_worker() {
    let pool = Arc::new(BlockingPool::new(1, 4));
    let calls: Vec<_> = (0..5)
        .map(|i| {
            let p = Arc::clone(&pool);
            tokio::spawn(async move { p.run(move || i * 2).await })
        })
        .collect();
    let mut got = Vec::new();
    for c in calls {
        got.push(c.await.unwrap().unwrap());
    }
    assert_eq!(got, vec![0, 2, 4, 6, 8]);
}
