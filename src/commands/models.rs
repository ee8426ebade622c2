//! `models` and `history`: the model registry and its promotion decisions.

use super::*;

/// The workspace's model registry (`-C` or the current folder).
pub(super) fn open_registry(
    cli: &Cli,
    w: &WorkspaceArg,
) -> Result<mlcycle_stages::deploy::registry::ModelRegistry, Fail> {
    let dir = locate_root(cli.dir.as_deref(), w.dir.as_deref())?;
    let ws = Workspace::new(dir.canonicalize().unwrap_or(dir));
    let state = ws
        .db_path()
        .parent()
        .expect("the db is in a folder")
        .to_path_buf();
    mlcycle_stages::deploy::registry::ModelRegistry::open(&state)
        .map_err(|e| CliError::Io(e.to_string()).into())
}

/// A metric of a registered version for the table, if it has it.
pub(super) fn headline(m: &serde_json::Value) -> String {
    for k in ["r2", "accuracy", "rmse", "f1_macro"] {
        if let Some(v) = m.get(k).and_then(serde_json::Value::as_f64) {
            return format!("{k} {}", mlcycle_stages::table::short(v));
        }
    }
    "-".into()
}

pub(super) fn cmd_models(cli: &Cli, a: &ModelsArgs) -> Result<u8, Fail> {
    let mut reg = open_registry(cli, &a.workspace)?;
    let fail = |e: mlcycle_stages::deploy::registry::RegistryError| -> Fail {
        CliError::Usage(format!("{e}; `mlcycle models` lists the versions")).into()
    };
    match &a.cmd {
        Some(ModelsCmd::Promote { version, reason }) => {
            if reg.champion_version().map_err(fail)? == Some(*version) {
                outln!("version {version} is already the champion");
                return Ok(0);
            }
            let e = reg.promote(*version, "promote", reason).map_err(fail)?;
            outln!(
                "version {} is the champion (was {})",
                e.version,
                e.previous.map_or("none".to_string(), |p| p.to_string())
            );
            return Ok(0);
        }
        Some(ModelsCmd::Rollback { reason }) => {
            let e = reg.rollback(reason).map_err(fail)?;
            outln!(
                "version {} is the champion again (was {})",
                e.version,
                e.previous.map_or("none".to_string(), |p| p.to_string())
            );
            return Ok(0);
        }
        None => {}
    }
    let versions = reg.list().map_err(fail)?;
    let champion = reg.champion_version().map_err(fail)?;
    if a.json {
        let v = serde_json::json!({
            "champion": champion,
            "versions": versions,
            "events": reg.events().map_err(fail)?,
        });
        outln!("{}", serde_json::to_string_pretty(&v).expect("json"));
        return Ok(0);
    }
    if versions.is_empty() {
        outln!("no model versions yet: a `deploy.promote` stage registers them");
        return Ok(0);
    }
    outln!(
        "{:>7}  {:<20}  {:<26}  {:<16}  {:>6}  {:<20}",
        "VERSION",
        "NAME",
        "KIND",
        "METRIC",
        "RUN",
        "REGISTERED"
    );
    for v in &versions {
        outln!(
            "{:>7}  {:<20}  {:<26}  {:<16}  {:>6}  {:<20}{}",
            v.version,
            v.name,
            v.kind,
            headline(&v.metrics),
            v.run_id.map_or("-".to_string(), |r| r.to_string()),
            v.created_at,
            if Some(v.version) == champion {
                "  champion"
            } else {
                ""
            }
        );
    }
    Ok(0)
}

pub(super) fn cmd_history(cli: &Cli, a: &HistoryArgs) -> Result<u8, Fail> {
    let reg = open_registry(cli, &a.workspace)?;
    let decisions = reg.decisions().map_err(|e| CliError::Io(e.to_string()))?;
    if a.json {
        outln!(
            "{}",
            serde_json::to_string_pretty(&decisions).expect("json")
        );
    } else if decisions.is_empty() {
        outln!("no promotion decisions yet: a `deploy.promote` stage makes them");
    } else {
        outln!(
            "{:>4}  {:>10}  {:>9}  {:<10}  {:>9}  {:>8}  {:<22}  {:<8}  MESSAGE",
            "RUN",
            "TRAIN ROWS",
            "TEST ROWS",
            "METRIC",
            "CANDIDATE",
            "CHAMPION",
            "SCORES (NEW / CHAMPION)",
            "DECISION"
        );
        for d in &decisions {
            let num = |v: Option<f64>| v.map_or("-".to_string(), mlcycle_stages::table::short);
            outln!(
                "{:>4}  {:>10}  {:>9}  {:<10}  {:>9}  {:>8}  {:<23}  {:<8}  {}",
                d.run_id.map_or("-".to_string(), |r| r.to_string()),
                d.train_rows.map_or("-".to_string(), |r| r.to_string()),
                d.rows,
                d.metric,
                format!("v{}", d.candidate),
                d.champion.map_or("-".to_string(), |c| format!("v{c}")),
                format!("{} / {}", num(d.candidate_value), num(d.champion_value)),
                if d.promoted { "promoted" } else { "kept" },
                d.message
            );
        }
    }
    if let Some(dir) = &a.plot {
        let pts =
            |f: &dyn Fn(&mlcycle_stages::deploy::registry::Decision) -> Option<f64>| -> Vec<(f64, f64)> {
                decisions
                    .iter()
                    .enumerate()
                    .filter_map(|(i, d)| f(d).map(|v| ((i + 1) as f64, v)))
                    .collect()
            };
        let metric = decisions
            .last()
            .map_or("metric".to_string(), |d| d.metric.clone());
        mlcycle_stages::plot::curve_with(
            dir,
            "history",
            &format!("{metric} over iterations"),
            ("decision", &metric),
            &[
                ("candidate", pts(&|d| d.candidate_value)),
                ("champion before", pts(&|d| d.champion_value)),
            ],
            mlcycle_stages::plot::CurveStyle {
                log_y: false,
                markers: true,
            },
        )
        .map_err(CliError::Io)?;
        eprintln!("wrote {0}/history.svg and {0}/history.png", dir.display());
    }
    Ok(0)
}
