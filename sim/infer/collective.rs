//! Collectives over a link (`cascade_arch::Link`): the α–β cost of the communication tensor,
//! expert and pipeline parallelism need, by the algorithms NCCL uses.
//!
//! `p` devices, each sending and receiving at the link's `bandwidth` B at the same time (a
//! switched fabric), every transfer paying the link's `latency` α. `bytes` (n) is the size of
//! the whole buffer as the collective's user sees it:
//!
//! | collective | n is | ring | tree |
//! |---|---|---|---|
//! | all-reduce | the buffer every device holds and gets back reduced | 2(p−1)·α + 2(p−1)/p · n/B | 2⌈log₂p⌉·α + 2·n/B |
//! | all-gather | the gathered buffer (each device gives n/p) | (p−1)·α + (p−1)/p · n/B | — |
//! | reduce-scatter | each device's input (each gets n/p back) | (p−1)·α + (p−1)/p · n/B | — |
//! | all-to-all | each device's send buffer (n/p to every device) | (p−1)·α + (p−1)/p · n/B (pairwise exchange) | — |
//! | send/recv | the message | α + n/B | — |
//!
//! Ring all-reduce is a reduce-scatter then an all-gather, each of `p − 1` steps moving `n/p`;
//! the tree is a reduce up a binary tree and a broadcast down it, pipelined in chunks so that
//! each device sends and receives the buffer once each way. `Algorithm::Auto` takes the faster,
//! as NCCL's tuner does by size. On one device every collective is free.

use cascade_arch::Link;
use serde::Serialize;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Collective {
    AllReduce,
    AllGather,
    ReduceScatter,
    AllToAll,
    SendRecv,
}

impl Collective {
    pub fn name(self) -> &'static str {
        match self {
            Collective::AllReduce => "all_reduce",
            Collective::AllGather => "all_gather",
            Collective::ReduceScatter => "reduce_scatter",
            Collective::AllToAll => "all_to_all",
            Collective::SendRecv => "send_recv",
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Algorithm {
    Ring,
    Tree,
    /// The faster of the two for all-reduce; the ring (or pairwise exchange) otherwise.
    Auto,
}

/// The cost of one collective.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct CommCost {
    pub collective: Collective,
    /// The algorithm that ran (never `Auto`).
    pub algorithm: Algorithm,
    pub devices: u64,
    /// The buffer size the collective was asked for (see the module table).
    pub bytes: f64,
    pub seconds: f64,
    /// The latency part (α terms) of `seconds`.
    pub latency_s: f64,
    /// Bytes each device sends over the link.
    pub sent_bytes: f64,
}

/// The cost of `c` over `devices` devices joined by `link` (see the module documentation).
pub fn cost(c: Collective, bytes: f64, devices: u64, link: &Link, alg: Algorithm) -> CommCost {
    let p = devices.max(1) as f64;
    let (alpha, bw) = (link.latency.seconds(), link.bandwidth.bytes_per_s());
    let ring = |steps: f64, sent: f64| (steps * alpha, sent);
    let (alg, (lat, sent)) = if devices <= 1 {
        (Algorithm::Ring, (0.0, 0.0))
    } else {
        match c {
            Collective::AllReduce => {
                let r = ring(2.0 * (p - 1.0), 2.0 * (p - 1.0) / p * bytes);
                let depth = (p.log2()).ceil();
                let t = (2.0 * depth * alpha, 2.0 * bytes);
                let time = |x: (f64, f64)| x.0 + x.1 / bw;
                match alg {
                    Algorithm::Ring => (Algorithm::Ring, r),
                    Algorithm::Tree => (Algorithm::Tree, t),
                    Algorithm::Auto if time(t) < time(r) => (Algorithm::Tree, t),
                    Algorithm::Auto => (Algorithm::Ring, r),
                }
            }
            Collective::AllGather | Collective::ReduceScatter | Collective::AllToAll => {
                (Algorithm::Ring, ring(p - 1.0, (p - 1.0) / p * bytes))
            }
            Collective::SendRecv => (Algorithm::Ring, (alpha, bytes)),
        }
    };
    CommCost {
        collective: c,
        algorithm: alg,
        devices,
        bytes,
        seconds: lat + sent / bw,
        latency_s: lat,
        sent_bytes: sent,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(gbps: f64, us: f64) -> Link {
        Link::from_toml_str(
            &format!(
                "name = \"t\"\ndescription = \"\"\nsource = \"\"\nbandwidth = \"{gbps} GB/s\"\nlatency = \"{us} us\""
            ),
            "t.toml",
        )
        .unwrap()
    }

    /// Hand-computed: 4 devices, 100 GB/s, 1 µs, 1 MB.
    #[test]
    fn hand_computed_costs() {
        let l = link(100.0, 1.0);
        let n = 1e6;
        let at = |c, a| cost(c, n, 4, &l, a).seconds;
        // Ring all-reduce: 6 steps of 250 kB: 6 µs + 1.5 MB / 100 GB/s = 6 + 15 = 21 µs.
        assert!((at(Collective::AllReduce, Algorithm::Ring) - 21e-6).abs() < 1e-12);
        // Tree: 2·2 = 4 µs + 2 MB / 100 GB/s = 4 + 20 = 24 µs; auto takes the ring.
        assert!((at(Collective::AllReduce, Algorithm::Tree) - 24e-6).abs() < 1e-12);
        let auto = cost(Collective::AllReduce, n, 4, &l, Algorithm::Auto);
        assert_eq!(auto.algorithm, Algorithm::Ring);
        // All-gather, reduce-scatter, all-to-all: 3 µs + 750 kB / 100 GB/s = 3 + 7.5 µs.
        for c in [
            Collective::AllGather,
            Collective::ReduceScatter,
            Collective::AllToAll,
        ] {
            assert!((at(c, Algorithm::Auto) - 10.5e-6).abs() < 1e-12, "{c:?}");
        }
        // Send/recv: 1 µs + 10 µs.
        assert!((at(Collective::SendRecv, Algorithm::Auto) - 11e-6).abs() < 1e-12);
    }

    #[test]
    fn small_messages_take_the_tree_at_scale_and_one_device_is_free() {
        let l = link(450.0, 0.8);
        // 64 devices, 4 kB: ring 126 × 0.8 µs ≈ 101 µs; tree 12 × 0.8 µs + 8 kB / 450 GB/s.
        let c = cost(Collective::AllReduce, 4096.0, 64, &l, Algorithm::Auto);
        assert_eq!(c.algorithm, Algorithm::Tree);
        assert!((c.latency_s - 12.0 * 0.8e-6).abs() < 1e-12);
        let one = cost(Collective::AllReduce, 1e9, 1, &l, Algorithm::Auto);
        assert_eq!((one.seconds, one.sent_bytes), (0.0, 0.0));
        // Large buffers: the ring's bandwidth term 2(p−1)/p · n/B beats the tree's 2n/B.
        let big = cost(Collective::AllReduce, 1e9, 8, &l, Algorithm::Auto);
        assert_eq!(big.algorithm, Algorithm::Ring);
        assert!((big.sent_bytes - 1.75e9).abs() < 1.0);
    }
}
