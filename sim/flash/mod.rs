//! A NAND-flash SSD model, event by event on [`crate::engine`]: the host link, the
//! controller's firmware and mapping table, channels, dies and planes.
//!
//! **What a request does.** The 64-byte NVMe submission entry crosses the host link
//! (PCIe, one server each way), the firmware takes `host.command_us`, the FTL translates:
//! with a cached mapping table (`controller.cmt_entries` > 0) a miss reads the translation
//! page from flash first (DFTL). A read becomes one page operation per logical page it
//! touches; each queues at its scheduling unit: its die, or, without die interleaving
//! (`controller.die_interleaving = false`, MQSim's scheduler), its chip, whose dies then run
//! one batch at a time. A unit takes its oldest operation and, with multi-plane operations,
//! the oldest queued ones of the same kind on the other planes of that operation's die: one
//! command on the channel, one array read (the slowest page type of the batch), then each
//! page's bytes leave over the channel (only the bytes the request asked for). Without cache
//! read the die (and its chip, when that is the unit) stays busy until the data has left;
//! with it, the unit starts its next batch at once. When all pages of a read are at the controller, its data crosses the link and
//! the request completes. A write's data crosses the link first, then (without a write
//! cache) each page's bytes go over the channel to its die and one program covers the
//! batch; the write completes when its pages are programmed. With a write cache the write
//! completes once its data is in DRAM and space is free; programs drain it. With a
//! write-back limit (`controller.write_back_limit_bytes`, MQSim's back-pressure buffer) a
//! write is admitted only while less than the limit is on its way to flash, so sustained
//! writes go at the program rate.
//!
//! **Mapping and garbage collection** (`ftl.rs`). Page-level: logical page `lpn` lives on
//! channel `lpn % C`, way `(lpn / C) % W`, die, then plane (MQSim's CWDP order), so
//! consecutive pages fall on different channels, and it moves only within that plane. The
//! logical space is each plane's first `floor(blocks × (1 − controller.overprovisioning))`
//! blocks, written once in order before the run (optionally then randomly overwritten,
//! `[precondition]`, seeded). A write programs the next page of its plane's active block and
//! invalidates the old copy; a full active block is replaced by the oldest free block. When a
//! plane's free blocks fall below `max(2, floor(controller.gc_threshold × blocks))`, each page
//! written starts one greedy collection: the full block with the fewest valid pages has them
//! moved (read out over the channel and programmed back in, or with `controller.gc_copyback`
//! a copyback inside the die), then is erased (`timing.erase_us`, tBERS). The bookkeeping is
//! immediate; the moves and the erase queue on the die behind the write that started them, so
//! they hold the die (and the channel) and host operations wait for them. Not modelled:
//! preemptible or suspended collection, wear levelling, multi-plane erase, read-modify-write
//! of partial pages.
//!
//! **Workloads** are closed loop ([`Workload`]): `queue_depth` requests outstanding,
//! sequential or uniformly random, a read fraction, seeded.
//!
//! **Invariants.** Determinism (the engine's event order, a seeded `ChaCha8Rng`, no hash
//! iteration); a die runs one batch at a time (a chip, without die interleaving), a batch holds at most one operation per plane,
//! and a channel carries one transfer at a time (tested); every spec field is read here or
//! refused at parse (`deny_unknown_fields`).

mod ftl;
mod spec;
mod ssd;

pub use spec::{preset, FlashSpec, FlashSpecError, Precondition, PRESETS};
pub use ssd::{run, FlashError, FlashReport, Pattern, Workload};

#[cfg(test)]
mod tests;
