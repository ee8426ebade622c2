//! `serve` and `predict`: scoring with a bundle, over HTTP or offline.

use super::*;

#[cfg(feature = "serve")]
pub(super) fn cmd_serve(cli: &Cli, a: &crate::cli::ServeArgs) -> Result<u8, Fail> {
    use mlcycle_stages::deploy::serve;
    // A bundle can be served from outside any workspace: its prediction log
    // then lives in the current (or `-C`) folder.
    let dir = match locate_root(cli.dir.as_deref(), a.workspace.dir.as_deref()) {
        Ok(d) => d,
        Err(_) if a.bundle.is_some() && a.workspace.dir.is_none() => {
            cli.dir.clone().unwrap_or_else(|| PathBuf::from("."))
        }
        Err(e) => return Err(e),
    };
    let ws = Workspace::new(dir.canonicalize().unwrap_or(dir.clone()));
    let addr = listen_addr(&a.host, a.port)?;
    for (flag, v) in [
        ("--header-timeout", a.header_timeout),
        ("--body-timeout", a.body_timeout),
    ] {
        if !(v > 0.0 && v.is_finite() && v < 1e9) {
            return Err(
                CliError::Usage(format!("`{flag}` must be a positive number of seconds")).into(),
            );
        }
    }
    let state = ws
        .db_path()
        .parent()
        .expect("the db is in a folder")
        .to_path_buf();
    std::fs::create_dir_all(&state).map_err(|e| CliError::Io(e.to_string()))?;
    serve::serve(serve::ServeOptions {
        addr,
        workers: a
            .workers
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(2, |n| n.get())),
        max_body: a.max_body,
        header_timeout: std::time::Duration::from_secs_f64(a.header_timeout),
        body_timeout: std::time::Duration::from_secs_f64(a.body_timeout),
        max_connections: a.max_connections,
        feedback_quota: a.feedback_quota,
        strict_columns: a.strict_columns,
        bundle: a.bundle.clone(),
        feedback_log: ws.root.join("feedback").join("labels.jsonl"),
        served_log: ws.root.join(mlcycle_stages::dataset::served_path()),
        drift_window: a.drift_window,
        state,
        poll: std::time::Duration::from_millis(500),
    })?;
    Ok(0)
}

pub(super) fn cmd_predict(a: &PredictArgs) -> Result<u8, Fail> {
    use mlcycle_stages::deploy::Bundle;
    use mlcycle_stages::model::Predictions;
    let bundle = Bundle::load(&a.bundle).map_err(|e| CliError::Predict {
        message: e.to_string(),
        help: "rebuild the bundle with `mlcycle run`; a bundle is the folder with bundle.json"
            .into(),
    })?;
    // `-` reads standard input through a temporary file (the CSV reader
    // reports line numbers from a path).
    let stdin_copy;
    let input: &std::path::Path = if a.input.as_os_str() == "-" {
        let mut tmp = tempfile::NamedTempFile::new().map_err(|e| CliError::Io(e.to_string()))?;
        std::io::copy(&mut std::io::stdin().lock(), &mut tmp)
            .map_err(|e| CliError::Io(format!("cannot read standard input: {e}")))?;
        stdin_copy = tmp.into_temp_path();
        &stdin_copy
    } else {
        &a.input
    };
    let needs = || {
        bundle
            .model
            .inputs
            .iter()
            .map(|c| format!("{} ({})", c.name, c.ty))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let shown = a.input.display().to_string();
    let shown = if shown == "-" {
        "standard input".to_string()
    } else {
        shown
    };
    let rows = bundle.read_csv(input).map_err(|e| CliError::Predict {
        message: e.to_string().replace(&input.display().to_string(), &shown),
        help: format!("the model needs columns: {}", needs()),
    })?;
    // A category the model never saw is scored as all zeros: say so, with
    // the rows it touches (with `unknown: error` the predict below fails).
    for u in mlcycle_stages::transform::unseen_categories(&bundle.model.transforms, &rows) {
        tracing::warn!(
            column = %u.column,
            value = %u.value,
            rows = u.rows,
            known = %known_categories(&bundle.model.transforms, &u.column),
            "Category unseen in training; scored as all zeros (the model's prediction for it is a guess)"
        );
    }
    let pred = bundle.predict(&rows).map_err(|e| CliError::Predict {
        message: format!("cannot score {shown}: {e}"),
        help: format!(
            "the model `{}` (version {}) needs columns: {}",
            bundle.manifest.name,
            bundle.manifest.version,
            needs()
        ),
    })?;
    if a.proba && !matches!(pred, Predictions::Classes { proba: Some(_), .. }) {
        return Err(CliError::Predict {
            message: format!(
                "`--proba`: the model `{}` ({}) gives no class probabilities",
                bundle.manifest.name, bundle.model.kind
            ),
            help: "class probabilities come from classifiers: logistic regression, naive Bayes, decision trees, random forests, gradient boosting, neural networks (`train.mlp`) and ONNX classifiers; drop `--proba`".into(),
        }
        .into());
    }
    let scored = bundle.with_predictions(&rows, &pred, a.proba);
    tracing::info!(
        rows = rows.n_rows(),
        model = %bundle.manifest.name,
        version = %bundle.manifest.version,
        "Scored rows"
    );
    let text = if a.json {
        let mut s = String::new();
        for r in 0..scored.n_rows() {
            let mut obj = serde_json::Map::new();
            for c in &scored.columns {
                let v = match &c.data {
                    mlcycle_stages::table::ColumnData::Numeric(v) if v[r].is_finite() => {
                        serde_json::json!(v[r])
                    }
                    mlcycle_stages::table::ColumnData::Numeric(_) => serde_json::Value::Null,
                    mlcycle_stages::table::ColumnData::Categorical(v) => serde_json::json!(v[r]),
                };
                obj.insert(c.name.clone(), v);
            }
            s.push_str(&serde_json::Value::Object(obj).to_string());
            s.push('\n');
        }
        s
    } else {
        let tmp = tempfile::NamedTempFile::new().map_err(|e| CliError::Io(e.to_string()))?;
        scored
            .write_csv(tmp.path())
            .map_err(|e| CliError::Io(e.to_string()))?;
        std::fs::read_to_string(tmp.path()).map_err(|e| CliError::Io(e.to_string()))?
    };
    match &a.output {
        Some(p) => std::fs::write(p, text)
            .map_err(|e| CliError::Io(format!("cannot write {}: {e}", p.display())))?,
        None => {
            use std::io::Write;
            let mut out = std::io::stdout().lock();
            let _ = out.write_all(text.as_bytes());
        }
    }
    Ok(0)
}

/// The categories the one-hot step of `column` knows, for a warning.
fn known_categories(chain: &[mlcycle_stages::transform::Transform], column: &str) -> String {
    chain
        .iter()
        .find_map(|t| match t {
            mlcycle_stages::transform::Transform::OneHot {
                column: c,
                categories,
                ..
            } if c == column => Some(categories.join(", ")),
            _ => None,
        })
        .unwrap_or_default()
}

/// `mlcycle ui`: serves the web app for the workspace until Ctrl-C.
#[cfg(feature = "serve")]
pub(super) fn cmd_ui(
    cli: &Cli,
    a: &crate::cli::UiArgs,
    registry: StageRegistry,
) -> Result<u8, Fail> {
    let root = locate_root(cli.dir.as_deref(), a.workspace.dir.as_deref())?;
    let root = root.canonicalize().unwrap_or(root);
    let file = root.join(PIPELINE_FILE);
    let addr = listen_addr(&a.host, a.port)?;
    if a.token.as_deref().is_some_and(|t| t.len() < 16) {
        return Err(CliError::Usage(
            "`--token` must be at least 16 characters; leave it out to have one generated".into(),
        )
        .into());
    }
    // Anything but loopback is reachable by others: never without a token.
    let token = match &a.token {
        Some(t) => Some(t.clone()),
        None if !addr.ip().is_loopback() => Some(crate::ui::random_token()),
        None => None,
    };
    crate::ui::serve(
        crate::ui::UiOptions {
            root,
            file,
            addr,
            token,
            allow_actions: a.allow_actions,
        },
        registry,
    )
    .map_err(|e| CliError::Io(e.to_string()))?;
    Ok(0)
}

/// The address `--host` and `--port` name (an IP or a host name).
#[cfg(feature = "serve")]
fn listen_addr(host: &str, port: u16) -> Result<std::net::SocketAddr, Fail> {
    format!("{host}:{port}")
        .parse()
        .or_else(|_| {
            use std::net::ToSocketAddrs;
            (host, port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut it| it.next())
                .ok_or(())
        })
        .map_err(|_| CliError::Usage(format!("`{host}` is not a host to listen on")).into())
}
