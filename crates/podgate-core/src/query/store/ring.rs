//! The scrape times of one store in a ring every series shares, and the float values of
//! every series in one block beside it: a row per series, a value per slot of the ring, so
//! no point repeats its timestamp and no series holds a buffer of its own. Which slots of a
//! row hold a point is the series' own [`super::series::Slots`]: a scrape that lacked the
//! series leaves its slot empty.

use std::ops::Range;

#[derive(Debug, Default)]
pub(crate) struct Ring {
    /// The time of the scrape in each slot (`seq % capacity`).
    times: Vec<i64>,
    /// Sequence number of the oldest scrape kept.
    first: u64,
    /// Scrapes kept.
    count: usize,
    /// `capacity` values per series, row after row.
    values: Vec<f64>,
}

impl Ring {
    pub fn capacity(&self) -> usize {
        self.times.len()
    }

    pub fn len(&self) -> usize {
        self.count
    }

    /// Sequence numbers of the scrapes kept, oldest first.
    pub fn seqs(&self) -> Range<u64> {
        self.first..self.first + self.count as u64
    }

    /// The slot a scrape's values are in.
    pub fn slot(&self, seq: u64) -> usize {
        match self.times.len() {
            0 => 0,
            cap => (seq % cap as u64) as usize,
        }
    }

    pub fn time(&self, seq: u64) -> i64 {
        self.times.get(self.slot(seq)).copied().unwrap_or(i64::MIN)
    }

    pub fn oldest(&self) -> Option<i64> {
        (self.count > 0).then(|| self.time(self.first))
    }

    pub fn latest(&self) -> Option<i64> {
        (self.count > 0).then(|| self.time(self.first + self.count as u64 - 1))
    }

    /// The first sequence number in `seqs` whose scrape is later than `t` (times increase).
    pub fn first_after(&self, seqs: Range<u64>, t: i64) -> u64 {
        let (mut lo, mut hi) = (seqs.start, seqs.end);
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            if self.time(mid) <= t {
                lo = mid + 1;
            } else {
                hi = mid;
            }
        }
        lo
    }

    /// The row of values of series `row`.
    pub fn row(&self, row: usize) -> &[f64] {
        let cap = self.capacity();
        self.values.get(row * cap..(row + 1) * cap).unwrap_or(&[])
    }

    pub fn set(&mut self, row: usize, slot: usize, v: f64) {
        let cap = self.capacity();
        if let Some(x) = self.values.get_mut(row * cap + slot) {
            *x = v;
        }
    }

    /// The slot the next scrape goes to, its time set; the ring grows (and its values are
    /// laid out again, `rows` of them) when every slot holds a scrape kept. Returns the
    /// capacity before, when it grew, for the series' slots to be laid out the same way.
    pub fn next_slot(&mut self, t: i64, rows: usize) -> (usize, Option<usize>) {
        let old = self.capacity();
        let grown = if self.count + 1 > old {
            self.relayout(self.count + 1, rows);
            Some(old)
        } else {
            None
        };
        let slot = self.slot(self.first + self.count as u64);
        if let Some(x) = self.times.get_mut(slot) {
            *x = t;
        }
        (slot, grown)
    }

    /// Counts the scrape whose slot [`Ring::next_slot`] gave.
    pub fn commit(&mut self) {
        self.count += 1;
    }

    /// Forgets the oldest scrape; returns its slot.
    pub fn pop_oldest(&mut self) -> Option<usize> {
        if self.count == 0 {
            return None;
        }
        let slot = self.slot(self.first);
        self.first += 1;
        self.count -= 1;
        Some(slot)
    }

    /// Lays the ring out with `cap` slots (at least the scrapes kept).
    pub fn relayout(&mut self, cap: usize, rows: usize) {
        let cap = cap.max(self.count);
        let old = self.capacity();
        let mut times = vec![i64::MIN; cap];
        let mut values = vec![f64::NAN; rows * cap];
        for seq in self.seqs() {
            let (from, to) = ((seq % old as u64) as usize, (seq % cap as u64) as usize);
            if let (Some(t), Some(x)) = (times.get_mut(to), self.times.get(from)) {
                *t = *x;
            }
            for row in 0..rows {
                if let (Some(v), Some(x)) = (
                    values.get_mut(row * cap + to),
                    self.values.get(row * old + from),
                ) {
                    *v = *x;
                }
            }
        }
        self.times = times;
        self.values = values;
    }

    /// Adds a row for a new series.
    pub fn push_row(&mut self) {
        let cap = self.capacity();
        self.values.resize(self.values.len() + cap, f64::NAN);
    }

    /// Keeps the first `rows` rows.
    pub fn truncate_rows(&mut self, rows: usize) {
        self.values.truncate(rows * self.capacity());
    }

    /// Keeps the rows `keep` marks, in order.
    pub fn retain_rows(&mut self, keep: &[bool]) {
        let cap = self.capacity();
        let mut to = 0;
        for (from, &kept) in keep.iter().enumerate() {
            if kept {
                if from != to {
                    self.values
                        .copy_within(from * cap..(from + 1) * cap, to * cap);
                }
                to += 1;
            }
        }
        self.values.truncate(to * cap);
    }

    /// Gives back the block's slack after series went away.
    pub fn shrink(&mut self) {
        if self.values.capacity() > self.values.len() + self.values.len() / 4 + 16 {
            self.values.shrink_to_fit();
        }
    }
}
