//! The flood's request bodies: 1,000-reading JSON batches, every reading new, built cheaply
//! enough that the load generator does not take the server's CPU.
//!
//! Batch `n` of a series (`prefix`) belongs to sensor `<prefix><n % 100>` and is that sensor's
//! batch `k = n / 100`: day `k / 86` after [`BASE_EPOCH`]'s day, seconds
//! `(k % 86) × 1,000 .. +1,000` of it (86 batches fit in a day). Distinct `n` never share a
//! (sensor, time), and two prefixes never share a sensor. A fixed set of 100 sensors keeps the
//! server's per-sensor state out of the memory figures.

use std::sync::OnceLock;

use crate::load::BASE_EPOCH;

/// Readings per request.
pub const BATCH: u64 = 1_000;
/// Sensors a series spreads its batches over.
const SENSORS: u64 = 100;
const BATCHES_PER_DAY: u64 = 86;

/// `"HH:MM:SS\",\"temperature\":TT.TT}"` for every second of a day (the part of a reading
/// after its date), built once.
fn tails() -> &'static [String] {
    static TAILS: OnceLock<Vec<String>> = OnceLock::new();
    TAILS.get_or_init(|| {
        (0..86_400u64)
            .map(|s| {
                let centi = 500 + s % 3_000;
                format!(
                    r#"{:02}:{:02}:{:02}","temperature":{}.{:02}}}"#,
                    s / 3600,
                    s / 60 % 60,
                    s % 60,
                    centi / 100,
                    centi % 100
                )
            })
            .collect()
    })
}

/// Request `n` of series `prefix`: a JSON array of [`BATCH`] new readings.
pub fn body(prefix: &str, n: u64) -> String {
    let sensor = format!("{prefix}{}", n % SENSORS);
    let k = n / SENSORS;
    let day = chrono::DateTime::from_timestamp(BASE_EPOCH, 0)
        .expect("valid time")
        .date_naive()
        + chrono::Days::new(k / BATCHES_PER_DAY);
    let head = format!(r#"{{"sensorID":"{sensor}","time":"{day} "#);
    let first = (k % BATCHES_PER_DAY) * BATCH;
    let tails = tails();
    let mut body = String::with_capacity(2 + BATCH as usize * (head.len() + 36));
    body.push('[');
    for second in first..first + BATCH {
        if second > first {
            body.push(',');
        }
        body.push_str(&head);
        body.push_str(&tails[second as usize]);
    }
    body.push(']');
    body
}
