//! The page-level flash translation layer: where each logical page lives, which physical
//! pages are valid, each plane's free blocks, and greedy garbage collection.
//!
//! A logical page stays in the plane its number stripes to (channel, way, die, plane: MQSim's
//! CWDP order) and moves within it. Each plane writes into one active block, page after page;
//! when it is full the next free block (oldest erased first) becomes active. An overwrite
//! invalidates the old physical page. When a plane's free blocks fall below the threshold
//! (`FlashSpec::gc_threshold_blocks`), one collection runs per page written: the full block
//! with the fewest valid pages (lowest number on a tie) has its valid pages programmed into the
//! active block, then is erased and joins the free blocks. The bookkeeping is done at once;
//! the caller times the moves and the erase on the die ([`GcJob`]).
//!
//! Both maps hold `u32`s (the spec refuses drives of 2^32 pages or more), zero meaning "where
//! the in-order fill put it", so that an untouched drive costs no memory.

use std::collections::VecDeque;

use super::spec::FlashSpec;

/// `rev` of an erased page.
const ERASED: u32 = u32::MAX;

/// One collection: the victim's plane and block, and each valid page moved (old physical
/// page, new physical page), in page order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct GcJob {
    pub plane: usize,
    pub block: u32,
    pub moves: Vec<(u64, u64)>,
}

pub(crate) struct Ftl {
    /// The striping factors: channels, ways, dies per chip, planes per die.
    stripe: [u64; 4],
    blocks: u32,
    ppb: u32,
    per_plane: u64,
    logical_blocks: u32,
    threshold: usize,
    pub logical_pages: u64,
    /// Logical page → 1 + physical page (0: its in-order place).
    fwd: Vec<u32>,
    /// Physical page → 1 + the logical page it was programmed with (0: in-order data inside
    /// the logical blocks, never written outside them; [`ERASED`]).
    rev: Vec<u32>,
    /// Per block (plane × blocks + block): valid pages, and pages programmed.
    valid: Vec<u32>,
    written: Vec<u32>,
    free: Vec<VecDeque<u32>>,
    active: Vec<u32>,
    /// Counters: host pages written, pages moved by collections, blocks erased.
    pub host_pages: u64,
    pub copies: u64,
    pub erases: u64,
}

impl Ftl {
    /// The drive with its logical space written once in order: the logical blocks of every
    /// plane full and valid, the next block active, the rest free.
    pub fn new(spec: &FlashSpec) -> Ftl {
        let g = &spec.geometry;
        let stripe = [
            u64::from(g.channels),
            u64::from(g.ways),
            u64::from(g.dies_per_chip),
            u64::from(g.planes_per_die),
        ];
        let planes = stripe.iter().product::<u64>() as usize;
        let (blocks, ppb) = (g.blocks_per_plane, g.pages_per_block);
        let per_plane = u64::from(blocks) * u64::from(ppb);
        let lb = spec.logical_blocks_per_plane();
        let mut valid = vec![0; planes * blocks as usize];
        let mut written = vec![0; planes * blocks as usize];
        for p in 0..planes {
            for b in 0..lb as usize {
                valid[p * blocks as usize + b] = ppb;
                written[p * blocks as usize + b] = ppb;
            }
        }
        Ftl {
            stripe,
            blocks,
            ppb,
            per_plane,
            logical_blocks: lb,
            threshold: spec.gc_threshold_blocks() as usize,
            logical_pages: planes as u64 * u64::from(lb) * u64::from(ppb),
            fwd: vec![0; (planes as u64 * u64::from(lb) * u64::from(ppb)) as usize],
            rev: vec![0; planes * per_plane as usize],
            valid,
            written,
            free: vec![(lb + 1..blocks).collect(); planes],
            active: vec![lb; planes],
            host_pages: 0,
            copies: 0,
            erases: 0,
        }
    }

    /// The plane (die × planes per die + plane, dies numbered channel-major) logical page
    /// `lpn` stripes to, and its index within the plane when written in order.
    pub fn home(&self, lpn: u64) -> (usize, u64) {
        let [c, w, d, p] = self.stripe;
        let (ch, way, die, plane) = (
            lpn % c,
            (lpn / c) % w,
            (lpn / (c * w)) % d,
            (lpn / (c * w * d)) % p,
        );
        let die_no = (die * w + way) * c + ch;
        ((die_no * p + plane) as usize, lpn / (c * w * d * p))
    }

    /// The logical page the in-order fill put at (`plane`, `idx`).
    pub fn home_lpn(&self, plane: usize, idx: u64) -> u64 {
        let [c, w, d, p] = self.stripe;
        let (die_no, pl) = (plane as u64 / p, plane as u64 % p);
        let (ch, way, die) = (die_no % c, (die_no / c) % w, die_no / (c * w));
        idx * (c * w * d * p) + pl * (c * w * d) + die * (c * w) + way * c + ch
    }

    /// Where logical page `lpn` is now: its physical page (plane × pages per plane + index).
    pub fn resolve(&self, lpn: u64) -> u64 {
        match self.fwd[lpn as usize] {
            0 => {
                let (plane, idx) = self.home(lpn);
                plane as u64 * self.per_plane + idx
            }
            f => u64::from(f - 1),
        }
    }

    /// The logical page whose data physical page `ppn` holds, valid or not.
    fn owner(&self, ppn: u64) -> Option<u64> {
        match self.rev[ppn as usize] {
            ERASED => None,
            0 => {
                let (plane, idx) = (ppn / self.per_plane, ppn % self.per_plane);
                (idx < u64::from(self.logical_blocks) * u64::from(self.ppb))
                    .then(|| self.home_lpn(plane as usize, idx))
            }
            r => Some(u64::from(r - 1)),
        }
    }

    /// Whether physical page `ppn` holds its logical page's current data.
    pub fn is_valid(&self, ppn: u64) -> bool {
        self.owner(ppn).is_some_and(|l| self.resolve(l) == ppn)
    }

    #[cfg(test)]
    /// Valid pages of block `block` of plane `plane`.
    pub fn valid_pages(&self, plane: usize, block: u32) -> u32 {
        self.valid[plane * self.blocks as usize + block as usize]
    }

    #[cfg(test)]
    /// Free blocks of plane `plane` (the active block not counted).
    pub fn free_blocks(&self, plane: usize) -> usize {
        self.free[plane].len()
    }

    /// Programs `lpn` at the next page of its plane's active block and invalidates its old
    /// page; returns the new physical page.
    fn program(&mut self, plane: usize, lpn: u64) -> u64 {
        let b = plane * self.blocks as usize;
        if self.written[b + self.active[plane] as usize] == self.ppb {
            self.active[plane] = self.free[plane]
                .pop_front()
                .expect("a collection leaves a free block");
        }
        let blk = b + self.active[plane] as usize;
        let ppn = plane as u64 * self.per_plane
            + u64::from(self.active[plane]) * u64::from(self.ppb)
            + u64::from(self.written[blk]);
        self.written[blk] += 1;
        self.valid[blk] += 1;
        let old = self.resolve(lpn);
        self.valid[(old / u64::from(self.ppb)) as usize] -= 1;
        self.rev[ppn as usize] = (lpn + 1) as u32;
        self.fwd[lpn as usize] = (ppn + 1) as u32;
        ppn
    }

    /// A host write of logical page `lpn`: its new physical page, and the collection it
    /// started, if its plane's free blocks fell below the threshold.
    pub fn write(&mut self, lpn: u64) -> (u64, Option<GcJob>) {
        debug_assert!(lpn < self.logical_pages);
        let (plane, _) = self.home(lpn);
        let ppn = self.program(plane, lpn);
        self.host_pages += 1;
        let gc = if self.free[plane].len() < self.threshold {
            self.collect(plane)
        } else {
            None
        };
        (ppn, gc)
    }

    /// The greedy victim of plane `plane`: the full, inactive block with the fewest valid
    /// pages (the lowest number on a tie); `None` if every such block is all valid.
    pub fn victim(&self, plane: usize) -> Option<u32> {
        let b = plane * self.blocks as usize;
        (0..self.blocks)
            .filter(|&k| k != self.active[plane] && self.written[b + k as usize] == self.ppb)
            .min_by_key(|&k| (self.valid[b + k as usize], k))
            .filter(|&k| self.valid[b + k as usize] < self.ppb)
    }

    /// One collection in plane `plane`: moves the victim's valid pages, erases it.
    fn collect(&mut self, plane: usize) -> Option<GcJob> {
        let block = self.victim(plane)?;
        let first = plane as u64 * self.per_plane + u64::from(block) * u64::from(self.ppb);
        let mut moves = Vec::new();
        for ppn in first..first + u64::from(self.ppb) {
            if self.is_valid(ppn) {
                let lpn = self.owner(ppn).expect("valid");
                moves.push((ppn, self.program(plane, lpn)));
            }
        }
        let k = plane * self.blocks as usize + block as usize;
        debug_assert_eq!(self.valid[k], 0);
        self.written[k] = 0;
        for ppn in first..first + u64::from(self.ppb) {
            self.rev[ppn as usize] = ERASED;
        }
        self.free[plane].push_back(block);
        self.copies += moves.len() as u64;
        self.erases += 1;
        Some(GcJob {
            plane,
            block,
            moves,
        })
    }

    /// Logical pages per plane.
    pub fn logical_per_plane(&self) -> u64 {
        u64::from(self.logical_blocks) * u64::from(self.ppb)
    }

    /// Gives every plane plane 0's state: the same blocks, valid counts, free blocks and
    /// active block, each page holding the logical page of the same in-plane index.
    pub fn replicate_plane_0(&mut self) {
        let (bl, per) = (self.blocks as usize, self.per_plane);
        let planes = self.written.len() / bl;
        let lp = self.logical_per_plane();
        for k in 1..planes {
            self.valid.copy_within(0..bl, k * bl);
            self.written.copy_within(0..bl, k * bl);
            self.free[k] = self.free[0].clone();
            self.active[k] = self.active[0];
            for idx in 0..per {
                self.rev[(k as u64 * per + idx) as usize] = match self.rev[idx as usize] {
                    r @ (0 | ERASED) => r,
                    r => {
                        let i0 = self.home(u64::from(r - 1)).1;
                        (self.home_lpn(k, i0) + 1) as u32
                    }
                };
            }
            for i0 in 0..lp {
                let f = self.fwd[self.home_lpn(0, i0) as usize];
                let lk = self.home_lpn(k, i0) as usize;
                self.fwd[lk] = match f {
                    0 => 0,
                    f => (k as u64 * per + u64::from(f)) as u32,
                };
            }
        }
    }

    #[cfg(test)]
    /// Valid pages in the drive, by the per-block counts (every logical page has exactly one).
    pub fn total_valid(&self) -> u64 {
        self.valid.iter().map(|&v| u64::from(v)).sum()
    }

    /// Pages per plane.
    pub fn per_plane(&self) -> u64 {
        self.per_plane
    }
}
