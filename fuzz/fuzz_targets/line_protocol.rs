//! Any bytes as a line protocol body: the parser answers (no panic, no hang), and every line
//! number it names is within the body.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetry::domain::Timestamp;
use telemetry::domain::line_batch::{LineSchema, LinesChecked, Precision};

fuzz_target!(|body: &[u8]| {
    let received = Timestamp::from_micros(0).expect("the epoch is in range");
    let physical = body.iter().filter(|b| **b == b'\n').count() + 1;
    for precision in [Precision::Nanoseconds, Precision::Hours] {
        if let Ok(checked) = LinesChecked::parse(body, &LineSchema::default(), precision, received) {
            let lines = checked.readings.iter().map(|(line, _)| *line);
            let refused = checked.malformed.iter().chain(&checked.invalid).map(|e| e.line);
            assert!(lines.chain(refused).all(|line| (1..=physical).contains(&line)));
        }
    }
});
