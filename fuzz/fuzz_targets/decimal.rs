//! Any text as a temperature: parsing answers, and a success is in range.
#![no_main]

use libfuzzer_sys::fuzz_target;
use telemetry::domain::Temperature;
use telemetry::domain::reading::{MAX_CELSIUS_MICROS, MIN_CELSIUS_MICROS};

fuzz_target!(|text: &str| {
    if let Ok(temperature) = Temperature::parse_text(text) {
        assert!((MIN_CELSIUS_MICROS..=MAX_CELSIUS_MICROS).contains(&temperature.micros()));
    }
});
