//! Criterion micro-benchmarks of the pieces every request goes through:
//! - parsing and validating readings (`Reading::parse`, `Batch::parse` of 1 and 100 readings);
//! - exact aggregates (`Aggregate::add`, `Aggregate::merge`, encode/decode);
//! - one durable commit of a 100-reading batch on the embedded store (redb, fsync).
//!
//! Run: `cargo bench --bench micro` (add `-- --quick` for a short run).

use std::hint::black_box;
use std::sync::atomic::{AtomicI64, Ordering};

use criterion::{BatchSize, Criterion, Throughput, criterion_group, criterion_main};
use serde_json::{Value, json};
use telemetry::domain::{Aggregate, Batch, Reading, Temperature};
use telemetry::storage::group_commit::unobserved;
use telemetry::storage::{EmbeddedStore, Store};

fn reading_json(sensor: u32, second: i64, temperature: f64) -> Value {
    let time = chrono::DateTime::from_timestamp(1_633_338_000 + second, 0)
        .expect("valid time")
        .format("%Y-%m-%d %H:%M:%S")
        .to_string();
    json!({"sensorID": sensor.to_string(), "time": time, "temperature": temperature})
}

fn batch_json(start: i64, len: i64) -> Value {
    Value::Array(
        (start..start + len)
            .map(|i| reading_json((i % 16) as u32, i, 20.0 + (i % 100) as f64 / 10.0))
            .collect(),
    )
}

fn parsing(c: &mut Criterion) {
    let mut group = c.benchmark_group("parse");
    let one = reading_json(7, 0, 21.5);
    let rfc3339 =
        json!({"sensorID": 7, "time": "2021-10-04T09:00:00+02:00", "temperature": "21.5"});
    let hundred = batch_json(0, 100);
    let body = serde_json::to_vec(&hundred).expect("serialisable");
    group.throughput(Throughput::Elements(1));
    group.bench_function("Reading::parse naive time", |b| {
        b.iter(|| Reading::parse(black_box(&one)))
    });
    group.bench_function("Reading::parse rfc3339, numeric strings", |b| {
        b.iter(|| Reading::parse(black_box(&rfc3339)))
    });
    group.bench_function("Batch::parse 1", |b| {
        b.iter(|| Batch::parse(black_box(&one)))
    });
    group.throughput(Throughput::Elements(100));
    group.bench_function("Batch::parse 100", |b| {
        b.iter(|| Batch::parse(black_box(&hundred)))
    });
    group.bench_function("serde_json + Batch::parse 100 (body bytes)", |b| {
        b.iter(|| {
            let value: Value = serde_json::from_slice(black_box(&body)).expect("json");
            Batch::parse(&value)
        })
    });
    group.finish();
}

fn aggregates(c: &mut Criterion) {
    let mut group = c.benchmark_group("aggregate");
    let temperatures: Vec<Temperature> = (0..1_000)
        .map(|i| Temperature::from_micros(i * 12_345 - 3_000_000).expect("in range"))
        .collect();
    group.throughput(Throughput::Elements(1_000));
    group.bench_function("add x1000", |b| {
        b.iter(|| {
            let mut aggregate = Aggregate::default();
            for t in black_box(&temperatures) {
                aggregate.add(*t);
            }
            aggregate
        })
    });
    let parts: Vec<Aggregate> = temperatures
        .chunks(10)
        .map(|chunk| Aggregate::of(chunk.iter().copied()))
        .collect();
    group.throughput(Throughput::Elements(parts.len() as u64));
    group.bench_function("merge x100", |b| {
        b.iter(|| {
            black_box(&parts)
                .iter()
                .fold(Aggregate::default(), |acc, p| acc.merge(p))
        })
    });
    let whole = Aggregate::of(temperatures.iter().copied());
    group.throughput(Throughput::Elements(1));
    group.bench_function("encode+decode", |b| {
        b.iter(|| Aggregate::decode(&black_box(&whole).encode()))
    });
    group.finish();
}

fn embedded_commit(c: &mut Criterion) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .expect("runtime");
    let dir = tempfile::tempdir().expect("temporary directory");
    let store = runtime
        .block_on(async { EmbeddedStore::open(dir.path(), 32 * 1024 * 1024, unobserved()) })
        .expect("open store");
    // Every iteration stores 100 new readings (fresh times), so each is a real insert + fsync.
    let next = AtomicI64::new(0);
    let mut group = c.benchmark_group("embedded");
    group.sample_size(30);
    group.throughput(Throughput::Elements(100));
    group.bench_function("put_readings 100 (one durable commit)", |b| {
        b.iter_batched(
            || {
                let start = next.fetch_add(100, Ordering::Relaxed);
                Batch::parse(&batch_json(start, 100)).expect("valid batch")
            },
            |batch| runtime.block_on(store.put_readings(batch)).expect("stored"),
            BatchSize::SmallInput,
        )
    });
    group.finish();
}

criterion_group!(benches, parsing, aggregates, embedded_commit);
criterion_main!(benches);
