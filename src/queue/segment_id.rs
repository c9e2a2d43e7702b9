//! Segment ids and the file names they give.

/// Segments are numbered in creation order.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct SegmentId(pub u64);

impl SegmentId {
    pub fn file_name(self) -> String {
        format!("{:016X}.seg", self.0)
    }

    pub fn parse_file_name(name: &str) -> Option<SegmentId> {
        let hex = name.strip_suffix(".seg")?;
        if hex.len() != 16 {
            return None;
        }
        u64::from_str_radix(hex, 16).ok().map(SegmentId)
    }

    pub fn next(self) -> SegmentId {
        SegmentId(self.0 + 1)
    }
}

impl std::fmt::Display for SegmentId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:016X}", self.0)
    }
}
