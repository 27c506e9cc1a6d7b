//! TOML workloads: a model (layers, widths, heads, FFN, MoE) × a run (phases, batch,
//! sequence lengths, precision), expanded into the cascade instances of one layer.

use cascade_einsum::{Routing, SourceFile};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;

/// Errors loading a workload: always name the file, and the line:column or field.
#[derive(Debug, thiserror::Error)]
pub enum WorkloadError {
    #[error("{file}: cannot read: {source}")]
    Io {
        file: String,
        source: std::io::Error,
    },
    #[error("{file}:{line}:{col}: {message}")]
    Parse {
        file: String,
        line: usize,
        col: usize,
        message: String,
    },
    #[error("{file}: {field}: {message}")]
    Invalid {
        file: String,
        field: String,
        message: String,
    },
    #[error("unknown built-in workload `{0}` (built in: {1})")]
    Unknown(String, String),
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord)]
#[serde(rename_all = "lowercase")]
pub enum Phase {
    Prefill,
    Decode,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Ffn {
    Gelu,
    Relu,
    Swiglu,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Norm {
    Layernorm,
    Rmsnorm,
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
pub enum AttentionCascade {
    #[serde(rename = "3-pass")]
    ThreePass,
    #[serde(rename = "2-pass")]
    TwoPass,
    #[serde(rename = "1-pass")]
    OnePass,
}

impl AttentionCascade {
    pub fn cascade_name(self) -> &'static str {
        match self {
            AttentionCascade::ThreePass => "attention_3pass",
            AttentionCascade::TwoPass => "attention_2pass",
            AttentionCascade::OnePass => "attention_1pass",
        }
    }
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Precision {
    Bf16,
    Fp16,
    Fp8,
    Fp32,
}

impl Precision {
    pub fn bytes(self) -> u64 {
        match self {
            Precision::Fp8 => 1,
            Precision::Bf16 | Precision::Fp16 => 2,
            Precision::Fp32 => 4,
        }
    }
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Moe {
    pub experts: u64,
    pub top_k: u64,
    /// Zipf exponent of tokens per expert (0 = balanced).
    #[serde(default)]
    pub skew: f64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub layers: u64,
    pub d_model: u64,
    pub heads: u64,
    pub kv_heads: u64,
    pub head_dim: u64,
    pub ffn_dim: u64,
    pub ffn: Ffn,
    pub norm: Norm,
    #[serde(default)]
    pub moe: Option<Moe>,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Run {
    pub phases: Vec<Phase>,
    pub batch: u64,
    pub seq_len: Vec<u64>,
    pub precision: Precision,
    pub attention: AttentionCascade,
    pub partition: u64,
}

#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
pub struct Workload {
    pub name: String,
    #[serde(default)]
    pub description: String,
    #[serde(default)]
    pub source: String,
    pub model: Model,
    pub run: Run,
}

/// Built-in workloads (`workloads/*.toml`), embedded.
pub const BUILTIN: &[(&str, &str)] = &[
    ("bert_base", include_str!("../workloads/bert_base.toml")),
    ("trxl_wt103", include_str!("../workloads/trxl_wt103.toml")),
    ("t5_small", include_str!("../workloads/t5_small.toml")),
    ("xlm", include_str!("../workloads/xlm.toml")),
    ("llama3_8b", include_str!("../workloads/llama3_8b.toml")),
    (
        "mixtral_8x7b",
        include_str!("../workloads/mixtral_8x7b.toml"),
    ),
    ("opt_13b", include_str!("../workloads/opt_13b.toml")),
];

/// The four FuseMax models, in the paper's order.
pub const FUSEMAX_MODELS: [&str; 4] = ["bert_base", "trxl_wt103", "t5_small", "xlm"];

impl Workload {
    /// Parse and validate workload TOML; `file` names it in errors.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Workload, WorkloadError> {
        let w: Workload = toml::from_str(text).map_err(|e| {
            let (line, col) = e
                .span()
                .map_or((0, 0), |s| SourceFile::new(file, text).line_col(s.start));
            WorkloadError::Parse {
                file: file.to_string(),
                line,
                col,
                message: e.message().to_string(),
            }
        })?;
        w.validate(file)?;
        Ok(w)
    }

    /// Load a workload file, or a built-in by name (`bert_base`).
    pub fn load(path_or_name: &str) -> Result<Workload, WorkloadError> {
        let p = Path::new(path_or_name);
        if p.exists() {
            let text = std::fs::read_to_string(p).map_err(|source| WorkloadError::Io {
                file: path_or_name.to_string(),
                source,
            })?;
            return Workload::from_toml_str(&text, path_or_name);
        }
        let stem = p
            .file_stem()
            .map(|s| s.to_string_lossy().into_owned())
            .unwrap_or_default();
        match BUILTIN
            .iter()
            .find(|(n, _)| *n == path_or_name || (p.extension().is_none() && *n == stem))
        {
            Some((n, text)) => Workload::from_toml_str(text, &format!("workloads/{n}.toml")),
            None if p.extension().is_some() => Err(WorkloadError::Io {
                file: path_or_name.to_string(),
                source: std::io::Error::new(std::io::ErrorKind::NotFound, "no such file"),
            }),
            None => Err(WorkloadError::Unknown(
                path_or_name.to_string(),
                BUILTIN
                    .iter()
                    .map(|(n, _)| *n)
                    .collect::<Vec<_>>()
                    .join(", "),
            )),
        }
    }

    fn validate(&self, file: &str) -> Result<(), WorkloadError> {
        let bad = |field: &str, message: String| {
            Err(WorkloadError::Invalid {
                file: file.to_string(),
                field: field.to_string(),
                message,
            })
        };
        let m = &self.model;
        for (f, v) in [
            ("model.layers", m.layers),
            ("model.d_model", m.d_model),
            ("model.heads", m.heads),
            ("model.kv_heads", m.kv_heads),
            ("model.head_dim", m.head_dim),
            ("model.ffn_dim", m.ffn_dim),
            ("run.batch", self.run.batch),
            ("run.partition", self.run.partition),
        ] {
            if v == 0 {
                return bad(f, "must be ≥ 1".into());
            }
        }
        if !m.heads.is_multiple_of(m.kv_heads) {
            return bad(
                "model.kv_heads",
                format!(
                    "{} query heads cannot be shared evenly by {} KV heads",
                    m.heads, m.kv_heads
                ),
            );
        }
        if let Some(moe) = &m.moe {
            if moe.experts == 0 || moe.top_k == 0 || moe.top_k > moe.experts {
                return bad(
                    "model.moe.top_k",
                    format!(
                        "need 1 ≤ top_k ≤ experts, got top_k = {} of {}",
                        moe.top_k, moe.experts
                    ),
                );
            }
            if moe.top_k != 2 {
                return bad(
                    "model.moe.top_k",
                    format!(
                        "the built-in moe cascade routes top-2 (`topk[x,2]`), got {}",
                        moe.top_k
                    ),
                );
            }
            if !moe.skew.is_finite() || moe.skew < 0.0 {
                return bad(
                    "model.moe.skew",
                    format!("must be a finite number ≥ 0, got {}", moe.skew),
                );
            }
        }
        if self.run.phases.is_empty() {
            return bad(
                "run.phases",
                "list at least one of \"prefill\", \"decode\"".into(),
            );
        }
        if self.run.seq_len.is_empty() || self.run.seq_len.contains(&0) {
            return bad(
                "run.seq_len",
                "list one or more sequence lengths ≥ 1".into(),
            );
        }
        Ok(())
    }

    /// Every (phase, seq_len) point of the run, in file order.
    pub fn points(&self) -> Vec<Point> {
        let mut v = Vec::new();
        for &phase in &self.run.phases {
            for &seq_len in &self.run.seq_len {
                v.push(Point {
                    phase,
                    batch: self.run.batch,
                    seq_len,
                });
            }
        }
        v
    }

    /// The cascade instances of one layer at a point.
    pub fn layer(&self, pt: &Point) -> Vec<Instance> {
        let m = &self.model;
        let tokens = match pt.phase {
            Phase::Prefill => pt.batch * pt.seq_len,
            Phase::Decode => pt.batch,
        };
        let ext = |pairs: &[(&str, u64)]| -> BTreeMap<String, u64> {
            pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
        };
        let norm = match m.norm {
            Norm::Layernorm => "layernorm",
            Norm::Rmsnorm => "rmsnorm",
        };
        let mut v = vec![Instance {
            role: "attn_norm".into(),
            cascade: norm.into(),
            extents: ext(&[("T", tokens), ("D", m.d_model)]),
            routing: None,
        }];
        v.push(Instance {
            role: "qkv_proj".into(),
            cascade: "gemm".into(),
            extents: ext(&[
                ("T", tokens),
                ("K", m.d_model),
                ("N", (m.heads + 2 * m.kv_heads) * m.head_dim),
            ]),
            routing: None,
        });
        let partition = |len: u64| {
            if len.is_multiple_of(self.run.partition) {
                self.run.partition
            } else {
                len
            }
        };
        match pt.phase {
            Phase::Prefill => v.push(Instance {
                role: "attention".into(),
                cascade: self.run.attention.cascade_name().into(),
                extents: ext(&[
                    ("B", pt.batch),
                    ("H", m.heads),
                    ("E", m.head_dim),
                    ("F", m.head_dim),
                    ("M", pt.seq_len),
                    ("P", pt.seq_len),
                    ("M0", partition(pt.seq_len)),
                ]),
                routing: None,
            }),
            Phase::Decode => v.push(Instance {
                role: "attention".into(),
                cascade: "gqa_decode".into(),
                extents: ext(&[
                    ("B", pt.batch),
                    ("H", m.kv_heads),
                    ("G", m.heads / m.kv_heads),
                    ("E", m.head_dim),
                    ("F", m.head_dim),
                    ("M", pt.seq_len),
                    ("M0", partition(pt.seq_len)),
                ]),
                routing: None,
            }),
        }
        v.push(Instance {
            role: "o_proj".into(),
            cascade: "gemm".into(),
            extents: ext(&[("T", tokens), ("K", m.heads * m.head_dim), ("N", m.d_model)]),
            routing: None,
        });
        v.push(Instance {
            role: "ffn_norm".into(),
            cascade: norm.into(),
            extents: ext(&[("T", tokens), ("D", m.d_model)]),
            routing: None,
        });
        match &m.moe {
            Some(moe) => v.push(Instance {
                role: "moe".into(),
                cascade: "moe".into(),
                extents: ext(&[
                    ("T", tokens),
                    ("D", m.d_model),
                    ("X", moe.experts),
                    ("F", m.ffn_dim),
                ]),
                routing: Some(Routing::zipf("X", moe.experts, tokens, moe.top_k, moe.skew)),
            }),
            None => v.push(Instance {
                role: "ffn".into(),
                cascade: match m.ffn {
                    Ffn::Gelu => "ffn_gelu",
                    Ffn::Relu => "ffn_relu",
                    Ffn::Swiglu => "ffn_swiglu",
                }
                .into(),
                extents: ext(&[("T", tokens), ("D", m.d_model), ("F", m.ffn_dim)]),
                routing: None,
            }),
        }
        v
    }
}

/// One (phase, batch, sequence length) point of a run.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
pub struct Point {
    pub phase: Phase,
    pub batch: u64,
    pub seq_len: u64,
}

/// One cascade of a layer, with its rank extents.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Instance {
    pub role: String,
    pub cascade: String,
    pub extents: BTreeMap<String, u64>,
    pub routing: Option<Routing>,
}
