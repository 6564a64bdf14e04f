//! The variables a task sees on one host: spec, inventory, `-e`, play vars and role
//! defaults, facts, registered results and `hostvars`.

use std::collections::HashSet;

use serde_json::{Map, Value};

use super::host::HostRun;
use super::prepare::Inputs;

impl HostRun<'_> {
    /// The variables this host sees for a task of `play`.
    pub(super) fn vars(&self, play: usize) -> Value {
        let ctx = self.ctx;
        let mut vars = ctx.base_vars(play, self.host);
        vars.insert("facts".into(), self.facts.clone());
        let registered = ctx
            .shared
            .registered
            .lock()
            .map(|r| r.clone())
            .unwrap_or_default();
        if let Some(own) = registered.get(self.host) {
            for (k, v) in own {
                vars.insert(k.clone(), v.clone());
            }
        }
        let mut hostvars = Map::new();
        for (h, name) in ctx.schedule.hosts.iter().enumerate() {
            let mut hv = ctx.inventory_vars(h).clone();
            if let Some(r) = registered.get(h) {
                hv.extend(r.clone());
            }
            hostvars.insert(name.clone(), Value::Object(hv));
        }
        vars.insert("hostvars".into(), Value::Object(hostvars));
        self.render_playbook_vars(play, vars)
    }

    /// Role defaults and play vars are playbook text and may refer to other variables
    /// (`agent_dir: "{{ kprov_dir }}"`); those that won the merge are rendered once against
    /// the rest. Values from inventories, specs and `-e` are data and are never rendered.
    pub(super) fn render_playbook_vars(&self, play: usize, mut vars: Map<String, Value>) -> Value {
        let p = &self.ctx.playbook.plays[play];
        let templated: Vec<(String, Value)> = p
            .defaults
            .iter()
            .chain(p.vars.iter())
            .filter(|(k, v)| vars.get(*k) == Some(v) && mentions_template(v))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        if templated.is_empty() {
            return Value::Object(vars);
        }
        let context = Value::Object(vars.clone());
        for (key, value) in templated {
            let origin = format!("variable `{key}` of play `{}`", p.name);
            match self.ctx.renderer.render_value(&value, &origin, &context) {
                Ok(rendered) => {
                    vars.insert(key, rendered);
                }
                Err(err) => tracing::debug!(%err, "variable left unrendered"),
            }
        }
        Value::Object(vars)
    }

    /// What rendering a task for this host reads.
    pub(super) fn inputs<'v>(
        &'v self,
        vars: &'v Value,
        unknown: &'v HashSet<String>,
    ) -> Inputs<'v> {
        Inputs {
            renderer: &self.ctx.renderer,
            vars,
            host: &self.module_ctx,
            unknown,
            playbook_dir: &self.ctx.playbook_dir,
        }
    }
}

fn mentions_template(value: &Value) -> bool {
    match value {
        Value::String(s) => s.contains("{{") || s.contains("{%"),
        Value::Array(items) => items.iter().any(mentions_template),
        Value::Object(map) => map.values().any(mentions_template),
        _ => false,
    }
}
