//! One delivery attempt for one message: its pending recipients grouped by
//! destination, the groups delivered side by side, every recipient's result reported
//! back to the scheduler.

use std::sync::Arc;

use super::engine::Engine;
use super::event::{Event, Events};
use super::group;
use super::loaded::Loaded;
use super::outcome::RcptOutcome;
use super::routing::Destination;
use crate::queue::{Entry, RecipientStatus};

/// Runs the attempt and reports to the scheduler: one event per destination group as
/// it finishes (so delivered recipients are recorded at once), the last one marked.
pub async fn run(engine: Arc<Engine>, entry: Entry, events: Events) {
    let id = entry.envelope.id;
    let (mut groups, mut unrouted) = by_destination(&engine, &entry);
    let message = Arc::new(Loaded::new(entry));
    if groups.len() > 1 {
        let mut running = tokio::task::JoinSet::new();
        for (destination, members) in groups {
            let (engine, message, events) = (Arc::clone(&engine), Arc::clone(&message), events.clone());
            running.spawn(async move { group::deliver(&engine, &destination, &message, members, &events).await });
        }
        while let Some(done) = running.join_next().await {
            match done {
                Ok(results) => {
                    let _ = events.send(Event::Outcomes { id, results, last: false });
                }
                Err(error) => tracing::error!(%id, %error, "a delivery task failed"),
            }
        }
    } else if let Some((destination, members)) = groups.pop() {
        unrouted.extend(group::deliver(&engine, &destination, &message, members, &events).await);
    }
    let _ = events.send(Event::Outcomes { id, results: unrouted, last: true });
}

type Groups = Vec<(Destination, Vec<usize>)>;

/// The pending recipients by destination, and the outcomes of those without a route.
fn by_destination(engine: &Engine, entry: &Entry) -> (Groups, Vec<(usize, RcptOutcome)>) {
    let mut unrouted = Vec::new();
    let mut groups: Groups = Vec::new();
    let pending = (0..entry.envelope.recipients.len()).filter(|&i| entry.state.status(i) == RecipientStatus::Pending);
    for index in pending {
        match engine.router.route(&entry.envelope, index) {
            Ok(destination) => match groups.iter_mut().find(|(d, _)| *d == destination) {
                Some((_, members)) => members.push(index),
                None => groups.push((destination, vec![index])),
            },
            Err(problem) => unrouted.push((index, problem.outcome())),
        }
    }
    (groups, unrouted)
}
