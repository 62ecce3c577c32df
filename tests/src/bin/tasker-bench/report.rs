//! Collecting results and printing them as a markdown table and JSON.

use std::path::PathBuf;

use serde_json::{Value, json};

#[derive(Default)]
pub struct Report {
    rows: Vec<(String, f64, String, String, bool)>,
}

impl Report {
    pub fn ceiling(&mut self, name: &str, value: f64, unit: &str) {
        self.rows
            .push((name.into(), value, unit.into(), String::new(), true));
    }

    pub fn value(&mut self, name: &str, value: f64, unit: &str, target: &str) {
        self.rows
            .push((name.into(), value, unit.into(), target.into(), false));
    }

    pub fn print(&self) {
        println!("| measurement | result | unit | target |");
        println!("|---|---:|---|---|");
        for (name, value, unit, target, ceiling) in &self.rows {
            let shown = if *value >= 100.0 {
                format!("{value:.0}")
            } else {
                format!("{value:.2}")
            };
            let name = if *ceiling {
                format!("ceiling: {name}")
            } else {
                name.clone()
            };
            println!("| {name} | {shown} | {unit} | {target} |");
        }
    }

    pub fn write_json(&self, settings: Value) -> PathBuf {
        let dir = tasker_tests::workspace_root().join("target/bench");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!(
            "results-{}.json",
            chrono::Utc::now().format("%Y%m%dT%H%M%SZ")
        ));
        let rows: Vec<Value> = self
            .rows
            .iter()
            .map(|(name, value, unit, target, ceiling)| json!({"name": name, "value": value, "unit": unit, "target": target, "ceiling": ceiling}))
            .collect();
        let doc = json!({"settings": settings, "cores": std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0), "results": rows});
        std::fs::write(&path, serde_json::to_string_pretty(&doc).unwrap()).unwrap();
        path
    }
}

/// p50, p95 and p99 of durations in milliseconds.
pub fn percentiles(values: &[f64]) -> (f64, f64, f64) {
    if values.is_empty() {
        return (0.0, 0.0, 0.0);
    }
    let mut v = values.to_vec();
    v.sort_by(|a, b| a.total_cmp(b));
    let at = |q: f64| v[((v.len() as f64 - 1.0) * q).round() as usize];
    (at(0.50), at(0.95), at(0.99))
}
