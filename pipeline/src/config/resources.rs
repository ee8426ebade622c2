//! `resources:` — what a stage asks of a cluster scheduler, and `executor:`.
//!
//! Pipeline-wide defaults at the top level, overridden key by key per
//! stage. Resources are not part of a stage's fingerprint: where a stage
//! runs does not change what it computes.

use serde_json::Value;

/// Known keys of a `resources:` mapping.
pub const KEYS: &[&str] = &["cpus", "mem", "gpus", "time", "partition"];

/// A stage's requests.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Resources {
    pub cpus: Option<u64>,
    /// Slurm memory: a number with an optional K/M/G/T suffix.
    pub mem: Option<String>,
    pub gpus: Option<u64>,
    /// Whole minutes, rounded up.
    pub time_minutes: Option<u64>,
    pub partition: Option<String>,
}

/// A problem with one key: (key, message, help).
pub type Problem = (String, String, String);

impl Resources {
    /// `self` with every key `other` sets replaced.
    pub fn overlay(&self, other: &Resources) -> Resources {
        Resources {
            cpus: other.cpus.or(self.cpus),
            mem: other.mem.clone().or_else(|| self.mem.clone()),
            gpus: other.gpus.or(self.gpus),
            time_minutes: other.time_minutes.or(self.time_minutes),
            partition: other.partition.clone().or_else(|| self.partition.clone()),
        }
    }

    /// The `sbatch` arguments.
    pub fn sbatch_args(&self) -> Vec<String> {
        let mut a = Vec::new();
        if let Some(c) = self.cpus {
            a.push(format!("--cpus-per-task={c}"));
        }
        if let Some(m) = &self.mem {
            a.push(format!("--mem={m}"));
        }
        if let Some(g) = self.gpus {
            a.push(format!("--gres=gpu:{g}"));
        }
        if let Some(t) = self.time_minutes {
            a.push(format!("--time={t}"));
        }
        if let Some(p) = &self.partition {
            a.push(format!("--partition={p}"));
        }
        a
    }

    /// Parses a `resources:` mapping; every problem is returned.
    pub fn parse(v: &Value) -> Result<Resources, Vec<Problem>> {
        let Some(map) = v.as_object() else {
            return Err(vec![(
                String::new(),
                "`resources` must be a mapping".into(),
                format!("keys: {}", KEYS.join(", ")),
            )]);
        };
        let mut r = Resources::default();
        let mut problems = Vec::new();
        for (k, v) in map {
            let bad = |msg: String, help: &str| (k.clone(), msg, help.to_string());
            match k.as_str() {
                "cpus" | "gpus" => match v.as_u64() {
                    Some(n) if n > 0 || k == "gpus" => {
                        if k == "cpus" {
                            r.cpus = Some(n);
                        } else {
                            r.gpus = Some(n);
                        }
                    }
                    _ => problems.push(bad(
                        format!("`{k}` must be a positive whole number, got {v}"),
                        "e.g. `cpus: 4`",
                    )),
                },
                "mem" => match parse_mem(v) {
                    Some(m) => r.mem = Some(m),
                    None => problems.push(bad(
                        format!("`mem` must be an amount like 512M, 2G or 1.5T, got {v}"),
                        "a number of megabytes, or a number with K, M, G or T",
                    )),
                },
                "time" => match parse_minutes(v) {
                    Some(m) => r.time_minutes = Some(m),
                    None => problems.push(bad(
                        format!("`time` must be a duration like 90s, 30m, 2h, 1h30m or 01:30:00, got {v}"),
                        "a number alone is minutes; Slurm gets whole minutes, rounded up",
                    )),
                },
                "partition" => match v.as_str().filter(|s| !s.trim().is_empty()) {
                    Some(p) => r.partition = Some(p.to_string()),
                    None => problems.push(bad(
                        "`partition` must be a non-empty string".into(),
                        "e.g. `partition: gpu`",
                    )),
                },
                other => {
                    let near = crate::suggest::did_you_mean(other, KEYS);
                    problems.push((
                        other.to_string(),
                        format!("unknown resource `{other}`"),
                        if near.is_empty() {
                            format!("keys: {}", KEYS.join(", "))
                        } else {
                            near
                        },
                    ));
                }
            }
        }
        if problems.is_empty() {
            Ok(r)
        } else {
            Err(problems)
        }
    }
}

fn parse_mem(v: &Value) -> Option<String> {
    if let Some(n) = v.as_u64() {
        return (n > 0).then(|| format!("{n}M"));
    }
    let s = v.as_str()?.trim();
    let (num, unit) = match s.char_indices().last()? {
        (i, c) if c.is_ascii_alphabetic() => (&s[..i], c.to_ascii_uppercase()),
        _ => (s, 'M'),
    };
    if !"KMGT".contains(unit) {
        return None;
    }
    let x: f64 = num.trim().parse().ok()?;
    if !(x > 0.0 && x.is_finite()) {
        return None;
    }
    // Slurm takes whole numbers: 1.5G is 1536M.
    if x.fract() == 0.0 {
        return Some(format!("{}{unit}", x as u64));
    }
    let down = match unit {
        'T' => ('G', 1024.0),
        'G' => ('M', 1024.0),
        'M' => ('K', 1024.0),
        _ => return Some(format!("{}K", x.ceil() as u64)),
    };
    Some(format!("{}{}", (x * down.1).ceil() as u64, down.0))
}

/// Minutes, rounded up.
fn parse_minutes(v: &Value) -> Option<u64> {
    if let Some(n) = v.as_f64() {
        return (n > 0.0 && n.is_finite()).then(|| n.ceil() as u64);
    }
    let s = v.as_str()?.trim();
    let secs: f64 = if s.contains(':') {
        let parts: Vec<f64> = s
            .split(':')
            .map(|p| p.parse::<f64>().ok())
            .collect::<Option<_>>()?;
        match parts[..] {
            [m, sec] => m * 60.0 + sec,
            [h, m, sec] => h * 3600.0 + m * 60.0 + sec,
            _ => return None,
        }
    } else {
        let mut total = 0.0;
        let mut num = String::new();
        let mut any = false;
        for c in s.chars() {
            if c.is_ascii_digit() || c == '.' {
                num.push(c);
                continue;
            }
            let n: f64 = num.parse().ok()?;
            num.clear();
            total += n * match c {
                'd' => 86400.0,
                'h' => 3600.0,
                'm' => 60.0,
                's' => 1.0,
                _ => return None,
            };
            any = true;
        }
        if !num.is_empty() {
            if any {
                return None;
            }
            total = num.parse::<f64>().ok()? * 60.0;
        }
        total
    };
    (secs > 0.0 && secs.is_finite()).then(|| (secs / 60.0).ceil() as u64)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn resources_become_sbatch_arguments() {
        let r = Resources::parse(
            &json!({"cpus": 4, "mem": "1.5G", "gpus": 1, "time": "1h30m5s", "partition": "gpu"}),
        )
        .unwrap();
        assert_eq!(
            r.sbatch_args(),
            [
                "--cpus-per-task=4",
                "--mem=1536M",
                "--gres=gpu:1",
                "--time=91",
                "--partition=gpu"
            ]
        );
        assert_eq!(parse_minutes(&json!("90s")), Some(2));
        assert_eq!(parse_minutes(&json!(10)), Some(10));
        assert_eq!(parse_minutes(&json!("01:00:01")), Some(61));
        assert_eq!(parse_mem(&json!(512)), Some("512M".into()));
        let d = Resources::parse(&json!({"mem": "4G", "time": 5})).unwrap();
        let s = Resources::parse(&json!({"mem": "8G"})).unwrap();
        assert_eq!(d.overlay(&s).sbatch_args(), ["--mem=8G", "--time=5"]);
    }

    #[test]
    fn every_bad_key_is_reported() {
        let e = Resources::parse(&json!({"cpu": 2, "mem": "lots", "time": "soon"})).unwrap_err();
        assert_eq!(e.len(), 3);
        assert!(
            e.iter().any(|p| p.2.contains("did you mean `cpus`?")),
            "{e:?}"
        );
    }
}
