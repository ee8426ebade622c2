//! `show`: one artifact, or the list of them.

use super::*;

pub(super) fn cmd_show(cli: &Cli, a: &ShowArgs, registry: &StageRegistry) -> Result<u8, Fail> {
    let (session, rest) = open(
        cli,
        &TargetArgs {
            args: a.args.clone(),
            params: vec![],
        },
        registry,
    )?;
    let p = session.pipeline();
    let Some(artifact) = rest.first() else {
        out!("{}", artifact_list(p));
        return Ok(0);
    };
    if let Some(extra) = rest.get(1) {
        return Err(CliError::Usage(format!(
            "`show` takes one artifact (got `{artifact}` and `{extra}`); a workspace folder comes first: `mlcycle show DIR STAGE.PORT`"
        ))
        .into());
    }
    let usage = || {
        CliError::Usage(format!(
            "`{artifact}` is not `STAGE.PORT`; `mlcycle show` lists the artifacts"
        ))
    };
    // A stage id may hold dots (`train@0.1`, `split@data.csv`): the
    // longest prefix that names a stage is the stage.
    let (sid, port) = artifact
        .match_indices('.')
        .rev()
        .map(|(i, _)| (&artifact[..i], &artifact[i + 1..]))
        .find(|(sid, _)| p.stages.iter().any(|s| s.id == *sid))
        .or_else(|| artifact.split_once('.'))
        .ok_or_else(usage)?;
    let Some(stage) = p.stages.iter().find(|s| s.id == sid) else {
        let help = mlcycle_pipeline::suggest::closest(sid, p.stages.iter().map(|s| s.id.as_str()))
            .map(|s| format!("did you mean `{s}`?"));
        return Err(CliError::Usage(format!(
            "the pipeline has no stage `{sid}`{}",
            help.map(|h| format!("; {h}")).unwrap_or_default()
        ))
        .into());
    };
    let Some(out) = stage.outputs.iter().find(|o| o.name == port) else {
        let names: Vec<&str> = stage.outputs.iter().map(|o| o.name.as_str()).collect();
        return Err(CliError::Usage(format!(
            "stage `{sid}` has no output `{port}` (it has: {})",
            names.join(", ")
        ))
        .into());
    };
    let path = p.root.join(&out.path);
    if !path.exists() {
        // A command the user can paste where they are: name the workspace
        // unless it is the current folder.
        let here = std::env::current_dir()
            .ok()
            .and_then(|d| d.canonicalize().ok());
        let ws = match (here, p.root.canonicalize().ok()) {
            (Some(h), Some(r)) if h == r => String::new(),
            _ => format!("{} ", p.root.display()),
        };
        return Err(CliError::Usage(format!(
            "`{}` has not been produced yet ({} is missing); run `mlcycle run {ws}{sid}` first",
            artifact, out.path
        ))
        .into());
    }
    let text = if out.path.ends_with(".arrow") {
        mlcycle_stages::table::Table::read(&path)
            .map_err(|e| CliError::Io(e.to_string()))?
            .preview(a.rows)
    } else if path.is_dir() {
        let files =
            mlcycle_pipeline::cache::walk_files(&path).map_err(|e| CliError::Io(e.to_string()))?;
        files.iter().map(|(r, _)| format!("{r}\n")).collect()
    } else {
        let bytes = std::fs::read(&path)
            .map_err(|e| CliError::Io(format!("cannot read {}: {e}", out.path)))?;
        if mlcycle_stages::onnx::looks_like_onnx(&bytes) && out.path.ends_with(".onnx") {
            // An ONNX model: what mlcycle reads from it.
            return match mlcycle_stages::model::Model::from_onnx(bytes) {
                Ok(m) => {
                    out!("{}", onnx_summary(&out.path, &m));
                    Ok(0)
                }
                Err(e) => Err(CliError::Io(format!("{}: {e}", out.path)).into()),
            };
        }
        match String::from_utf8(bytes) {
            Ok(s) => s,
            Err(e) => format!(
                "{} ({} bytes of binary data)\n",
                out.path,
                e.as_bytes().len()
            ),
        }
    };
    out!("{text}");
    Ok(0)
}

/// Every stage's outputs: `STAGE.PORT`, the path, and whether it exists.
pub(super) fn artifact_list(p: &Pipeline) -> String {
    let rows: Vec<(String, &str, &str)> = p
        .stages
        .iter()
        .flat_map(|s| {
            s.outputs.iter().map(move |o| {
                // As `show STAGE.PORT` sees it: a dangling link is missing.
                let state = if p.root.join(&o.path).exists() {
                    "present"
                } else {
                    "missing"
                };
                (format!("{}.{}", s.id, o.name), o.path.as_str(), state)
            })
        })
        .collect();
    if rows.is_empty() {
        return "the pipeline declares no outputs\n".into();
    }
    let w = rows
        .iter()
        .map(|r| r.0.chars().count())
        .max()
        .unwrap_or(8)
        .max(8);
    let pw = rows
        .iter()
        .map(|r| r.1.chars().count())
        .max()
        .unwrap_or(4)
        .max(4);
    let mut out = format!("{:<w$}  {:<pw$}  STATE\n", "ARTIFACT", "PATH");
    for (name, path, state) in rows {
        out.push_str(&format!("{name:<w$}  {path:<pw$}  {state}\n"));
    }
    out.push_str("`mlcycle show STAGE.PORT` prints one (a table's schema and first rows)\n");
    out
}

/// What `mlcycle show` prints for an ONNX model file.
fn onnx_summary(path: &str, m: &mlcycle_stages::model::Model) -> String {
    let mut s = format!(
        "{path}: ONNX model `{}`, {}\n  inputs: {}\n",
        m.kind,
        m.task.as_str(),
        m.features.join(", ")
    );
    if let Some(t) = &m.target {
        s.push_str(&format!("  target: {t}\n"));
    }
    if !m.classes.is_empty() {
        s.push_str(&format!("  classes: {}\n", m.classes.join(", ")));
    }
    if !m.lineage.stage.is_empty() {
        s.push_str(&format!(
            "  trained by stage `{}` on {} rows\n",
            m.lineage.stage, m.lineage.rows
        ));
    }
    s
}
