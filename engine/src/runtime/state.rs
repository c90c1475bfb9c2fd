//! What a container is doing, saved as `containers/<id>/state.json` by
//! whoever changes it (the monitor, mostly), read by every `rctl` verb.

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Created,
    Running,
    Exited,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    pub status: Status,
    #[serde(default)]
    pub paused: bool,
    /// Host pid of the container's PID 1 (0 when not running).
    #[serde(default)]
    pub pid: i32,
    /// Its start time in clock ticks (from `/proc/PID/stat`), so a reused pid is not mistaken for it.
    #[serde(default)]
    pub pid_start: u64,
    /// Pid of the monitor watching it.
    #[serde(default)]
    pub monitor_pid: i32,
    #[serde(default)]
    pub monitor_start: u64,
    #[serde(default)]
    pub started_at: u128,
    #[serde(default)]
    pub finished_at: u128,
    #[serde(default)]
    pub exit_code: i32,
    #[serde(default)]
    pub oom_killed: bool,
    #[serde(default)]
    pub error: String,
}

impl State {
    pub fn created() -> State {
        State {
            status: Status::Created,
            paused: false,
            pid: 0,
            pid_start: 0,
            monitor_pid: 0,
            monitor_start: 0,
            started_at: 0,
            finished_at: 0,
            exit_code: 0,
            oom_killed: false,
            error: String::new(),
        }
    }

    /// Running by the record, and the process is still there.
    pub fn is_running(&self) -> bool {
        self.status == Status::Running && process_alive(self.pid, self.pid_start)
    }

    /// docker's wording for `ps`: `Up 5 seconds`, `Exited (0) 2 minutes ago`, `Created`.
    pub fn describe(&self) -> String {
        use super::time::{ago, human_duration, now_nanos};
        match self.status {
            Status::Created => "Created".into(),
            Status::Running => {
                let up = human_duration(now_nanos().saturating_sub(self.started_at));
                if self.paused {
                    format!("Up {up} (Paused)")
                } else {
                    format!("Up {up}")
                }
            }
            Status::Exited => format!("Exited ({}) {}", self.exit_code, ago(self.finished_at)),
        }
    }

    /// docker's `State.Status`: created, running, paused, exited.
    pub fn status_word(&self) -> &'static str {
        match self.status {
            Status::Created => "created",
            Status::Running if self.paused => "paused",
            Status::Running => "running",
            Status::Exited => "exited",
        }
    }
}

/// The start time (field 22 of `/proc/PID/stat`) of a live process.
pub fn process_start(pid: i32) -> Option<u64> {
    if pid <= 0 {
        return None;
    }
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may hold spaces and parentheses: fields start after the last ')'.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split(' ').collect();
    // rest starts at field 3 (state); a zombie is not alive.
    if fields.first() == Some(&"Z") {
        return None;
    }
    fields.get(19)?.parse().ok()
}

/// Whether `pid` is the process that started at `start`.
pub fn process_alive(pid: i32, start: u64) -> bool {
    process_start(pid).is_some_and(|s| s == start)
}
