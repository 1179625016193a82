//! The metric names and label strings of one store's series, each held once in one buffer
//! and referred to by a 32-bit id: a label set is then a few ids, not a few pointers to
//! separately allocated strings.

/// Strings by id, plus the ids sorted by content to find a string's id.
#[derive(Debug, Default)]
pub(crate) struct Strings {
    text: String,
    /// `(start, end)` of each string in `text`, by id.
    spans: Vec<(u32, u32)>,
    /// Ids sorted by their string.
    sorted: Vec<u32>,
}

impl Strings {
    /// The string with this id (empty for an id never given out).
    pub fn get(&self, id: u32) -> &str {
        span(&self.text, &self.spans, id)
    }

    /// How many strings are held; ids from here on are the ones added next.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    /// The id of `s`, added when new; `None` when the buffer would pass 4 GiB.
    pub fn intern(&mut self, s: &str) -> Option<u32> {
        let at = self.sorted.binary_search_by(|&id| self.get(id).cmp(s));
        match at {
            Ok(i) => self.sorted.get(i).copied(),
            Err(i) => {
                let start = u32::try_from(self.text.len()).ok()?;
                let end = u32::try_from(self.text.len() + s.len()).ok()?;
                let id = u32::try_from(self.spans.len()).ok()?;
                self.text.push_str(s);
                self.spans.push((start, end));
                self.sorted.insert(i, id);
                Some(id)
            }
        }
    }

    /// Forgets the strings added after the first `len` (a scrape rolled back).
    pub fn truncate(&mut self, len: usize) {
        if len >= self.spans.len() {
            return;
        }
        let start = self.spans.get(len).map_or(0, |s| s.0 as usize);
        self.text.truncate(start);
        self.spans.truncate(len);
        self.sorted.retain(|&id| (id as usize) < len);
    }

    /// Keeps the strings `used` marks (by id) and returns each old id's new id.
    pub fn compact(&mut self, used: &[bool]) -> Vec<u32> {
        let mut remap = vec![u32::MAX; self.spans.len()];
        let mut text = String::with_capacity(self.text.len());
        let mut spans = Vec::new();
        for (id, &(start, end)) in self.spans.iter().enumerate() {
            if !used.get(id).copied().unwrap_or(false) {
                continue;
            }
            let s = self.text.get(start as usize..end as usize).unwrap_or("");
            // Never past 4 GiB: the kept text is a part of the text held before.
            let new_start = text.len() as u32;
            text.push_str(s);
            if let Some(slot) = remap.get_mut(id) {
                *slot = spans.len() as u32;
            }
            spans.push((new_start, text.len() as u32));
        }
        let mut sorted: Vec<u32> = (0..spans.len() as u32).collect();
        sorted.sort_by(|&a, &b| span(&text, &spans, a).cmp(span(&text, &spans, b)));
        self.text = text;
        self.spans = spans;
        self.sorted = sorted;
        remap
    }
}

fn span<'t>(text: &'t str, spans: &[(u32, u32)], id: u32) -> &'t str {
    spans
        .get(id as usize)
        .and_then(|&(start, end)| text.get(start as usize..end as usize))
        .unwrap_or("")
}
