//! Results: one line per check as it finishes, and the summary.

/// The outcome of every check run so far.
#[derive(Default)]
pub struct Report {
    pub passed: usize,
    pub failed: Vec<String>,
}

impl Report {
    /// Records and prints one check.
    pub fn record(&mut self, workflow: &str, name: &str, outcome: Result<(), String>) {
        match outcome {
            Ok(()) => {
                self.passed += 1;
                println!("PASS  {workflow:<18} {name}");
            }
            Err(why) => {
                println!("FAIL  {workflow:<18} {name}: {why}");
                self.failed.push(format!("{workflow}: {name}"));
            }
        }
    }

    /// The closing line: `N passed, N failed`.
    pub fn summary(&self) -> String {
        format!("{} passed, {} failed", self.passed, self.failed.len())
    }
}
