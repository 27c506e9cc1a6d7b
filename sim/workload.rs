//! TOML workloads, of two kinds, expanded into cascade instances:
//! - an LLM: a model (layers, widths, heads, FFN, MoE) × a run (phases, batch, sequence
//!   lengths, precision) → the cascade instances of one transformer layer;
//! - a layer list (`[[layers]]`: role, built-in cascade, extents, count) × a run (batch
//!   sizes, precision) → every listed layer (CNNs, audio encoders).

use cascade_einsum::{bind, library, Routing, SourceFile};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;
use std::path::Path;
use toml::Spanned;

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
    #[error("{file}:{line}:{col}: {field}: {message}")]
    InvalidAt {
        file: String,
        line: usize,
        col: usize,
        field: String,
        message: String,
    },
    #[error("unknown built-in workload `{0}` (built in: {1})")]
    Unknown(String, String),
}

#[derive(Clone, Copy, Debug, Deserialize, Serialize, PartialEq, Eq, PartialOrd, Ord, Hash)]
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
    /// Measured tokens per expert (any scale: router counts from a trace, say), one per
    /// expert: the routing follows them instead of `skew`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub counts: Option<Vec<f64>>,
    /// Route each token to `top_k` experts drawn uniformly at random with this seed (one draw
    /// per token count), as Duplex's simulator does, instead of the even split of `skew = 0`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub random_seed: Option<u64>,
    /// The MoE replaces the FFN in every `every`-th layer; the layers between keep the dense
    /// FFN (`model.ffn`, `model.ffn_dim`): 1, every layer (Mixtral, Grok-1), or 2, dense and
    /// MoE layers alternating (GLaM, Du et al. 2022 §3). `model.layers` must be a multiple.
    #[serde(default = "one", skip_serializing_if = "is_one")]
    pub every: u64,
    /// Each expert's FFN width, where it differs from the dense FFN's `model.ffn_dim`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ffn_dim: Option<u64>,
}

fn one() -> u64 {
    1
}

fn is_one(v: &u64) -> bool {
    *v == 1
}

impl Moe {
    /// Each expert's FFN width: its own, or the model's.
    pub fn expert_ffn_dim(&self, model_ffn_dim: u64) -> u64 {
        self.ffn_dim.unwrap_or(model_ffn_dim)
    }

    /// The built-in cascade of an MoE whose experts are `ffn` FFNs (ReLU experts have none).
    pub fn cascade(ffn: Ffn) -> Option<&'static str> {
        match ffn {
            Ffn::Swiglu => Some("moe"),
            Ffn::Gelu => Some("moe_gelu"),
            Ffn::Relu => None,
        }
    }

    /// The routing of `tokens` tokens: proportional to `counts` when given, a random draw with
    /// `random_seed`, else Zipf.
    pub fn routing(&self, tokens: u64) -> Routing {
        match (&self.counts, self.random_seed) {
            (Some(c), _) => Routing::weighted("X", tokens, self.top_k, c),
            (None, Some(seed)) => Routing::random("X", self.experts, tokens, self.top_k, seed),
            (None, None) => Routing::zipf("X", self.experts, tokens, self.top_k, self.skew),
        }
    }
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
    /// Vocabulary size: the embedding table's and the LM head's rows (read by `cascade infer`,
    /// which runs the LM head; a model without it has no LM head there, and says so).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vocab: Option<u64>,
}

/// The run of a workload. An LLM workload gives every field; a layer-list workload
/// gives `batch` (one size or a list) and `precision`, and the LLM fields hold
/// placeholders (`phases = [prefill]`, `seq_len = []`, `attention = 1-pass`,
/// `partition = 1`) that nothing should read.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Run {
    pub phases: Vec<Phase>,
    /// The batch of an LLM workload; the first of `batches` for a layer list.
    pub batch: u64,
    /// Batch sizes of the points: `[batch]` for an LLM workload, the listed sizes for
    /// a layer list (whose points vary only the batch).
    pub batches: Vec<u64>,
    pub seq_len: Vec<u64>,
    pub precision: Precision,
    pub attention: AttentionCascade,
    pub partition: u64,
}

/// An extent in a layer list: a number, or `"batch"` (the point's batch size).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extent {
    Fixed(u64),
    Batch,
}

impl Extent {
    /// The extent at a point with this batch size.
    pub fn at(self, batch: u64) -> u64 {
        match self {
            Extent::Fixed(v) => v,
            Extent::Batch => batch,
        }
    }
}

impl Serialize for Extent {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        match self {
            Extent::Fixed(v) => s.serialize_u64(*v),
            Extent::Batch => s.serialize_str("batch"),
        }
    }
}

impl<'de> Deserialize<'de> for Extent {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl serde::de::Visitor<'_> for V {
            type Value = Extent;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("an extent (an integer) or \"batch\"")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Extent, E> {
                Ok(Extent::Fixed(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Extent, E> {
                u64::try_from(v)
                    .map(Extent::Fixed)
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<Extent, E> {
                if v == "batch" {
                    Ok(Extent::Batch)
                } else {
                    Err(E::invalid_value(serde::de::Unexpected::Str(v), &self))
                }
            }
        }
        d.deserialize_any(V)
    }
}

/// One entry of a layer list (`[[layers]]`): a built-in cascade with its rank extents,
/// occurring `count` times in the network.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Layer {
    pub role: String,
    pub cascade: String,
    pub extents: BTreeMap<String, Extent>,
    pub count: u64,
}

/// What a workload file describes.
#[derive(Clone, Copy, Debug, Serialize, PartialEq, Eq)]
#[serde(rename_all = "snake_case")]
pub enum WorkloadKind {
    /// `[model]` + `[run]`: the cascades of one transformer layer, `model.layers` times.
    Llm,
    /// `[[layers]]` + `[run]`: every layer of the network listed.
    LayerList,
}

/// A validated workload.
#[derive(Clone, Debug, Serialize, PartialEq)]
pub struct Workload {
    pub name: String,
    pub description: String,
    pub source: String,
    /// The transformer's shapes. A layer-list workload has no model: this holds
    /// [`Model::none`] and must not be read (see [`Workload::kind`]).
    pub model: Model,
    pub run: Run,
    /// The listed layers of a layer-list workload; empty for an LLM workload.
    pub layers: Vec<Layer>,
}

impl Model {
    /// The placeholder model of a layer-list workload: one pass over the list, no
    /// transformer shapes.
    pub fn none() -> Model {
        Model {
            layers: 1,
            d_model: 0,
            heads: 0,
            kv_heads: 0,
            head_dim: 0,
            ffn_dim: 0,
            ffn: Ffn::Gelu,
            norm: Norm::Layernorm,
            moe: None,
            vocab: None,
        }
    }
}

/// The file as written; [`validate`] checks it and builds the [`Workload`].
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    source: String,
    model: Option<Model>,
    run: Spanned<RunFile>,
    layers: Option<Spanned<Vec<LayerFile>>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RunFile {
    phases: Option<Spanned<Vec<Phase>>>,
    batch: Option<Spanned<Batches>>,
    seq_len: Option<Spanned<Vec<u64>>>,
    precision: Option<Precision>,
    attention: Option<Spanned<AttentionCascade>>,
    partition: Option<Spanned<u64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct LayerFile {
    role: Spanned<String>,
    cascade: Spanned<String>,
    extents: Spanned<BTreeMap<String, Spanned<Extent>>>,
    count: Option<Spanned<u64>>,
}

/// `batch = 8` or `batch = [1, 32]`.
struct Batches {
    sizes: Vec<u64>,
    list: bool,
}

impl<'de> Deserialize<'de> for Batches {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> serde::de::Visitor<'de> for V {
            type Value = Batches;
            fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
                f.write_str("a batch size (an integer) or a list of them")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<Batches, E> {
                Ok(Batches {
                    sizes: vec![v],
                    list: false,
                })
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<Batches, E> {
                u64::try_from(v)
                    .map(|v| Batches {
                        sizes: vec![v],
                        list: false,
                    })
                    .map_err(|_| E::invalid_value(serde::de::Unexpected::Signed(v), &self))
            }
            fn visit_seq<A: serde::de::SeqAccess<'de>>(
                self,
                mut seq: A,
            ) -> Result<Batches, A::Error> {
                let mut sizes = Vec::new();
                while let Some(v) = seq.next_element::<u64>()? {
                    sizes.push(v);
                }
                Ok(Batches { sizes, list: true })
            }
        }
        d.deserialize_any(V)
    }
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
    ("opt_66b", include_str!("../workloads/opt_66b.toml")),
    ("llama3_70b", include_str!("../workloads/llama3_70b.toml")),
    ("grok1", include_str!("../workloads/grok1.toml")),
    ("glam", include_str!("../workloads/glam.toml")),
    ("resnet18", include_str!("../workloads/resnet18.toml")),
    (
        "wav2vec2_encoder",
        include_str!("../workloads/wav2vec2_encoder.toml"),
    ),
];

/// The four FuseMax models, in the paper's order.
pub const FUSEMAX_MODELS: [&str; 4] = ["bert_base", "trxl_wt103", "t5_small", "xlm"];

impl Workload {
    /// Parse and validate workload TOML; `file` names it in errors.
    pub fn from_toml_str(text: &str, file: &str) -> Result<Workload, WorkloadError> {
        let w: WorkloadFile = toml::from_str(text).map_err(|e| {
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
        Checker { file, text }.workload(w)
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

    /// Whether the run's key partition (`M0`) splits a sequence of `seq_len` evenly: a
    /// sequence no longer than the partition is one partition, a longer one must be a
    /// multiple of it. Checked for the file's own lengths at load; for a length given
    /// elsewhere (`--seq`) the caller checks.
    pub fn partition_divides(&self, seq_len: u64) -> bool {
        let p = self.run.partition;
        p == 0 || seq_len <= p || seq_len.is_multiple_of(p)
    }

    pub fn kind(&self) -> WorkloadKind {
        if self.layers.is_empty() {
            WorkloadKind::Llm
        } else {
            WorkloadKind::LayerList
        }
    }

    /// How many times [`Workload::layer`]'s instances repeat in the whole model: the
    /// transformer's blocks (its layer count, or the layers over `model.moe.every` when dense
    /// and MoE layers alternate), or 1 for a layer list (which lists every layer).
    pub fn repeats(&self) -> u64 {
        match self.kind() {
            WorkloadKind::Llm => self.model.layers / self.block(),
            WorkloadKind::LayerList => 1,
        }
    }

    /// Transformer layers per repeat of [`Workload::layer`]: `model.moe.every` (1 without an
    /// MoE, or with an MoE in every layer).
    pub fn block(&self) -> u64 {
        self.model.moe.as_ref().map_or(1, |m| m.every.max(1))
    }

    /// Every point of the run, in file order: (phase, seq_len) for an LLM; one per
    /// batch size for a layer list (phase `prefill`, `seq_len` 0: not a sequence).
    pub fn points(&self) -> Vec<Point> {
        if self.kind() == WorkloadKind::LayerList {
            return self
                .run
                .batches
                .iter()
                .map(|&batch| Point {
                    phase: Phase::Prefill,
                    batch,
                    seq_len: 0,
                })
                .collect();
        }
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

    /// The cascade instances of one block of layers at a point, in the order they run (an
    /// LLM: one layer, or `model.moe.every` layers when dense and MoE layers alternate, the MoE
    /// last), or of every listed layer with the point's batch (a layer list).
    /// [`Workload::repeats`] says how often it repeats.
    pub fn layer(&self, pt: &Point) -> Vec<Instance> {
        if self.kind() == WorkloadKind::LayerList {
            return self
                .layers
                .iter()
                .map(|l| Instance {
                    role: l.role.clone(),
                    cascade: l.cascade.clone(),
                    extents: l
                        .extents
                        .iter()
                        .map(|(r, e)| (r.clone(), e.at(pt.batch)))
                        .collect(),
                    routing: None,
                    count: l.count,
                })
                .collect();
        }
        let m = &self.model;
        // Saturating: absurd sizes fail to bind (more than 2^60 elements) instead of
        // overflowing; a checked workload file never gets there.
        let tokens = match pt.phase {
            Phase::Prefill => pt.batch.saturating_mul(pt.seq_len),
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
            count: 1,
        }];
        v.push(Instance {
            role: "qkv_proj".into(),
            cascade: "gemm".into(),
            extents: ext(&[
                ("T", tokens),
                ("K", m.d_model),
                (
                    "N",
                    m.heads
                        .saturating_add(m.kv_heads.saturating_mul(2))
                        .saturating_mul(m.head_dim),
                ),
            ]),
            routing: None,
            count: 1,
        });
        // A sequence no longer than the partition is one partition; a checked workload's
        // partition divides every longer sequence length.
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
                count: 1,
            }),
            Phase::Decode => v.push(Instance {
                role: "attention".into(),
                cascade: "gqa_decode".into(),
                extents: ext(&[
                    ("B", pt.batch),
                    ("H", m.kv_heads),
                    ("G", m.heads / m.kv_heads.max(1)),
                    ("E", m.head_dim),
                    ("F", m.head_dim),
                    ("M", pt.seq_len),
                    ("M0", partition(pt.seq_len)),
                ]),
                routing: None,
                count: 1,
            }),
        }
        v.push(Instance {
            role: "o_proj".into(),
            cascade: "gemm".into(),
            extents: ext(&[
                ("T", tokens),
                ("K", m.heads.saturating_mul(m.head_dim)),
                ("N", m.d_model),
            ]),
            routing: None,
            count: 1,
        });
        v.push(Instance {
            role: "ffn_norm".into(),
            cascade: norm.into(),
            extents: ext(&[("T", tokens), ("D", m.d_model)]),
            routing: None,
            count: 1,
        });
        let dense = Instance {
            role: "ffn".into(),
            cascade: match m.ffn {
                Ffn::Gelu => "ffn_gelu",
                Ffn::Relu => "ffn_relu",
                Ffn::Swiglu => "ffn_swiglu",
            }
            .into(),
            extents: ext(&[("T", tokens), ("D", m.d_model), ("F", m.ffn_dim)]),
            routing: None,
            count: 1,
        };
        let Some(moe) = &m.moe else {
            v.push(dense);
            return v;
        };
        let head = v.clone();
        // Dense layers first, the MoE layer last (GLaM's even layers are its MoE layers).
        for _ in 1..self.block() {
            v.push(dense.clone());
            v.extend(head.iter().cloned());
        }
        v.push(Instance {
            role: "moe".into(),
            // A checked workload's experts have a cascade (ReLU experts are refused).
            cascade: Moe::cascade(m.ffn).unwrap_or("moe").into(),
            extents: ext(&[
                ("T", tokens),
                ("D", m.d_model),
                ("X", moe.experts),
                ("F", moe.expert_ffn_dim(m.ffn_dim)),
            ]),
            routing: Some(moe.routing(tokens)),
            count: 1,
        });
        v
    }
}

/// `instances` with the equal ones (role, cascade, extents and routing) merged into one
/// whose `count` is their sum, in the order each first occurs: what to map or analyse once,
/// and how often it runs, of a block of several layers ([`Workload::layer`]).
pub fn merge_equal(instances: Vec<Instance>) -> Vec<Instance> {
    let mut out: Vec<Instance> = Vec::new();
    for i in instances {
        match out.iter_mut().find(|o| {
            o.role == i.role
                && o.cascade == i.cascade
                && o.extents == i.extents
                && o.routing == i.routing
        }) {
            Some(o) => o.count = o.count.saturating_add(i.count),
            None => out.push(i),
        }
    }
    out
}

/// One (phase, batch, sequence length) point of a run (`seq_len` 0 for a layer list).
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
    /// How often the instance occurs per [`Workload::layer`]: 1 for an LLM's layer,
    /// the `count` of a listed layer (ResNet's repeated 3×3 convs).
    pub count: u64,
}

/// The most experts an MoE workload may route over (the routing table has one entry each).
const MAX_EXPERTS: u64 = 1 << 16;

/// The most tokens (batch × sequence length) of a prefill point: bind's element limit.
const MAX_TOKENS: u64 = 1 << 60;

/// The workload fields that give rank `rank` of the cascade of an LLM layer's `role`.
fn provenance(role: &str, rank: &str, phase: Phase) -> &'static [&'static str] {
    match (role, rank) {
        (_, "T") if phase == Phase::Decode => &["run.batch"],
        (_, "T") => &["run.batch", "run.seq_len"],
        ("attn_norm" | "ffn_norm" | "moe" | "ffn", "D") => &["model.d_model"],
        ("qkv_proj", "K") | ("o_proj", "N") => &["model.d_model"],
        ("qkv_proj", "N") => &["model.heads", "model.kv_heads", "model.head_dim"],
        ("o_proj", "K") => &["model.heads", "model.head_dim"],
        ("attention", "B") => &["run.batch"],
        ("attention", "H") if phase == Phase::Decode => &["model.kv_heads"],
        ("attention", "H") => &["model.heads"],
        ("attention", "G") => &["model.heads", "model.kv_heads"],
        ("attention", "E" | "F") => &["model.head_dim"],
        ("attention", "M" | "P") => &["run.seq_len"],
        ("attention", "M0") => &["run.partition"],
        ("moe", "X") => &["model.moe.experts"],
        ("moe", "F") => &["model.moe.ffn_dim", "model.ffn_dim"],
        ("ffn", "F") => &["model.ffn_dim"],
        _ => &[],
    }
}

/// The workload fields behind a bind error of cascade `c` (for `role`): those of the ranks,
/// tensors or Einsums the message names in backticks or in a `split …` clause, or, if it names
/// none, those of every rank of the cascade; and those ranks.
fn blame(
    c: &cascade_einsum::Cascade,
    role: &str,
    phase: Phase,
    message: &str,
) -> (Vec<String>, Vec<String>) {
    let mut named: Vec<&str> = message.split('`').skip(1).step_by(2).collect();
    if let Some(i) = message.find("split ") {
        let clause = message[i + 6..].split(':').next().unwrap_or("");
        named.extend(
            clause
                .split(|ch: char| !ch.is_ascii_alphanumeric() && ch != '_')
                .filter(|w| !w.is_empty()),
        );
    }
    let iteration = message.contains("iteration space");
    let mut ranks: Vec<String> = Vec::new();
    for n in &named {
        let einsum = c
            .einsums
            .iter()
            .find(|e| e.name == *n || e.output.tensor == *n);
        if c.ranks.contains_key(*n) {
            ranks.push(n.to_string());
        } else if let Some(e) = einsum.filter(|_| iteration) {
            ranks.extend(e.vars.iter().map(|v| cascade_einsum::ir::rank_of(v)));
        } else if let Some(t) = c.tensors.get(*n) {
            ranks.extend(t.dims.iter().map(|d| d.rank.clone()));
        }
    }
    if ranks.is_empty() {
        ranks = c.ranks.keys().cloned().collect();
    }
    ranks.sort();
    ranks.dedup();
    let mut fields: Vec<String> = Vec::new();
    for r in ranks.clone() {
        // A split part (`M0` of `split M = M1 * M0`) is blamed on its own field if it has
        // one, else on its root's.
        let mut rank = r;
        loop {
            let f = provenance(role, &rank, phase);
            if !f.is_empty() {
                fields.extend(f.iter().map(|s| s.to_string()));
                break;
            }
            match c.ranks.get(&rank).and_then(|i| i.parent.clone()) {
                Some(p) => rank = p,
                None => break,
            }
        }
    }
    // In the order of the workload file.
    const ORDER: [&str; 11] = [
        "model.d_model",
        "model.heads",
        "model.kv_heads",
        "model.head_dim",
        "model.ffn_dim",
        "model.moe.experts",
        "run.batch",
        "run.seq_len",
        "run.partition",
        "model.moe.top_k",
        "model",
    ];
    fields.sort_by_key(|f| ORDER.iter().position(|o| o == f));
    fields.dedup();
    if fields.is_empty() {
        fields.push("model".into());
    }
    (fields, ranks)
}

/// Validation of a parsed workload file: every error names the file and the field,
/// and the line:column where the field's position is known.
struct Checker<'a> {
    file: &'a str,
    text: &'a str,
}

impl Checker<'_> {
    fn bad<T>(&self, field: &str, message: impl Into<String>) -> Result<T, WorkloadError> {
        Err(WorkloadError::Invalid {
            file: self.file.to_string(),
            field: field.to_string(),
            message: message.into(),
        })
    }

    fn bad_at<T>(
        &self,
        span: std::ops::Range<usize>,
        field: &str,
        message: impl Into<String>,
    ) -> Result<T, WorkloadError> {
        let (line, col) = SourceFile::new(self.file, self.text).line_col(span.start);
        Err(WorkloadError::InvalidAt {
            file: self.file.to_string(),
            line,
            col,
            field: field.to_string(),
            message: message.into(),
        })
    }

    fn workload(&self, w: WorkloadFile) -> Result<Workload, WorkloadError> {
        let run_span = w.run.span();
        let run = w.run.into_inner();
        let (model, run, layers) = match (w.model, w.layers) {
            (Some(_), Some(l)) => {
                return self.bad_at(
                    l.span(),
                    "layers",
                    "a workload is an LLM ([model]) or a layer list ([[layers]]), not both",
                )
            }
            (None, None) => {
                return self.bad(
                    "model",
                    "missing: describe an LLM with [model] or list the layers with [[layers]]",
                )
            }
            (Some(m), None) => {
                let run = self.llm_run(run, run_span)?;
                self.llm(&m, &run)?;
                self.llm_binds(&m, &run)?;
                (m, run, Vec::new())
            }
            (None, Some(l)) => {
                let run = self.layer_run(run, run_span)?;
                let layers = self.layers(l, &run.batches)?;
                (Model::none(), run, layers)
            }
        };
        Ok(Workload {
            name: w.name,
            description: w.description,
            source: w.source,
            model,
            run,
            layers,
        })
    }

    /// The run of an LLM: every field, one batch size.
    fn llm_run(&self, r: RunFile, span: std::ops::Range<usize>) -> Result<Run, WorkloadError> {
        let missing = |field: &str| {
            self.bad_at::<Run>(
                span.clone(),
                field,
                "missing (an LLM workload's [run] gives phases, batch, seq_len, precision, attention and partition)",
            )
        };
        let Some(phases) = r.phases else {
            return missing("run.phases");
        };
        let Some(batch) = r.batch else {
            return missing("run.batch");
        };
        let Some(seq_len) = r.seq_len else {
            return missing("run.seq_len");
        };
        let Some(precision) = r.precision else {
            return missing("run.precision");
        };
        let Some(attention) = r.attention else {
            return missing("run.attention");
        };
        let Some(partition) = r.partition else {
            return missing("run.partition");
        };
        let b = batch.get_ref();
        if b.list {
            return self.bad_at(
                batch.span(),
                "run.batch",
                "an LLM workload takes one batch size (a list is for layer-list workloads)",
            );
        }
        let batch = b.sizes[0];
        let part = *partition.get_ref();
        if part > 0 {
            if let Some(&len) = seq_len
                .get_ref()
                .iter()
                .find(|&&len| len > part && !len.is_multiple_of(part))
            {
                let divisors: Vec<String> = [256u64, 128, 64, 32, 16, 8, 4, 2, 1]
                    .iter()
                    .filter(|&&d| seq_len.get_ref().iter().all(|l| l.is_multiple_of(d)))
                    .take(1)
                    .map(|d| format!("; e.g. {d} divides every length"))
                    .collect();
                return self.bad_at(
                    partition.span(),
                    "run.partition",
                    format!(
                        "{part} does not divide seq_len {len}: the keys are split in partitions of \
                         this size (M0), so every sequence length longer than it must be a multiple of it{}",
                        divisors.concat()
                    ),
                );
            }
        }
        Ok(Run {
            phases: phases.into_inner(),
            batch,
            batches: vec![batch],
            seq_len: seq_len.into_inner(),
            precision,
            attention: attention.into_inner(),
            partition: partition.into_inner(),
        })
    }

    fn llm(&self, m: &Model, run: &Run) -> Result<(), WorkloadError> {
        for (f, v) in [
            ("model.layers", m.layers),
            ("model.d_model", m.d_model),
            ("model.heads", m.heads),
            ("model.kv_heads", m.kv_heads),
            ("model.head_dim", m.head_dim),
            ("model.ffn_dim", m.ffn_dim),
            ("run.batch", run.batch),
            ("run.partition", run.partition),
        ] {
            if v == 0 {
                return self.bad(f, "must be ≥ 1");
            }
        }
        if m.vocab == Some(0) {
            return self.bad("model.vocab", "must be ≥ 1 (or left out: no LM head)");
        }
        if !m.heads.is_multiple_of(m.kv_heads) {
            return self.bad(
                "model.kv_heads",
                format!(
                    "{} query heads cannot be shared evenly by {} KV heads",
                    m.heads, m.kv_heads
                ),
            );
        }
        if let Some(moe) = &m.moe {
            if moe.experts == 0 || moe.top_k == 0 || moe.top_k > moe.experts {
                return self.bad(
                    "model.moe.top_k",
                    format!(
                        "need 1 ≤ top_k ≤ experts, got top_k = {} of {}",
                        moe.top_k, moe.experts
                    ),
                );
            }
            if moe.top_k != 2 {
                return self.bad(
                    "model.moe.top_k",
                    format!(
                        "the built-in moe cascade routes top-2 (`topk[x,2]`), got {}",
                        moe.top_k
                    ),
                );
            }
            if Moe::cascade(m.ffn).is_none() {
                return self.bad(
                    "model.ffn",
                    "MoE experts are SwiGLU (cascade `moe`) or GELU (`moe_gelu`) FFNs, not ReLU",
                );
            }
            if moe.every == 0 || !m.layers.is_multiple_of(moe.every) {
                return self.bad(
                    "model.moe.every",
                    format!(
                        "an MoE every {} layers: must be ≥ 1 and divide model.layers = {}",
                        moe.every, m.layers
                    ),
                );
            }
            if moe.ffn_dim == Some(0) {
                return self.bad("model.moe.ffn_dim", "must be ≥ 1");
            }
            if !moe.skew.is_finite() || moe.skew < 0.0 {
                return self.bad(
                    "model.moe.skew",
                    format!("must be a finite number ≥ 0, got {}", moe.skew),
                );
            }
            if moe.random_seed.is_some() && (moe.skew != 0.0 || moe.counts.is_some()) {
                return self.bad(
                    "model.moe.random_seed",
                    "a random routing, a skew or measured counts: give one",
                );
            }
            if let Some(c) = &moe.counts {
                if c.len() as u64 != moe.experts {
                    return self.bad(
                        "model.moe.counts",
                        format!(
                            "{} counts for {} experts: give one per expert",
                            c.len(),
                            moe.experts
                        ),
                    );
                }
                if c.iter().any(|x| !x.is_finite() || *x < 0.0) {
                    return self.bad("model.moe.counts", "counts must be finite numbers ≥ 0");
                }
                if (c.iter().filter(|x| **x > 0.0).count() as u64) < moe.top_k {
                    return self.bad(
                        "model.moe.counts",
                        format!(
                            "fewer than top_k = {} experts have a count above 0",
                            moe.top_k
                        ),
                    );
                }
                if moe.skew != 0.0 {
                    return self.bad("model.moe.counts", "give counts or skew, not both");
                }
            }
        }
        if run.phases.is_empty() {
            return self.bad("run.phases", "list at least one of \"prefill\", \"decode\"");
        }
        if run.seq_len.is_empty() || run.seq_len.contains(&0) {
            return self.bad("run.seq_len", "list one or more sequence lengths ≥ 1");
        }
        Ok(())
    }

    /// Every cascade of the layer binds at every point of the run; where one does not, the
    /// error names the workload fields that gave the offending extents (not only the cascade).
    fn llm_binds(&self, m: &Model, run: &Run) -> Result<(), WorkloadError> {
        if let Some(moe) = &m.moe {
            if moe.experts > MAX_EXPERTS {
                return self.bad(
                    "model.moe.experts",
                    format!("{} experts: at most {MAX_EXPERTS}", moe.experts),
                );
            }
        }
        let w = Workload {
            name: String::new(),
            description: String::new(),
            source: String::new(),
            model: m.clone(),
            run: run.clone(),
            layers: Vec::new(),
        };
        for pt in w.points() {
            if pt.phase == Phase::Prefill && pt.batch.saturating_mul(pt.seq_len) > MAX_TOKENS {
                return self.bad(
                    "run.batch, run.seq_len",
                    format!("{} × {} tokens: more than 2^60", pt.batch, pt.seq_len),
                );
            }
            for inst in w.layer(&pt) {
                let checked = library::load(&inst.cascade).map_err(|e| WorkloadError::Invalid {
                    file: self.file.to_string(),
                    field: "model".into(),
                    message: e.to_string(),
                })?;
                let c = &checked.cascade;
                if let Err(e) = bind(c, &inst.extents) {
                    let message = e.diagnostics.first().map_or_else(
                        || e.to_string(),
                        |d| {
                            d.message
                                .trim_start_matches("shape mismatch after binding: ")
                                .to_string()
                        },
                    );
                    let (mut fields, ranks) = blame(c, &inst.role, pt.phase, &message);
                    // The experts' width is theirs when given, the model's otherwise.
                    let own = m.moe.as_ref().is_some_and(|x| x.ffn_dim.is_some());
                    fields.retain(|f| {
                        inst.role != "moe"
                            || *f
                                != if own {
                                    "model.ffn_dim"
                                } else {
                                    "model.moe.ffn_dim"
                                }
                    });
                    let given: Vec<String> = ranks
                        .iter()
                        .filter_map(|r| Some(format!("{r} = {}", inst.extents.get(r)?)))
                        .collect();
                    let given = if given.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", given.join(", "))
                    };
                    return self.bad(
                        &fields.join(", "),
                        format!(
                            "{message}{given} (cascade `{}` of the layer's {}, {:?} at batch {}, seq_len {})",
                            inst.cascade,
                            inst.role,
                            pt.phase,
                            pt.batch,
                            pt.seq_len
                        )
                        .replace("Prefill", "prefill")
                        .replace("Decode", "decode"),
                    );
                }
            }
        }
        Ok(())
    }

    /// The run of a layer list: batch sizes and precision only.
    fn layer_run(&self, r: RunFile, span: std::ops::Range<usize>) -> Result<Run, WorkloadError> {
        let llm_only =
            "applies to LLM workloads ([model]); a layer list's [run] gives batch and precision";
        if let Some(x) = &r.phases {
            return self.bad_at(x.span(), "run.phases", llm_only);
        }
        if let Some(x) = &r.seq_len {
            return self.bad_at(x.span(), "run.seq_len", llm_only);
        }
        if let Some(x) = &r.attention {
            return self.bad_at(x.span(), "run.attention", llm_only);
        }
        if let Some(x) = &r.partition {
            return self.bad_at(x.span(), "run.partition", llm_only);
        }
        let Some(batch) = r.batch else {
            return self.bad_at(
                span,
                "run.batch",
                "missing: the batch sizes, e.g. `batch = [1, 32]`",
            );
        };
        let Some(precision) = r.precision else {
            return self.bad_at(
                span,
                "run.precision",
                "missing: e.g. `precision = \"bf16\"`",
            );
        };
        let bspan = batch.span();
        let sizes = batch.into_inner().sizes;
        if sizes.is_empty() {
            return self.bad_at(bspan, "run.batch", "list one or more batch sizes ≥ 1");
        }
        for (k, &b) in sizes.iter().enumerate() {
            if b == 0 {
                return self.bad_at(bspan, "run.batch", "must be ≥ 1");
            }
            if sizes[..k].contains(&b) {
                return self.bad_at(bspan, "run.batch", format!("batch {b} is listed twice"));
            }
        }
        Ok(Run {
            phases: vec![Phase::Prefill],
            batch: sizes[0],
            batches: sizes,
            seq_len: Vec::new(),
            precision,
            attention: AttentionCascade::OnePass,
            partition: 1,
        })
    }

    fn layers(
        &self,
        layers: Spanned<Vec<LayerFile>>,
        batches: &[u64],
    ) -> Result<Vec<Layer>, WorkloadError> {
        if layers.get_ref().is_empty() {
            return self.bad_at(layers.span(), "layers", "list at least one layer");
        }
        let mut out: Vec<Layer> = Vec::new();
        for (i, l) in layers.into_inner().into_iter().enumerate() {
            let f = |field: &str| format!("layers[{i}].{field}");
            let role = l.role.get_ref().trim();
            if role.is_empty() {
                return self.bad_at(l.role.span(), &f("role"), "must not be empty");
            }
            if let Some(j) = out.iter().position(|o| o.role == role) {
                return self.bad_at(
                    l.role.span(),
                    &f("role"),
                    format!("`{role}` is also the role of layers[{j}]; roles name layers uniquely"),
                );
            }
            let name = l.cascade.get_ref();
            let checked = match library::source(name) {
                Some(_) => library::load(name).map_err(|e| WorkloadError::Invalid {
                    file: self.file.to_string(),
                    field: f("cascade"),
                    message: e.to_string(),
                })?,
                None => {
                    return self.bad_at(
                        l.cascade.span(),
                        &f("cascade"),
                        format!(
                            "unknown cascade `{name}` (built in: {})",
                            library::names().join(", ")
                        ),
                    )
                }
            };
            let c = &checked.cascade;
            let count = match &l.count {
                Some(n) if *n.get_ref() == 0 => {
                    return self.bad_at(n.span(), &f("count"), "must be ≥ 1")
                }
                Some(n) => *n.get_ref(),
                None => 1,
            };
            let mut extents = BTreeMap::new();
            for (rank, v) in l.extents.get_ref() {
                if !c.ranks.contains_key(rank) {
                    return self.bad_at(
                        v.span(),
                        &f(&format!("extents.{rank}")),
                        format!(
                            "cascade `{name}` has no rank `{rank}` (its ranks: {})",
                            c.ranks.keys().cloned().collect::<Vec<_>>().join(", ")
                        ),
                    );
                }
                if *v.get_ref() == Extent::Fixed(0) {
                    return self.bad_at(v.span(), &f(&format!("extents.{rank}")), "must be ≥ 1");
                }
                extents.insert(rank.clone(), *v.get_ref());
            }
            // The extents must bind (every rank given or derived, splits dividing,
            // windows large enough) at every batch size of the run.
            for &b in batches {
                let given = extents.iter().map(|(r, e)| (r.clone(), e.at(b))).collect();
                if let Err(e) = bind(c, &given) {
                    let message = e
                        .diagnostics
                        .first()
                        .map_or_else(|| e.to_string(), |d| d.message.clone());
                    return self.bad_at(
                        l.extents.span(),
                        &f("extents"),
                        format!("{message} (cascade `{name}`, batch {b})"),
                    );
                }
            }
            out.push(Layer {
                role: role.to_string(),
                cascade: name.clone(),
                extents,
                count,
            });
        }
        Ok(out)
    }
}
