//! `run:` stages: the command line (or argv) and `env:`, rendered with
//! `${params.…}`, `${inputs.…}` and `${outputs.…}`.

use foldhash::{HashMap, HashMapExt, HashSet, HashSetExt};
use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::super::span::{Part, YamlPath};
use super::super::{env_var_name, Action, Input, Output, Shell, Source, StageDef};
use super::{Draft, Validator};
use crate::interp::{self, Namespace, Piece};
use crate::params;
use crate::registry::COMMAND_KIND;
use crate::suggest::did_you_mean;

impl Validator<'_> {
    /// The pieces of a string with `${…}` references, or `None` after
    /// reporting why it does not parse (for `run:`, `env:` and `with:`).
    pub(super) fn parse_interpolation(
        &mut self,
        d: &Draft<'_>,
        s: &str,
        path: &YamlPath,
    ) -> Option<Vec<Piece>> {
        match interp::parse(s) {
            Ok(p) => Some(p),
            Err(e) => {
                self.push(
                    "interpolation",
                    path,
                    Part::Value,
                    format!("stage `{}`: {e}", d.id),
                    "here",
                    None,
                );
                None
            }
        }
    }

    /// Pass 2 for a `run:` stage: checks its `deps:`, `params:`, `run:` and
    /// `env:`, and builds it when none of them has a problem.
    pub(super) fn finish_command(
        &mut self,
        d: &Draft<'_>,
        drafts: &[Draft<'_>],
        ids: &HashMap<&str, usize>,
        out_index: &HashMap<&str, (usize, usize)>,
    ) -> Option<StageDef> {
        let before = self.issues.len();
        let mut stage_params: BTreeMap<String, Value> = BTreeMap::new();
        let inputs = self.check_deps(d, drafts, ids, out_index);
        self.check_stage_params(d, &mut stage_params);
        let (templates, line) = self.check_run(d);
        let shell = self.check_shell(d, line);
        let mut argv = Vec::new();
        for (t, p) in &templates {
            if let Some(s) = self.render(d, t, p, &inputs, &d.outputs, line, &mut stage_params) {
                argv.push(s);
            }
        }
        let (env, env_templates) = self.check_env(d, &inputs, &mut stage_params);
        self.check_env_collisions(d, &inputs);
        self.check_env_refs(d, &inputs, &templates, line);
        let mut config = command_config(d, &templates, shell, env_templates);
        // The inputs are fingerprinted by key, in no order; a gather
        // (`stage@*.port`) is rendered in the order of the instances, so
        // that order is part of what the command sees.
        let gathered = super::gather_order(
            inputs
                .iter()
                .filter(|i| self.fanned.contains(&(d.id.clone(), i.name.clone()))),
        );
        if !gathered.is_empty() {
            config.insert("gathered".into(), Value::Object(gathered));
        }
        if self.issues.len() > before {
            return None;
        }
        Some(StageDef {
            id: d.id.clone(),
            kind: COMMAND_KIND.into(),
            version: 0,
            inputs,
            outputs: d.outputs.clone(),
            params: stage_params,
            config,
            action: Action::Command { argv, shell, env },
            always_changed: d.flag("always_changed"),
            frozen: d.flag("frozen"),
        })
    }

    /// Checks that no two deps, and no two outputs, get the same variable
    /// (`a-b` and `a_b` are both `MLCYCLE_IN_A_B`): the command would see
    /// only one of them.
    fn check_env_collisions(&mut self, d: &Draft<'_>, inputs: &[Input]) {
        // One dep and one output (most stages) cannot collide.
        if inputs.len() < 2 && d.outputs.len() < 2 {
            return;
        }
        let mut seen: HashMap<String, &str> = HashMap::new();
        for (i, inp) in inputs.iter().enumerate() {
            let var = format!("MLCYCLE_IN_{}", env_var_name(&inp.name));
            // The same default name twice (two `.../data` deps) is allowed:
            // neither gets the variable, and `${inputs.data}` is refused as
            // ambiguous. Two different names for one variable are not.
            if let Some(other) = seen
                .insert(var.clone(), &inp.name)
                .filter(|o| *o != inp.name)
            {
                self.push(
                    "env_collision",
                    &d.path.key("deps").index(i),
                    Part::Value,
                    format!(
                        "deps `{other}` and `{}` of stage `{}` would both be `${var}`",
                        inp.name, d.id
                    ),
                    "same variable",
                    Some("name one of them: `- other_name: path`".into()),
                );
            }
        }
        let mut seen: HashMap<String, &str> = HashMap::new();
        for (i, o) in d.outputs.iter().enumerate() {
            let var = format!("MLCYCLE_OUT_{}", env_var_name(&o.name));
            if let Some(other) = seen.insert(var.clone(), &o.name).filter(|o2| *o2 != o.name) {
                self.push(
                    "env_collision",
                    &d.path.key("outs").index(i),
                    Part::Value,
                    format!(
                        "outputs `{other}` and `{}` of stage `{}` would both be `${var}`",
                        o.name, d.id
                    ),
                    "same variable",
                    Some("name one of them: `- other_name: path`".into()),
                );
            }
        }
    }

    /// Checks that every `MLCYCLE_IN_…` / `MLCYCLE_OUT_…` variable the
    /// command reads is one the stage sets: a port is named after its file
    /// (`out/gb_metrics.json` is `MLCYCLE_OUT_GB_METRICS`), and a wrong
    /// guess would otherwise surface only when the command ends. A command
    /// line is read as the shell would (`$NAME` and `${NAME}` outside
    /// single quotes and comments; `${NAME:-default}` is an optional read);
    /// an argv list expands nothing. Under `mlcycle validate`, so are the
    /// scripts among the deps that the command runs with an interpreter
    /// (`python3 train.py`, `bash run.sh`, `./run.sh`): a Python script's
    /// `environ["NAME"]` and a shell script's `$NAME`.
    fn check_env_refs(
        &mut self,
        d: &Draft<'_>,
        inputs: &[Input],
        templates: &[(String, YamlPath)],
        line: bool,
    ) {
        // What the stage really sets: a name two deps share (or a gather)
        // sets no variable.
        let mut set: Vec<String> = Vec::new();
        for inp in inputs {
            if inputs.iter().filter(|i| i.name == inp.name).count() == 1 {
                set.push(format!("MLCYCLE_IN_{}", env_var_name(&inp.name)));
            }
        }
        for o in &d.outputs {
            set.push(format!("MLCYCLE_OUT_{}", env_var_name(&o.name)));
        }
        let mut reads: Vec<(String, YamlPath, Option<String>)> = Vec::new();
        if line {
            for (t, p) in templates {
                for var in shell_reads(t) {
                    reads.push((var, p.clone(), None));
                }
            }
        }
        if !self.allow_missing && line {
            let words: Vec<&str> = templates
                .iter()
                .flat_map(|(t, _)| {
                    t.split(|c: char| c.is_whitespace() || c == ';' || c == '&' || c == '|')
                })
                .map(|w| w.trim_matches(|c| c == '"' || c == '\''))
                .collect();
            for inp in inputs {
                let Source::File(f) = &inp.source else {
                    continue;
                };
                let runs = words.iter().enumerate().any(|(k, w)| {
                    let w = w.strip_prefix("./").unwrap_or(w);
                    let direct = words[k].starts_with("./") && w == f;
                    let interp = k > 0 && w == f && is_interpreter(words[k - 1]);
                    direct || interp
                });
                let python = f.ends_with(".py");
                let shell = f.ends_with(".sh") || f.ends_with(".bash");
                if !runs || !(python || shell) {
                    continue;
                }
                let path = self.root.join(f);
                if std::fs::metadata(&path).map_or(true, |m| m.len() > 1 << 20) {
                    continue;
                }
                let Ok(text) = std::fs::read_to_string(&path) else {
                    continue;
                };
                let found = if python {
                    python_reads(&text)
                } else {
                    shell_reads(&text)
                };
                for var in found {
                    reads.push((var, d.path.key("run"), Some(f.clone())));
                }
            }
        }
        let mut reported: HashSet<String> = HashSet::new();
        for (var, at, file) in reads {
            if set.contains(&var) || !reported.insert(var.clone()) {
                continue;
            }
            let all: Vec<&str> = set.iter().map(String::as_str).collect();
            let near = did_you_mean(&var, &all);
            let help = if !near.is_empty() {
                near
            } else if all.is_empty() {
                "the stage sets no `MLCYCLE_IN_…` or `MLCYCLE_OUT_…` variable; a dep or output is named after its file unless named: `- name: path`".to_string()
            } else {
                format!(
                    "it sets {}; a dep or output is named after its file unless named: `- name: path`",
                    all.iter().map(|v| format!("`{v}`")).collect::<Vec<_>>().join(", ")
                )
            };
            self.push(
                "unknown_env",
                &at,
                Part::Value,
                match &file {
                    Some(f) => format!(
                        "`{f}`, run by stage `{}`, reads `{var}`, which the stage does not set",
                        d.id
                    ),
                    None => format!(
                        "the command of stage `{}` reads `${var}`, which the stage does not set",
                        d.id
                    ),
                },
                "no such variable",
                Some(help),
            );
        }
    }

    /// Checks `shell:`: `sh` (the default) or `bash`, for a command line
    /// only (`line`); an argv list runs without a shell.
    fn check_shell(&mut self, d: &Draft<'_>, line: bool) -> Option<Shell> {
        let Some(v) = d.decl.get("shell") else {
            return line.then_some(Shell::Sh);
        };
        let path = d.path.key("shell");
        if !line {
            self.push(
                "misplaced_field",
                &path,
                Part::Key,
                format!(
                    "`shell` of stage `{}` applies to a command line, not to an argv list",
                    d.id
                ),
                "no shell runs an argv list",
                Some("write `run:` as one string to run it with a shell".into()),
            );
            return None;
        }
        match v.as_str() {
            Some("sh") => Some(Shell::Sh),
            Some("bash") => Some(Shell::Bash),
            other => {
                let given = other.map_or_else(|| v.to_string(), |s| format!("`{s}`"));
                self.push(
                    "bad_value",
                    &path,
                    Part::Value,
                    format!(
                        "`shell` of stage `{}` must be `sh` or `bash`, not {given}",
                        d.id
                    ),
                    "unknown shell",
                    Some(
                        "`sh` (the default) runs `sh -e -c`; `bash` runs `bash -e -o pipefail -c`"
                            .into(),
                    ),
                );
                Some(Shell::Sh)
            }
        }
    }

    /// Checks `run:`: a command line (run with `sh -e -c`) or a non-empty list
    /// of scalar arguments (run without a shell). Returns the templates,
    /// each with its place, and whether they are one command line.
    fn check_run(&mut self, d: &Draft<'_>) -> (Vec<(String, YamlPath)>, bool) {
        match d.decl.get("run") {
            Some(Value::String(s)) => (vec![(s.clone(), d.path.key("run"))], true),
            Some(Value::Array(a)) if !a.is_empty() => {
                let mut t = Vec::new();
                for (i, x) in a.iter().enumerate() {
                    match x {
                        Value::String(s) => t.push((s.clone(), d.path.key("run").index(i))),
                        Value::Number(_) | Value::Bool(_) => {
                            t.push((x.to_string(), d.path.key("run").index(i)))
                        }
                        _ => self.push(
                            "type",
                            &d.path.key("run").index(i),
                            Part::Value,
                            "argv items must be strings".into(),
                            "not a string",
                            None,
                        ),
                    }
                }
                (t, false)
            }
            _ => {
                self.push(
                    "type",
                    &d.path.key("run"),
                    Part::Value,
                    format!("`run` of stage `{}` must be a command line or a non-empty list of arguments", d.id),
                    "expected a command",
                    Some("write `run: python train.py` (runs with `sh -c`) or `run: [python, train.py]` (no shell)".into()),
                );
                (Vec::new(), true)
            }
        }
    }

    /// Checks `env:`: a mapping of variable names to scalar templates.
    /// Returns the rendered variables and the templates (fingerprinted).
    fn check_env(
        &mut self,
        d: &Draft<'_>,
        inputs: &[Input],
        stage_params: &mut BTreeMap<String, Value>,
    ) -> (Vec<(String, String)>, BTreeMap<String, Value>) {
        let mut env = Vec::new();
        let mut env_templates = BTreeMap::new();
        if let Some(e) = d.decl.get("env") {
            let epath = d.path.key("env");
            match e.as_object() {
                None => self.push(
                    "type",
                    &epath,
                    Part::Value,
                    "`env` must be a mapping of variable names to values".into(),
                    "expected a mapping",
                    None,
                ),
                Some(m) => {
                    for (k, v) in m {
                        if k.starts_with("MLCYCLE_") {
                            self.push(
                                "env_name",
                                &epath.key(k),
                                Part::Key,
                                format!("`{k}` in `env:` of stage `{}` would replace a variable mlcycle sets", d.id),
                                "reserved name",
                                Some("`MLCYCLE_*` variables (the stage, its inputs, outputs and params) are set by mlcycle; choose another name".into()),
                            );
                            continue;
                        }
                        if !valid_env_name(k) {
                            self.push(
                                "env_name",
                                &epath.key(k),
                                Part::Key,
                                format!("`{k}` in `env:` of stage `{}` is not a variable name", d.id),
                                "invalid name",
                                Some("a variable name is letters, digits and `_`, not starting with a digit (`LR`, `TRAIN_DIR`)".into()),
                            );
                            continue;
                        }
                        let t = match v {
                            Value::String(s) => s.clone(),
                            Value::Number(_) | Value::Bool(_) => v.to_string(),
                            _ => {
                                self.push(
                                    "type",
                                    &epath.key(k),
                                    Part::Value,
                                    "env values must be scalars".into(),
                                    "not a scalar",
                                    None,
                                );
                                continue;
                            }
                        };
                        if let Some(s) = self.render(
                            d,
                            &t,
                            &epath.key(k),
                            inputs,
                            &d.outputs,
                            false,
                            stage_params,
                        ) {
                            env.push((k.clone(), s));
                        }
                        env_templates.insert(k.clone(), Value::String(t));
                    }
                }
            }
        }
        (env, env_templates)
    }

    /// Renders a `run:` or `env:` template once every `${…}` in it checks
    /// out; with `quote`, each value is quoted for the shell.
    #[allow(clippy::too_many_arguments)]
    fn render(
        &mut self,
        d: &Draft<'_>,
        template: &str,
        path: &YamlPath,
        inputs: &[Input],
        outputs: &[Output],
        quote: bool,
        stage_params: &mut BTreeMap<String, Value>,
    ) -> Option<String> {
        let pieces = self.parse_interpolation(d, template, path)?;
        if !self.check_refs(d, &pieces, path, inputs, outputs, stage_params) {
            return None;
        }
        let params = &self.params;
        Some(interp::render(&pieces, |ns, name| {
            let raw = match ns {
                Namespace::Params => params::get(params, name)
                    .map(|v| params::to_arg(&params::canonical(v)))
                    .unwrap_or_default(),
                // A fan-in (`NAME: stage@*.port`) is every instance's
                // path, each quoted on its own.
                Namespace::Inputs if quote => {
                    let all: Vec<String> = inputs
                        .iter()
                        .filter(|i| i.name == name)
                        .map(|i| {
                            shlex::try_quote(&i.path)
                                .map(|c| c.into_owned())
                                .unwrap_or_else(|_| i.path.clone())
                        })
                        .collect();
                    return all.join(" ");
                }
                Namespace::Inputs => inputs
                    .iter()
                    .filter(|i| i.name == name)
                    .map(|i| i.path.clone())
                    .collect::<Vec<_>>()
                    .join(" "),
                Namespace::Outputs => outputs
                    .iter()
                    .find(|o| o.name == name)
                    .map(|o| o.path.clone())
                    .unwrap_or_default(),
            };
            if quote {
                shlex::try_quote(&raw)
                    .map(|c| c.into_owned())
                    .unwrap_or(raw)
            } else {
                raw
            }
        }))
    }

    /// Checks each `${…}` of a template: a param that is defined (and is
    /// recorded among the stage's), or exactly one input or output of that
    /// name. Returns whether all of them are right.
    fn check_refs(
        &mut self,
        d: &Draft<'_>,
        pieces: &[Piece],
        path: &YamlPath,
        inputs: &[Input],
        outputs: &[Output],
        stage_params: &mut BTreeMap<String, Value>,
    ) -> bool {
        let mut ok = true;
        for p in pieces {
            if let Piece::Ref(ns, name) = p {
                match ns {
                    Namespace::Params => {
                        let n = self.issues.len();
                        self.use_param(d, name, path, stage_params);
                        ok &= self.issues.len() == n;
                    }
                    Namespace::Inputs | Namespace::Outputs => {
                        let names: Vec<&str> = if *ns == Namespace::Inputs {
                            inputs.iter().map(|i| i.name.as_str()).collect()
                        } else {
                            outputs.iter().map(|o| o.name.as_str()).collect()
                        };
                        let mut count = names.iter().filter(|n| **n == name).count();
                        if count > 1
                            && *ns == Namespace::Inputs
                            && self.fanned.contains(&(d.id.clone(), name.to_string()))
                        {
                            count = 1;
                        }
                        // An entry of `deps:`/`outs:` already refused
                        // (a bad type, a missing file) may be the one the
                        // reference names: its error is the one to read.
                        let list = if *ns == Namespace::Inputs {
                            "deps"
                        } else {
                            "outs"
                        };
                        let declared = d
                            .decl
                            .get(list)
                            .and_then(Value::as_array)
                            .map_or(0, Vec::len);
                        if count == 0 && declared > names.len() && !self.issues.is_empty() {
                            ok = false;
                            continue;
                        }
                        if count != 1 {
                            ok = false;
                            let what = if count == 0 { "no" } else { "more than one" };
                            let mut help = if count > 1 {
                                "several entries have this name; name them: `- NAME: path`".into()
                            } else {
                                did_you_mean(name, &names)
                            };
                            if help.is_empty() {
                                help = {
                                    format!(
                                        "known {}: {}",
                                        ns.as_str(),
                                        if names.is_empty() {
                                            "none".into()
                                        } else {
                                            names.join(", ")
                                        }
                                    )
                                };
                            }
                            self.push(
                                "unknown_ref",
                                path,
                                Part::Value,
                                format!("`${{{}.{name}}}` in stage `{}`: the stage has {what} {} named `{name}`", ns.as_str(), d.id, &ns.as_str()[..ns.as_str().len() - 1]),
                                "here",
                                Some(help),
                            );
                        }
                    }
                }
            }
        }
        ok
    }
}

/// What a command stage is fingerprinted by besides its inputs and params:
/// its `run:` and `env:` templates, and the names given to its deps and
/// outs.
fn command_config(
    d: &Draft<'_>,
    templates: &[(String, YamlPath)],
    shell: Option<Shell>,
    env_templates: BTreeMap<String, Value>,
) -> BTreeMap<String, Value> {
    let mut config: BTreeMap<String, Value> = BTreeMap::new();
    // The default shell is left out, so that fingerprints from before
    // `shell:` existed still match.
    if let Some(sh) = shell.filter(|s| *s != Shell::Sh) {
        config.insert("shell".into(), Value::String(sh.name().into()));
    }
    config.insert(
        "run".into(),
        if shell.is_some() {
            Value::String(templates.first().map(|t| t.0.clone()).unwrap_or_default())
        } else {
            Value::Array(
                templates
                    .iter()
                    .map(|t| Value::String(t.0.clone()))
                    .collect(),
            )
        },
    );
    if !env_templates.is_empty() {
        config.insert(
            "env".into(),
            Value::Object(env_templates.into_iter().collect()),
        );
    }
    // Names given to deps and outs (`- labels: in.txt`) are what the
    // command sees (`${inputs.labels}`, `MLCYCLE_IN_LABELS`): renaming
    // one reruns the stage. Default names follow from the paths, which
    // are fingerprinted already, so only explicit names are kept.
    // Sorted by name: the order of `deps:` and `outs:` changes nothing.
    let explicit = |list: &str| -> Map<String, Value> {
        d.decl
            .get(list)
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .filter_map(|item| item.as_object().filter(|m| m.len() == 1))
            .flat_map(|m| m.iter().map(|(k, v)| (k.clone(), v.clone())))
            .collect::<BTreeMap<String, Value>>()
            .into_iter()
            .collect()
    };
    let named_in = explicit("deps");
    let named_out: Map<String, Value> = d
        .decl
        .get("outs")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter_map(|item| item.as_object().filter(|m| m.len() == 1))
        .flat_map(|m| m.iter())
        .filter_map(|(k, v)| match v {
            Value::String(_) => Some((k.clone(), v.clone())),
            // `name: {path: …}`; `path: {persist: …}` has no name.
            Value::Object(flags) => flags.get("path").map(|p| (k.clone(), p.clone())),
            _ => None,
        })
        .collect::<BTreeMap<String, Value>>()
        .into_iter()
        .collect();
    if !named_in.is_empty() || !named_out.is_empty() {
        config.insert(
            "names".into(),
            serde_json::json!({"inputs": named_in, "outputs": named_out}),
        );
    }
    // An output left in place is one the command updates: its bytes depend
    // on the flag. (`cache: false` changes where bytes are kept, not them.)
    let mut persist: Vec<&str> = d
        .outputs
        .iter()
        .filter(|o| o.persist)
        .map(|o| o.path.as_str())
        .collect();
    if !persist.is_empty() {
        persist.sort_unstable();
        config.insert("persist".into(), serde_json::json!(persist));
    }
    config
}

/// A POSIX environment variable name: letters, digits and `_`, not starting
/// with a digit.
fn valid_env_name(k: &str) -> bool {
    let mut chars = k.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// Whether `word` names a program that runs the script after it.
fn is_interpreter(word: &str) -> bool {
    let name = word.rsplit('/').next().unwrap_or(word);
    let base = name.trim_end_matches(|c: char| c.is_ascii_digit() || c == '.');
    matches!(
        base,
        "python" | "bash" | "sh" | "zsh" | "dash" | "source" | "."
    )
}

/// Whether `name` is a port variable (`MLCYCLE_IN_X`, `MLCYCLE_OUT_X`).
fn port_var(name: &str) -> bool {
    ["MLCYCLE_IN_", "MLCYCLE_OUT_"]
        .iter()
        .any(|p| name.len() > p.len() && name.starts_with(p))
}

/// The port variables a shell command (or script) reads: `$NAME` and
/// `${NAME}` outside single quotes, escapes, comments and quoted here-docs;
/// not `${NAME:-default}` (and the other forms with a default or a test),
/// nor a name the text assigns itself (`NAME=…`).
fn shell_reads(text: &str) -> Vec<String> {
    let b = text.as_bytes();
    let name_at = |mut k: usize| {
        let start = k;
        while k < b.len() && (b[k].is_ascii_alphanumeric() || b[k] == b'_') {
            k += 1;
        }
        (start, k)
    };
    let mut reads = Vec::new();
    let mut assigned: Vec<String> = Vec::new();
    let (mut i, mut double, mut word_start) = (0usize, false, true);
    while i < b.len() {
        let c = b[i];
        match c {
            b'\\' => {
                i += 2;
                word_start = false;
                continue;
            }
            b'\'' if !double => {
                while i + 1 < b.len() && b[i + 1] != b'\'' {
                    i += 1;
                }
                i += 2;
                word_start = false;
                continue;
            }
            b'"' => double = !double,
            b'#' if !double && word_start => {
                while i < b.len() && b[i] != b'\n' {
                    i += 1;
                }
                continue;
            }
            b'<' if !double && text[i..].starts_with("<<") => {
                // A quoted here-doc (`<<'EOF'`, `<<"EOF"`) expands nothing.
                let rest = text[i + 2..].trim_start_matches(['-', ' ']);
                if let Some(q) = rest.chars().next().filter(|q| *q == '\'' || *q == '"') {
                    let delim: String = rest[1..].chars().take_while(|ch| *ch != q).collect();
                    let body_from = text[i..].find('\n').map(|n| i + n + 1).unwrap_or(b.len());
                    let end = text[body_from..]
                        .split_inclusive('\n')
                        .scan(body_from, |pos, l| {
                            let at = *pos;
                            *pos += l.len();
                            Some((at, l))
                        })
                        .find(|(_, l)| l.trim() == delim)
                        .map(|(at, l)| at + l.len())
                        .unwrap_or(b.len());
                    i = end;
                    continue;
                }
            }
            b'$' => {
                if b.get(i + 1) == Some(&b'{') {
                    let (s0, e0) = name_at(i + 2);
                    let name = &text[s0..e0];
                    let optional = matches!(b.get(e0), Some(b':' | b'-' | b'=' | b'?' | b'+'));
                    if port_var(name) && !optional {
                        reads.push(name.to_string());
                    }
                    i = e0;
                    word_start = false;
                    continue;
                }
                let (s0, e0) = name_at(i + 1);
                let name = &text[s0..e0];
                if port_var(name) {
                    reads.push(name.to_string());
                }
                i = e0.max(i + 1);
                word_start = false;
                continue;
            }
            _ => {}
        }
        if word_start && (c.is_ascii_alphabetic() || c == b'_') {
            let (s0, e0) = name_at(i);
            if b.get(e0) == Some(&b'=') {
                assigned.push(text[s0..e0].to_string());
            }
        }
        word_start = c.is_ascii_whitespace() || matches!(c, b';' | b'&' | b'|' | b'(' | b'`');
        i += 1;
    }
    reads.retain(|r| !assigned.contains(r));
    reads
}

/// The port variables a Python script reads without a default:
/// `environ["NAME"]` (a KeyError when unset), not `environ.get(…)` or
/// `getenv(…)`; lines that are comments are skipped.
fn python_reads(text: &str) -> Vec<String> {
    let mut out = Vec::new();
    for line in text.lines() {
        let code = line.split('#').next().unwrap_or("");
        let mut rest = code;
        while let Some(k) = rest.find("environ[") {
            let after = &rest[k + "environ[".len()..];
            let quoted = after
                .strip_prefix('"')
                .and_then(|a| a.split_once('"'))
                .or_else(|| after.strip_prefix('\'').and_then(|a| a.split_once('\'')));
            if let Some((name, _)) = quoted {
                if port_var(name) {
                    out.push(name.to_string());
                }
            }
            rest = after;
        }
    }
    out
}

#[cfg(test)]
mod env_read_tests {
    use super::{python_reads, shell_reads};

    #[test]
    fn the_shell_reads_what_it_expands() {
        assert_eq!(
            shell_reads("cat $MLCYCLE_IN_A \"${MLCYCLE_OUT_B}\""),
            ["MLCYCLE_IN_A", "MLCYCLE_OUT_B"]
        );
        for quiet in [
            "cat x # not $MLCYCLE_IN_FOO",
            "echo '$MLCYCLE_IN_FOO'",
            "echo \\$MLCYCLE_IN_FOO",
            "echo ${MLCYCLE_OUT_Y:-x} ${MLCYCLE_OUT_Z-x}",
            "echo \"see MLCYCLE_OUT_FOO docs\"",
            "MLCYCLE_IN_FOO=x; cat $MLCYCLE_IN_FOO",
            "cat <<'X'\n$MLCYCLE_IN_FOO\nX\necho done",
        ] {
            assert_eq!(shell_reads(quiet), Vec::<String>::new(), "{quiet}");
        }
        // An unquoted here-doc expands.
        assert_eq!(
            shell_reads("cat <<X\n$MLCYCLE_IN_FOO\nX"),
            ["MLCYCLE_IN_FOO"]
        );
    }

    #[test]
    fn python_reads_only_subscripts_without_a_default() {
        let src = "import os\na = os.environ['MLCYCLE_IN_A']\nb = os.environ.get('MLCYCLE_IN_B')\n# os.environ['MLCYCLE_IN_C']\nd = os.environ[\"MLCYCLE_OUT_D\"]\n";
        assert_eq!(python_reads(src), ["MLCYCLE_IN_A", "MLCYCLE_OUT_D"]);
    }
}
