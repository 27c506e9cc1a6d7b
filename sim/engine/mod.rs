//! A deterministic discrete-event core for the cycle-level models: an event queue, servers
//! (bandwidth and occupancy resources) and streaming statistics.
//!
//! - [`EventQueue`]: pending events by time; the earliest pops first, and events at the same
//!   time pop in the order they were pushed.
//! - [`Server`]: a first-come first-served resource that serves one request at a time (a port,
//!   a bus, a channel): `reserve(now, service)` returns when the request is done, and the
//!   server keeps its busy time for utilisation.
//! - [`Stats`]: count, sum, min, max and mean of a stream of values, and a histogram with
//!   percentiles (p50, p99) for latency distributions.
//!
//! **Time** is an `f64` count of cycles of the clock the model names (the GPU simulation uses
//! its core clock); a model with several clocks converts to one. Seconds work the same way:
//! nothing here knows the unit, but one model uses one.
//!
//! **Invariants.**
//! - *Determinism*: the same pushes and reservations give the same pops, times and
//!   statistics, bit for bit, on every run and machine. Events are ordered by time
//!   (`f64::total_cmp`) and then by a sequence number given at push, never by address or hash
//!   order; the histogram is a `BTreeMap`; sums are taken in arrival order.
//! - *No wall clock*: simulated time advances only by popping events; nothing reads
//!   `Instant` or `SystemTime`.
//! - *No randomness* unless the model passes in a seeded RNG of its own; the engine draws none.
//! - *Causality*: an event is never scheduled before the last one popped (checked in debug
//!   builds), so time never runs backwards.

mod queue;
mod server;
mod stats;

pub use queue::EventQueue;
pub use server::Server;
pub use stats::Stats;
