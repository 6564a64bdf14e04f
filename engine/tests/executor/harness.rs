//! A throw-away set of local hosts, and runs of the real executor against them.
#![allow(dead_code)]

use std::path::PathBuf;
use std::time::Duration;

use kprov_engine::events::Mode;
use kprov_engine::run::{RunRequest, RunSummary, TagFilter};
use kprov_engine::transport::PoolOptions;
use serde_json::{Map, Value};

/// Hosts `names` (the first is the only `masters` member, the others are `nodes`), each a
/// local host whose `root` variable is a directory of its own under one temporary dir.
pub struct Hosts {
    pub dir: tempfile::TempDir,
    pub names: Vec<String>,
}

/// What a run returned and reported.
pub struct Ran {
    pub summary: RunSummary,
    /// Every event, as JSON (what `--output json` prints).
    pub events: Vec<Value>,
}

/// Options of a run besides mode and playbook.
#[derive(Default)]
pub struct Opts {
    pub limit: Option<String>,
    pub tags: Vec<String>,
    pub skip_tags: Vec<String>,
    pub fail_fast: bool,
    pub extra: Map<String, Value>,
    pub forks: Option<usize>,
    /// How long to wait for another run's lock (default 5 s).
    pub lock_wait: Option<Duration>,
    /// Saved plans to record or follow.
    pub plans: kprov_engine::run::Plans,
}

impl Hosts {
    /// `names` as local hosts; `extra_vars` is YAML text added to every host's `vars`.
    pub fn new(names: &[&str]) -> Hosts {
        Hosts::with_inventory(names, |_| String::new())
    }

    /// Like [`Hosts::new`], with more host variables (YAML flow-mapping entries) per host.
    pub fn with_inventory(names: &[&str], more: impl Fn(&str) -> String) -> Hosts {
        let dir = tempfile::tempdir().unwrap();
        let mut inv = String::from("hosts:\n");
        for (i, name) in names.iter().enumerate() {
            let root = dir.path().join(name);
            std::fs::create_dir_all(&root).unwrap();
            let state = dir.path().join(format!("{name}.state"));
            let extra = more(name);
            let extra = if extra.is_empty() {
                String::new()
            } else {
                format!(", {extra}")
            };
            inv.push_str(&format!(
                "  {name}: {{ address: 127.0.0.{}, vars: {{ connection: local, root: '{}', kprov_state_dir: '{}'{extra} }} }}\n",
                i + 1,
                root.display(),
                state.display()
            ));
        }
        inv.push_str(&format!(
            "groups:\n  masters: {{ hosts: [{}] }}\n",
            names[0]
        ));
        if names.len() > 1 {
            inv.push_str(&format!(
                "  nodes: {{ hosts: [{}] }}\n",
                names[1..].join(", ")
            ));
        }
        std::fs::write(dir.path().join("inventory.yaml"), inv).unwrap();
        Hosts {
            dir,
            names: names.iter().map(|s| s.to_string()).collect(),
        }
    }

    /// The inventory file.
    pub fn inventory(&self) -> PathBuf {
        self.dir.path().join("inventory.yaml")
    }

    /// A path under `host`'s root.
    pub fn path(&self, host: &str, relative: &str) -> PathBuf {
        self.dir.path().join(host).join(relative)
    }

    /// The content of a file under `host`'s root (`None` when it does not exist).
    pub fn read(&self, host: &str, relative: &str) -> Option<String> {
        std::fs::read_to_string(self.path(host, relative)).ok()
    }

    /// Writes a file under `host`'s root.
    pub fn write(&self, host: &str, relative: &str, content: &str) {
        let path = self.path(host, relative);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, content).unwrap();
    }

    /// Writes `text` as the playbook and returns its path.
    pub fn playbook(&self, text: &str) -> PathBuf {
        let path = self.dir.path().join("playbook.yaml");
        std::fs::write(&path, text).unwrap();
        path
    }

    /// Runs `playbook` (YAML text) in `mode`.
    pub async fn run(&self, mode: Mode, playbook: &str) -> Ran {
        self.run_with(mode, playbook, Opts::default()).await
    }

    /// Runs `playbook` (YAML text) in `mode` with `opts`; panics when the run cannot start.
    pub async fn run_with(&self, mode: Mode, playbook: &str, opts: Opts) -> Ran {
        self.try_run(mode, playbook, opts)
            .await
            .unwrap_or_else(|e| panic!("the run did not start: {e}"))
    }

    /// Runs `playbook`; `Err` with the reason when the run could not start.
    pub async fn try_run(&self, mode: Mode, playbook: &str, opts: Opts) -> Result<Ran, String> {
        let path = self.playbook(playbook);
        let playbook = kprov_engine::playbook::load(&path).map_err(|e| e.to_string())?;
        let inventory =
            kprov_engine::inventory::load(&self.inventory()).map_err(|e| e.to_string())?;
        let (sink, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let request = RunRequest {
            mode,
            playbook,
            inventory,
            limit: opts.limit,
            spec: Map::new(),
            extra: opts.extra,
            tags: TagFilter {
                only: opts.tags,
                skip: opts.skip_tags,
            },
            fail_fast: opts.fail_fast,
            pool: PoolOptions {
                concurrency: opts.forks,
                command_timeout: Duration::from_secs(60),
                ..PoolOptions::default()
            },
            lock_wait: opts.lock_wait.unwrap_or(Duration::from_secs(5)),
            sink,
            run_id: "test".into(),
            plans: opts.plans,
        };
        let summary = kprov_engine::run::run(request)
            .await
            .map_err(|e| e.to_string())?;
        let mut events = Vec::new();
        while let Ok(event) = rx.try_recv() {
            events.push(serde_json::to_value(&event).unwrap());
        }
        Ok(Ran { summary, events })
    }
}

impl Ran {
    /// The `task` events of `host`, in order.
    pub fn tasks(&self, host: &str) -> Vec<&Value> {
        self.events
            .iter()
            .filter(|e| e["event"] == "task" && e["host"] == host)
            .collect()
    }

    /// The status of `task` on `host` (`None` when it was not reported).
    pub fn status(&self, host: &str, task: &str) -> Option<String> {
        self.tasks(host)
            .iter()
            .find(|e| e["task"] == task)
            .and_then(|e| e["status"].as_str().map(str::to_string))
    }

    /// `host`'s task names with their statuses, in report order.
    pub fn statuses(&self, host: &str) -> Vec<(String, String)> {
        self.tasks(host)
            .iter()
            .map(|e| {
                (
                    e["task"].as_str().unwrap_or_default().to_string(),
                    e["status"].as_str().unwrap_or_default().to_string(),
                )
            })
            .collect()
    }

    /// The batches `host` ran, each as its task names.
    pub fn batches(&self, host: &str) -> Vec<Vec<String>> {
        self.events
            .iter()
            .filter(|e| e["event"] == "batch_started" && e["host"] == host)
            .map(|e| {
                e["tasks"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|t| t.as_str().unwrap().to_string())
                    .collect()
            })
            .collect()
    }

    /// `host`'s `host_done` event.
    pub fn host_done(&self, host: &str) -> &Value {
        self.events
            .iter()
            .find(|e| e["event"] == "host_done" && e["host"] == host)
            .unwrap_or_else(|| panic!("no host_done for {host}: {:#?}", self.events))
    }

    /// Round trips `host` used (facts and the run lock included).
    pub fn round_trips(&self, host: &str) -> u64 {
        self.host_done(host)["round_trips"].as_u64().unwrap()
    }

    /// The run's events, for failure messages.
    pub fn dump(&self) -> String {
        self.events
            .iter()
            .map(|e| e.to_string())
            .collect::<Vec<_>>()
            .join("\n")
    }
}
