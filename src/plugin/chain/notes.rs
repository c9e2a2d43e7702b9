//! What plugins attach to a session or a transaction besides their verdicts: tags, a
//! score and annotations, which later plugins see.

/// A note a plugin left.
#[derive(Clone, Debug, PartialEq)]
pub struct Annotation {
    pub plugin: String,
    pub key: String,
    pub value: String,
}

/// What plugins attached to a session or a transaction.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Notes {
    pub tags: Vec<String>,
    pub score: f64,
    pub annotations: Vec<Annotation>,
    /// The plugin that asked for the message to be dropped.
    pub discard: Option<String>,
    /// Why the message is to be held (plugin name first).
    pub quarantine: Option<String>,
}

impl Notes {
    /// Takes in one plugin's notes: tags are a set (first come first), scores add up
    /// (SpamAssassin style), annotations keep their order and the plugin's name.
    pub(super) fn add(&mut self, plugin: &str, tags: Vec<String>, score: f64, annotations: Vec<(String, String)>) {
        for tag in tags {
            if !self.tags.contains(&tag) {
                self.tags.push(tag);
            }
        }
        self.score += score;
        self.annotations.extend(annotations.into_iter().map(|(key, value)| Annotation {
            plugin: plugin.to_string(),
            key,
            value,
        }));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tags_are_a_set_scores_add_up_annotations_keep_order() {
        let mut notes = Notes::default();
        notes.add("a", vec!["spam".into(), "bulk".into()], 2.5, vec![("k".into(), "1".into())]);
        notes.add("b", vec!["bulk".into(), "phish".into()], -1.0, vec![("k".into(), "2".into())]);
        assert_eq!(notes.tags, ["spam", "bulk", "phish"]);
        assert_eq!(notes.score, 1.5);
        let seen: Vec<_> = notes.annotations.iter().map(|a| (a.plugin.as_str(), a.value.as_str())).collect();
        assert_eq!(seen, [("a", "1"), ("b", "2")]);
    }
}
