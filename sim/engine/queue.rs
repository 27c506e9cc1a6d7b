//! The event queue: a min-heap by time, ties broken by insertion order.

use std::cmp::Ordering;
use std::collections::BinaryHeap;

/// Pending events of type `E`, each at a time in cycles. [`pop`](EventQueue::pop) returns the
/// earliest; events at equal times (`f64::total_cmp`) come out in the order they were pushed,
/// so a run is the same whatever the heap's internal layout.
#[derive(Debug, Clone)]
pub struct EventQueue<E> {
    heap: BinaryHeap<Entry<E>>,
    /// Sequence number of the last push.
    seq: u64,
    /// Events popped so far.
    processed: u64,
    /// Time of the last event popped.
    now: f64,
}

impl<E> Default for EventQueue<E> {
    fn default() -> Self {
        Self::new()
    }
}

impl<E> EventQueue<E> {
    /// An empty queue at time 0.
    pub fn new() -> Self {
        EventQueue {
            heap: BinaryHeap::new(),
            seq: 0,
            processed: 0,
            now: 0.0,
        }
    }

    /// Schedules `event` at time `t`, which must not be NaN nor before the last event popped
    /// (checked in debug builds).
    pub fn push(&mut self, t: f64, event: E) {
        debug_assert!(!t.is_nan(), "event time is NaN");
        debug_assert!(
            t >= self.now,
            "event scheduled at {t}, before the current time {}",
            self.now
        );
        self.seq += 1;
        self.heap.push(Entry {
            t,
            seq: self.seq,
            event,
        });
    }

    /// Removes the earliest event (the first pushed among equal times) and counts it as
    /// processed.
    pub fn pop(&mut self) -> Option<(f64, E)> {
        let e = self.heap.pop()?;
        self.processed += 1;
        self.now = e.t;
        Some((e.t, e.event))
    }

    /// The time of the next event, if any.
    pub fn peek_time(&self) -> Option<f64> {
        self.heap.peek().map(|e| e.t)
    }

    /// Events pending.
    pub fn len(&self) -> usize {
        self.heap.len()
    }

    /// Whether no event is pending.
    pub fn is_empty(&self) -> bool {
        self.heap.is_empty()
    }

    /// Events popped so far.
    pub fn processed(&self) -> u64 {
        self.processed
    }

    /// The time of the last event popped (0 before the first).
    pub fn now(&self) -> f64 {
        self.now
    }
}

#[derive(Debug, Clone)]
struct Entry<E> {
    t: f64,
    seq: u64,
    event: E,
}

impl<E> PartialEq for Entry<E> {
    fn eq(&self, o: &Self) -> bool {
        self.cmp(o) == Ordering::Equal
    }
}
impl<E> Eq for Entry<E> {}
impl<E> PartialOrd for Entry<E> {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl<E> Ord for Entry<E> {
    /// Reversed: the earliest event (then the first pushed) is the heap's maximum.
    fn cmp(&self, o: &Self) -> Ordering {
        o.t.total_cmp(&self.t).then(o.seq.cmp(&self.seq))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pops_by_time_then_push_order() {
        let mut q = EventQueue::new();
        assert!(q.is_empty());
        q.push(5.0, 'a');
        q.push(1.0, 'b');
        q.push(5.0, 'c');
        q.push(1.0, 'd');
        q.push(3.0, 'e');
        assert_eq!(q.len(), 5);
        assert_eq!(q.peek_time(), Some(1.0));
        let order: Vec<(f64, char)> = std::iter::from_fn(|| q.pop()).collect();
        assert_eq!(
            order,
            [(1.0, 'b'), (1.0, 'd'), (3.0, 'e'), (5.0, 'a'), (5.0, 'c')]
        );
        assert_eq!(q.processed(), 5);
        assert_eq!(q.now(), 5.0);
        assert!(q.pop().is_none());
        assert_eq!(q.processed(), 5);
    }

    #[test]
    fn events_pushed_while_running_keep_their_order() {
        // Each event at t schedules two at t + 1: the same sequence every run.
        let run = || {
            let mut q = EventQueue::new();
            q.push(0.0, 0u32);
            let mut seen = Vec::new();
            while let Some((t, id)) = q.pop() {
                seen.push((t.to_bits(), id));
                if t < 4.0 {
                    q.push(t + 1.0, 2 * id + 1);
                    q.push(t + 1.0, 2 * id + 2);
                }
            }
            seen
        };
        let a = run();
        assert_eq!(a.len(), 31);
        assert_eq!(a, run());
        // Breadth-first: ids at each level come out in push order.
        let ids: Vec<u32> = a.iter().map(|x| x.1).collect();
        assert_eq!(ids, (0..31).collect::<Vec<_>>());
    }

    #[test]
    fn negative_zero_sorts_before_zero() {
        // `total_cmp` orders -0.0 before 0.0: the ordering is total, never "equal but
        // different".
        let mut q = EventQueue::new();
        q.push(0.0, 1);
        q.push(-0.0, 2);
        assert_eq!(q.pop().map(|e| e.1), Some(2));
    }
}
