//! Tasks that run on the control machine against a host (`kube_apply`): one round
//! trip reads what they need, the rest happens here.

use std::collections::{BTreeMap, HashSet};
use std::time::Instant;

use serde_json::Value;

use super::{HostRun, Outcome, Prepared};
use crate::events::{Failure, Mode, Status};
use crate::kube::{self, Applied, Args};
use crate::playbook::Task;

/// True for tasks the executor runs on the control machine.
pub(super) fn is_local(task: &Task) -> bool {
    task.module == kube::MODULE
}

impl HostRun<'_> {
    /// Runs one control-machine task; false when it failed.
    pub(super) async fn run_local(&mut self, play: usize, task: &Task) -> bool {
        let started = Instant::now();
        let vars = self.vars(play);
        let unknown = self.ctx.shared.unknown();
        let args = match self.render(&vars, &unknown, task) {
            Ok(args) => args,
            Err(not_ready) => return self.not_ready(task, started, not_ready),
        };
        let args = match Args::parse(args) {
            Ok(a) => a,
            Err(message) => return self.local_failed(task, started, message),
        };
        let outcome = match self.kube_apply(&args).await {
            Ok(outcome) => outcome,
            Err(message) => return self.local_failed(task, started, message),
        };
        let changed = outcome.status == Status::Changed && self.ctx.mode == Mode::Apply;
        if outcome.status == Status::Changed && self.ctx.mode == Mode::Plan {
            if let Some(r) = &task.register {
                self.mark_unknown(r);
            }
        } else {
            let skipped = outcome.status == Status::Skipped;
            self.register(task, changed, false, skipped, &BTreeMap::new());
        }
        self.emit(task, started, outcome);
        true
    }

    /// `kube_apply`: reads the kubeconfig and manifests, then applies through the host.
    async fn kube_apply(&mut self, args: &Args) -> Result<Outcome, String> {
        self.result.round_trips += 1;
        let out = self
            .conn
            .run(&kube::gather_script(args), None)
            .await
            .map_err(|e| format!("{}: {}", e.kind, e.detail))?;
        let gathered = kube::parse_gathered(&out.stdout)?;
        let plan = self.ctx.mode == Mode::Plan;
        if !gathered.missing.is_empty() || gathered.kubeconfig.is_none() {
            let mut absent = gathered.missing.clone();
            if gathered.kubeconfig.is_none() {
                absent.push(args.kubeconfig.clone());
            }
            let absent = absent.join(", ");
            if plan {
                return Ok(Outcome::simple(
                    Status::Unknown,
                    Some(format!("{absent} not written yet: known after apply")),
                ));
            }
            return Err(format!("{absent} not found on the host"));
        }
        let mut objects = Vec::new();
        for (path, bytes) in &gathered.manifests {
            let text = String::from_utf8_lossy(bytes);
            for object in kube::objects(path, &text)? {
                objects.push((path.clone(), object));
            }
        }
        let kubeconfig = gathered.kubeconfig.unwrap_or_default();
        let creds = kube::Credentials {
            kubeconfig: &kubeconfig,
            bootstrap: gathered.bootstrap.as_deref(),
        };
        let applied = kube::apply(&*self.conn, creds, &objects, args, plan).await?;
        Ok(match applied {
            Applied::NotAnswering { server } => Outcome::pending(format!(
                "no API server answers at {server} yet: {} objects of {} wait for a later run; \
                 run apply again once the kubelet has started the control plane",
                objects.len(),
                args.manifests.join(", ")
            )),
            Applied::Done {
                server,
                total,
                changes,
                waiting_nodes,
            } => {
                let mut summary = if changes.is_empty() {
                    format!("{total} objects up to date at {server}")
                } else {
                    format!(
                        "{} of {total} objects and nodes {} at {server}",
                        changes.len(),
                        if plan { "would change" } else { "changed" }
                    )
                };
                if !waiting_nodes.is_empty() {
                    summary.push_str(&format!(
                        "; nodes not registered yet: {} (run apply again once their kubelets have registered)",
                        waiting_nodes.join(", ")
                    ));
                }
                let status = if changes.is_empty() {
                    Status::Ok
                } else {
                    Status::Changed
                };
                let mut outcome = Outcome::simple(status, Some(summary));
                outcome.pending = !waiting_nodes.is_empty();
                if !changes.is_empty() {
                    outcome.diff = Some(changes.iter().map(|c| format!("{c}\n")).collect());
                }
                outcome
            }
        })
    }

    /// Reports a task that does not run (`when`, unknown input) or cannot (bad template).
    fn not_ready(&mut self, task: &Task, started: Instant, why: Prepared) -> bool {
        match why {
            Prepared::Skip(why) => {
                self.register(task, false, false, true, &BTreeMap::new());
                self.emit(task, started, Outcome::simple(Status::Skipped, Some(why)));
                true
            }
            Prepared::Unknown(why) => {
                if let Some(r) = &task.register {
                    self.mark_unknown(r);
                }
                self.emit(task, started, Outcome::simple(Status::Unknown, Some(why)));
                true
            }
            Prepared::Fail(f) => self.local_failed(task, started, f.message),
            Prepared::Ready(_) => self.local_failed(task, started, "not a local task".into()),
        }
    }

    fn local_failed(&mut self, task: &Task, started: Instant, message: String) -> bool {
        let failure = Failure {
            command: Some(format!("{} at {}", task.module, task.origin)),
            hint: super::hints::for_texts(std::iter::once(message.as_str())),
            message,
            ..Failure::default()
        };
        self.register(task, false, true, false, &BTreeMap::new());
        self.emit(task, started, Outcome::failed(failure));
        false
    }

    /// Renders a task's arguments for this host (no module is built).
    fn render(
        &self,
        vars: &Value,
        unknown: &HashSet<String>,
        task: &Task,
    ) -> Result<Value, Prepared> {
        super::prepare::render(task, &self.inputs(vars, unknown))
    }
}
