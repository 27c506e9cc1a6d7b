//! How a model is spread over devices, Megatron-LM and vLLM style:
//!
//! - **tensor parallelism** (`tp`): each layer's attention heads (query and KV heads alike), the
//!   FFN's columns (every expert's, for MoE without expert parallelism) and the LM head's
//!   vocabulary rows split over `tp` devices; an all-reduce of the layer's activations after
//!   the output projection and after the FFN, an all-reduce after the vocabulary-parallel
//!   embedding and an all-gather of the logits;
//! - **pipeline parallelism** (`pp`): the layers split into `pp` stages of ⌈layers / pp⌉, a
//!   batch into micro-batches that flow through them (GPipe's schedule: the step takes the
//!   stages' times for the first micro-batch plus the slowest stage for each further one), the
//!   activations sent from stage to stage;
//! - **data parallelism** (`dp = devices / (tp · pp)`): replicas of the whole pipeline, each with
//!   its share of the sequences;
//! - **expert parallelism** (`ep`, MoE only): the experts split over every device of a stage
//!   (`ep = tp · dp`), each holding `experts / ep` whole experts. With one replica the tokens are
//!   already on every device and the experts' partial outputs are all-reduced; with several, the
//!   tokens go to their experts and back by two all-to-alls (dispatch and combine), and a
//!   tensor-parallel group all-gathers its tokens again.

use crate::workload::Workload;
use serde::Serialize;

/// The degrees of parallelism of a run (see the module documentation).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
pub struct Parallel {
    pub devices: u64,
    pub tp: u64,
    pub pp: u64,
    pub ep: u64,
}

impl Parallel {
    /// One device.
    pub const ONE: Parallel = Parallel {
        devices: 1,
        tp: 1,
        pp: 1,
        ep: 1,
    };

    /// Data-parallel replicas.
    pub fn dp(&self) -> u64 {
        self.devices / (self.tp * self.pp).max(1)
    }

    /// Devices that hold one stage's layers (a stage's tensor-parallel groups of every replica).
    pub fn stage_devices(&self) -> u64 {
        self.tp * self.dp()
    }

    /// `Err` naming the flag and the model field that do not agree.
    pub fn check(&self, w: &Workload) -> Result<(), String> {
        for (flag, v) in [
            ("--devices", self.devices),
            ("--tp", self.tp),
            ("--pp", self.pp),
            ("--ep", self.ep),
        ] {
            if v == 0 {
                return Err(format!("{flag} 0: must be ≥ 1"));
            }
        }
        if !self.devices.is_multiple_of(self.tp * self.pp) {
            return Err(format!(
                "--devices {} is not a multiple of --tp {} × --pp {}",
                self.devices, self.tp, self.pp
            ));
        }
        let m = &w.model;
        for (field, v) in [("model.heads", m.heads), ("model.kv_heads", m.kv_heads)] {
            if !v.is_multiple_of(self.tp) {
                return Err(format!(
                    "--tp {}: {field} = {v} is not a multiple of it (each rank holds whole heads)",
                    self.tp
                ));
            }
        }
        let expert_parallel = self.ep > 1;
        let block = w.block();
        // The dense FFN (every layer without an MoE, or the layers between MoE layers) is split
        // over `tp`; the experts are too unless spread whole over `ep`.
        let dense_layers = m.moe.is_none() || block > 1;
        if dense_layers && !m.ffn_dim.is_multiple_of(self.tp) {
            return Err(format!(
                "--tp {}: model.ffn_dim = {} is not a multiple of it",
                self.tp, m.ffn_dim
            ));
        }
        if let Some(moe) = &m.moe {
            let f = moe.expert_ffn_dim(m.ffn_dim);
            if !expert_parallel && !f.is_multiple_of(self.tp) {
                let field = if moe.ffn_dim.is_some() {
                    "model.moe.ffn_dim"
                } else {
                    "model.ffn_dim"
                };
                return Err(format!(
                    "--tp {}: {field} = {f} (the experts' FFN width) is not a multiple of it",
                    self.tp
                ));
            }
        }
        if self.pp > w.repeats() {
            return Err(if block > 1 {
                format!(
                    "--pp {}: more stages than the model's {} blocks of {block} layers (a dense and an MoE layer stay on one stage)",
                    self.pp,
                    w.repeats()
                )
            } else {
                format!(
                    "--pp {}: more stages than the model's {} layers",
                    self.pp, m.layers
                )
            });
        }
        if expert_parallel {
            let Some(moe) = &m.moe else {
                return Err(format!(
                    "--ep {}: workload `{}` has no MoE layer to spread",
                    self.ep, w.name
                ));
            };
            if self.ep != self.stage_devices() {
                return Err(format!(
                    "--ep {}: experts are spread over every device of a stage, --tp × data-parallel replicas = {} × {} = {}",
                    self.ep,
                    self.tp,
                    self.dp(),
                    self.stage_devices()
                ));
            }
            if !moe.experts.is_multiple_of(self.ep) {
                return Err(format!(
                    "--ep {}: model.moe.experts = {} is not a multiple of it",
                    self.ep, moe.experts
                ));
            }
        }
        Ok(())
    }

    /// What one device of the slowest stage runs: heads, KV heads, FFN columns (unless the
    /// experts are spread whole) and vocabulary rows divided by `tp`; ⌈layers / pp⌉ layers.
    /// (Expert parallelism changes the MoE instance of each step, not the model.)
    pub fn shard(&self, w: &Workload) -> Workload {
        let mut s = w.clone();
        let (block, blocks) = (w.block(), w.repeats());
        let m = &mut s.model;
        m.heads /= self.tp;
        m.kv_heads /= self.tp;
        let ffn_dim = m.ffn_dim;
        if let Some(moe) = &mut m.moe {
            let f = moe.expert_ffn_dim(ffn_dim);
            moe.ffn_dim = Some(if self.ep == 1 { f / self.tp } else { f });
        }
        if m.moe.is_none() || block > 1 {
            m.ffn_dim /= self.tp;
        }
        // Whole blocks per stage (a dense and an MoE layer stay together).
        m.layers = blocks.div_ceil(self.pp) * block;
        m.vocab = m.vocab.map(|v| v.div_ceil(self.tp));
        s
    }
}
