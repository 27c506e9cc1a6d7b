//! A first-come first-served resource.

/// A resource that serves one request at a time, in the order requests arrive (a port, a bus,
/// a memory channel): a request reserved at `now` for `service` cycles starts when the server
/// frees (or at `now` if it is idle) and holds it for `service`. The server keeps its busy
/// time, so `busy_time / span` is its utilisation.
///
/// `reserve` computes `busy_until.max(now) + service` and nothing else, so a model that kept
/// such a "free at" time by hand gets the same numbers bit for bit.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Server {
    /// When the requests reserved so far are done.
    free: f64,
    /// Cycles spent serving.
    busy: f64,
    /// Requests served.
    served: u64,
}

impl Server {
    /// An idle server at time 0.
    pub fn new() -> Self {
        Self::default()
    }

    /// Reserves the server for a request that arrives at `now` and needs `service` cycles
    /// (≥ 0); returns when it is done.
    pub fn reserve(&mut self, now: f64, service: f64) -> f64 {
        debug_assert!(service >= 0.0, "negative service time {service}");
        self.free = self.free.max(now) + service;
        self.busy += service;
        self.served += 1;
        self.free
    }

    /// When the requests reserved so far are done (0 if none was).
    pub fn busy_until(&self) -> f64 {
        self.free
    }

    /// Whether a request arriving at `now` would wait.
    pub fn is_busy(&self, now: f64) -> bool {
        self.free > now
    }

    /// Cycles spent serving requests.
    pub fn busy_time(&self) -> f64 {
        self.busy
    }

    /// Requests reserved.
    pub fn served(&self) -> u64 {
        self.served
    }

    /// Busy time over `span` cycles (0 when `span` is not positive).
    pub fn utilisation(&self, span: f64) -> f64 {
        if span > 0.0 {
            self.busy / span
        } else {
            0.0
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serves_in_arrival_order_and_idles_between() {
        let mut s = Server::new();
        assert_eq!(s.reserve(0.0, 10.0), 10.0);
        // Arrives while busy: waits.
        assert_eq!(s.reserve(4.0, 5.0), 15.0);
        assert!(s.is_busy(14.0));
        assert!(!s.is_busy(15.0));
        // Arrives after an idle gap: starts at once.
        assert_eq!(s.reserve(20.0, 2.5), 22.5);
        assert_eq!(s.busy_until(), 22.5);
        assert_eq!(s.busy_time(), 17.5);
        assert_eq!(s.served(), 3);
        assert_eq!(s.utilisation(25.0), 0.7);
        assert_eq!(s.utilisation(0.0), 0.0);
    }

    #[test]
    fn matches_a_hand_kept_free_time_bit_for_bit() {
        let mut s = Server::new();
        let mut free = 0.0f64;
        let mut now = 0.0;
        for i in 0..1000u32 {
            let service = f64::from(i % 7) * 0.1 + 1.0 / 3.0;
            free = free.max(now) + service;
            assert_eq!(s.reserve(now, service).to_bits(), free.to_bits());
            now += f64::from(i % 5) * 0.37;
        }
    }
}
