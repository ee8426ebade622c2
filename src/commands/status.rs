//! `status`, `dag` and `validate`: what the pipeline is and what would run.

use super::*;

pub(super) fn cmd_status(cli: &Cli, a: &StatusArgs, registry: &StageRegistry) -> Result<u8, Fail> {
    let t = std::time::Instant::now();
    let (session, targets) = open_with(cli, &a.target, registry, true, false)?;
    tracing::debug!(
        ms = t.elapsed().as_secs_f64() * 1e3,
        stages = session.pipeline().stages.len(),
        rss_mb = rss_mb(),
        "Loaded the pipeline."
    );
    let selected = session.select(&targets, a.downstream)?;
    if !cli.quiet && !a.json {
        warn_missing_sources(session.pipeline());
    }
    let st = session.status(&selected)?;
    if !cli.quiet && !a.json {
        // `run` would refuse these; say so before it is tried.
        if let Err(e) = session.check_sources_in_outputs() {
            tracing::warn!("{e}; `mlcycle run` refuses to start until they are moved.");
        }
    }
    tracing::debug!(
        ms = t.elapsed().as_secs_f64() * 1e3,
        rss_mb = rss_mb(),
        "Assessed every stage."
    );
    // Frozen stages are listed (with what they would run for) but do not
    // make the workspace out of date: they are kept on purpose.
    let stale: Vec<_> = st.iter().filter(|s| s.state != "fresh").collect();
    let would_run = stale.iter().filter(|s| s.state != "frozen").count();
    if a.json {
        let v = serde_json::json!({
            "pipeline": session.pipeline().name,
            "up_to_date": would_run == 0,
            "stages": st,
        });
        outln!("{}", serde_json::to_string_pretty(&v).expect("json"));
    } else if !cli.quiet {
        out!("{}", status_table(&st, &stale, cli.verbose > 0));
    }
    // The process ends now: let the OS reclaim the plan's many small
    // allocations instead of freeing them one by one.
    std::mem::forget(session);
    Ok(if would_run == 0 { 0 } else { 1 })
}

/// Says which deps name files that do not exist (with the nearest path
/// when one is close): their stages are blocked, and `validate` refuses
/// the pipeline.
pub(super) fn warn_missing_sources(p: &Pipeline) {
    for m in &p.missing_sources {
        tracing::warn!("{m}; the stage is blocked until the file exists.");
    }
}

pub(super) fn status_table(st: &[StageStatus], stale: &[&StageStatus], verbose: bool) -> String {
    let mut out = String::new();
    let rows: Vec<&StageStatus> = if verbose {
        st.iter().collect()
    } else {
        stale.to_vec()
    };
    if !rows.is_empty() {
        let w = rows
            .iter()
            .map(|r| r.stage.chars().count())
            .max()
            .unwrap_or(5)
            .max(5);
        out.push_str(&format!("{:<w$}  {:<10}  REASON\n", "STAGE", "STATE"));
        for r in rows {
            let why: Vec<String> = r.reasons.iter().map(|x| x.to_string()).collect();
            out.push_str(&format!(
                "{:<w$}  {:<10}  {}\n",
                r.stage,
                r.state,
                why.join("; ")
            ));
        }
    }
    let frozen = stale.iter().filter(|s| s.state == "frozen").count();
    let blocked = stale.iter().filter(|s| s.state == "blocked").count();
    let would_run = stale.len() - frozen - blocked;
    let mut notes = Vec::new();
    if blocked > 0 {
        notes.push(format!("{blocked} blocked"));
    }
    if frozen > 0 {
        notes.push(format!("{frozen} frozen"));
    }
    let kept = if notes.is_empty() {
        String::new()
    } else {
        format!(" ({})", notes.join(", "))
    };
    if would_run == 0 && frozen == 0 && blocked == 0 {
        match st.len() {
            1 => out.push_str("the 1 stage is fresh\n"),
            n => out.push_str(&format!("all {n} stages fresh\n")),
        }
    } else if would_run == 0 {
        out.push_str(&format!("nothing would run{kept}\n"));
    } else {
        out.push_str(&format!(
            "{would_run} of {} stages would run or be restored{kept}\n",
            st.len()
        ));
    }
    out
}

pub(super) fn cmd_dag(
    cli: &Cli,
    t: &TargetArgs,
    format: DagFormat,
    registry: &StageRegistry,
) -> Result<u8, Fail> {
    let (session, targets) = open(cli, t, registry)?;
    let (p, g) = (session.pipeline(), session.graph());
    let keep = session.select(&targets, false)?;
    let s = match format {
        DagFormat::Mermaid => g.mermaid(p, &keep),
        DagFormat::Dot => g.dot(p, &keep),
        DagFormat::Text => g.text(p, &keep),
    };
    out!("{s}");
    Ok(0)
}

pub(super) fn cmd_validate(
    cli: &Cli,
    t: &TargetArgs,
    registry: &StageRegistry,
) -> Result<u8, Fail> {
    let (session, targets) = open_with(cli, t, registry, false, true)?;
    session.check_sources_in_outputs()?;
    let p = session.pipeline();
    if let Some(name) = targets.first() {
        return Err(CliError::Usage(format!(
            "`validate` checks the whole pipeline and takes no stage names (got `{name}`); pass a workspace folder or nothing"
        ))
        .into());
    }
    let edges: usize = p
        .stages
        .iter()
        .map(|s| {
            s.inputs
                .iter()
                .filter(|i| matches!(i.source, mlcycle_pipeline::config::Source::Stage { .. }))
                .count()
        })
        .sum();
    if !cli.quiet {
        let plural =
            |n: usize, one: &str, many: &str| format!("{n} {}", if n == 1 { one } else { many });
        outln!(
            "pipeline `{}` is valid: {}, {}",
            p.name,
            plural(p.stages.len(), "stage", "stages"),
            plural(edges, "stage-to-stage input", "stage-to-stage inputs")
        );
    }
    Ok(0)
}
