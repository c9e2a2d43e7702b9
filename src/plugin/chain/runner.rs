//! The one loop every stage runs: call each plugin of the stage in configuration order,
//! take in what it returned (its changes only when its verdict lets the transaction go
//! on, its notes always), apply its `on_error` policy when the call failed, and stop at
//! the first verdict that ends the stage.

use super::decision::Decision;
use super::notes::Notes;
use super::on_error::failure_decision;
use super::verdict::{decide, proceeds};
use crate::config::OnError;
use crate::plugin::instance::Failure;
use crate::plugin::output::Checked;
use crate::plugin::stage::Stage;

/// A plugin in a stage's chain, as the runner sees it.
#[derive(Clone, Copy, Debug)]
pub(super) struct Link<'a> {
    /// Its place in the configuration, which `StageCalls::call` is given.
    pub index: usize,
    pub name: &'a str,
    pub on_error: OnError,
}

/// One stage's calls: what the runner asks of each plugin, and where what a plugin
/// changed goes (so the next plugin sees it).
pub(super) trait StageCalls {
    /// What a plugin may change at this stage, besides its outcome.
    type Changes;

    /// Calls plugin `index` on the transaction as the plugins before it left it, with
    /// their notes; `None` when nothing is left to call it on (the recipient was dropped).
    async fn call(&mut self, index: usize, notes: &Notes) -> Option<Result<(Checked, Self::Changes), Failure>>;

    /// Takes in one plugin's changes.
    fn apply(&mut self, changes: Self::Changes);
}

/// Runs a stage's chain; the decision is `Proceed` unless a plugin (or a failure
/// under its policy) ended the stage otherwise.
pub(super) async fn run_chain<'a, C: StageCalls>(
    stage: Stage,
    chain: impl IntoIterator<Item = Link<'a>>,
    calls: &mut C,
    notes: &mut Notes,
) -> Decision {
    for link in chain {
        let Some(result) = calls.call(link.index, notes).await else { break };
        let decision = match result {
            Ok((checked, changes)) => {
                if proceeds(&checked.verdict) {
                    calls.apply(changes);
                }
                notes.add(link.name, checked.tags, checked.score, checked.annotations);
                decide(link.name, stage, checked.verdict, notes)
            }
            Err(Failure::ShortCircuited) => {
                metrics::counter!("sluice_plugin_short_circuited_total", "plugin" => link.name.to_string())
                    .increment(1);
                failure_decision(link.on_error, stage)
            }
            Err(failure) => {
                tracing::warn!(plugin = %link.name, %stage, kind = failure.kind(), %failure, policy = %link.on_error, "plugin failed");
                metrics::counter!("sluice_plugin_failures_total", "plugin" => link.name.to_string(), "kind" => failure.kind())
                    .increment(1);
                failure_decision(link.on_error, stage)
            }
        };
        if let Some(decision) = decision {
            return decision;
        }
    }
    Decision::Proceed
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plugin::output::Verdict;
    use crate::wire::{Reply, Status};

    const NAMES: [&str; 4] = ["a", "b", "c", "d"];
    const REJECT: Reply = Reply::new(550, Status(5, 7, 1), "rejected");
    const TEMPFAIL: Reply = Reply::new(451, Status(4, 7, 1), "later");
    const BYE: Reply = Reply::new(421, Status(4, 7, 0), "bye");

    type Answer = Option<Result<(Checked, &'static str), Failure>>;

    /// Plugins that answer what they were told to, recording what they were asked.
    #[derive(Default)]
    struct Fake {
        answers: Vec<Answer>,
        called: Vec<usize>,
        /// The score each call saw (what earlier plugins noted).
        seen_scores: Vec<f64>,
        applied: Vec<&'static str>,
    }

    impl StageCalls for Fake {
        type Changes = &'static str;

        async fn call(&mut self, index: usize, notes: &Notes) -> Answer {
            self.called.push(index);
            self.seen_scores.push(notes.score);
            self.answers.get_mut(index)?.take()
        }

        fn apply(&mut self, changes: &'static str) {
            self.applied.push(changes);
        }
    }

    /// A plugin's answer: the verdict, a tag and a score of 1, and a change named after
    /// its verdict.
    fn says(verdict: Verdict) -> Answer {
        let change = verdict.name();
        let checked = Checked { verdict, tags: vec![format!("tag-{change}")], score: 1.0, annotations: vec![] };
        Some(Ok((checked, change)))
    }

    fn fails(failure: Failure) -> Answer {
        Some(Err(failure))
    }

    async fn run(stage: Stage, answers: Vec<Answer>, policy: OnError) -> (Decision, Fake, Notes) {
        let chain: Vec<Link> = NAMES[..answers.len()]
            .iter()
            .enumerate()
            .map(|(index, name)| Link { index, name, on_error: policy })
            .collect();
        let mut fake = Fake { answers, ..Fake::default() };
        let mut notes = Notes::default();
        let decision = run_chain(stage, chain, &mut fake, &mut notes).await;
        (decision, fake, notes)
    }

    async fn decision_of(answers: Vec<Answer>) -> (Decision, Vec<usize>) {
        let (decision, fake, _) = run(Stage::RcptTo, answers, OnError::Tempfail).await;
        (decision, fake.called)
    }

    #[tokio::test]
    async fn every_plugin_runs_while_they_say_continue() {
        let (decision, fake, notes) =
            run(Stage::MailFrom, vec![says(Verdict::Continue), says(Verdict::Continue)], OnError::Tempfail).await;
        assert_eq!(decision, Decision::Proceed);
        assert_eq!(fake.called, [0, 1]);
        assert_eq!(fake.applied, ["continue", "continue"]);
        assert_eq!(notes.tags, ["tag-continue"]);
        assert_eq!(notes.score, 2.0);
    }

    #[tokio::test]
    async fn the_first_verdict_other_than_continue_wins() {
        let reject = || says(Verdict::Reject(REJECT));
        let tempfail = || says(Verdict::Tempfail(TEMPFAIL));
        assert_eq!(
            decision_of(vec![says(Verdict::Continue), reject(), tempfail()]).await,
            (Decision::Refuse(REJECT), vec![0, 1])
        );
        assert_eq!(decision_of(vec![tempfail(), reject()]).await, (Decision::Refuse(TEMPFAIL), vec![0]));
        assert_eq!(decision_of(vec![says(Verdict::Accept), reject()]).await, (Decision::Proceed, vec![0]));
        assert_eq!(
            decision_of(vec![says(Verdict::Disconnect(BYE)), reject()]).await,
            (Decision::Disconnect(BYE), vec![0])
        );
        assert_eq!(decision_of(vec![says(Verdict::Discard), reject()]).await, (Decision::Proceed, vec![0]));
        assert_eq!(
            decision_of(vec![says(Verdict::Quarantine("hold".into())), reject()]).await,
            (Decision::Proceed, vec![0])
        );
        assert_eq!(decision_of(vec![reject(), says(Verdict::Discard)]).await, (Decision::Refuse(REJECT), vec![0]));
    }

    #[tokio::test]
    async fn discard_and_quarantine_are_noted_for_the_end_of_data() {
        let (_, _, notes) =
            run(Stage::RcptTo, vec![says(Verdict::Continue), says(Verdict::Discard)], OnError::Tempfail).await;
        assert_eq!(notes.discard.as_deref(), Some("b"));
        assert_eq!(notes.quarantine, None);
        let (_, _, notes) =
            run(Stage::Helo, vec![says(Verdict::Quarantine("looks odd".into()))], OnError::Tempfail).await;
        assert_eq!(notes.quarantine.as_deref(), Some("a: looks odd"));
        assert_eq!(notes.discard, None);
    }

    #[tokio::test]
    async fn changes_count_only_when_the_verdict_lets_the_transaction_go_on() {
        for (verdict, applied) in [
            (Verdict::Accept, true),
            (Verdict::Discard, true),
            (Verdict::Quarantine("q".into()), true),
            (Verdict::Reject(REJECT), false),
            (Verdict::Tempfail(TEMPFAIL), false),
            (Verdict::Disconnect(BYE), false),
        ] {
            let name = verdict.name();
            let (_, fake, notes) =
                run(Stage::Data, vec![says(Verdict::Continue), says(verdict)], OnError::Tempfail).await;
            let expected: &[&str] = if applied { &["continue", name] } else { &["continue"] };
            assert_eq!(fake.applied, expected, "{name}");
            // Notes are kept whatever the verdict: a rejecting plugin's tags are logged.
            assert_eq!(notes.tags, ["tag-continue".to_string(), format!("tag-{name}")], "{name}");
        }
    }

    #[tokio::test]
    async fn later_plugins_see_earlier_notes() {
        let answers = vec![says(Verdict::Continue), says(Verdict::Continue), says(Verdict::Continue)];
        let (_, fake, _) = run(Stage::Data, answers, OnError::Tempfail).await;
        assert_eq!(fake.seen_scores, [0.0, 1.0, 2.0]);
    }

    #[tokio::test]
    async fn on_error_continue_goes_on_to_the_next_plugin() {
        let answers =
            vec![fails(Failure::Trap("unreachable".into())), fails(Failure::WallTime), says(Verdict::Continue)];
        let (decision, fake, notes) = run(Stage::Data, answers, OnError::Continue).await;
        assert_eq!(decision, Decision::Proceed);
        assert_eq!(fake.called, [0, 1, 2]);
        assert_eq!(fake.applied, ["continue"], "a failed call changes nothing");
        assert_eq!(notes.score, 1.0);
    }

    #[tokio::test]
    async fn on_error_tempfail_and_reject_answer_with_the_policy_reply() {
        let reply_of = async |stage: Stage, failure: Failure, policy: OnError| {
            let (decision, fake, _) = run(stage, vec![fails(failure), says(Verdict::Continue)], policy).await;
            assert_eq!(fake.called, [0], "the chain stops at the failure");
            decision
        };
        let code = |decision: Decision| match decision {
            Decision::Refuse(reply) => ("refuse", reply.code, reply.status),
            Decision::Disconnect(reply) => ("disconnect", reply.code, reply.status),
            Decision::Proceed => ("proceed", 0, None),
        };
        assert_eq!(
            code(reply_of(Stage::RcptTo, Failure::Trap("boom".into()), OnError::Tempfail).await),
            ("refuse", 451, Some(Status(4, 3, 0)))
        );
        assert_eq!(
            code(reply_of(Stage::Data, Failure::CpuTime, OnError::Tempfail).await),
            ("refuse", 451, Some(Status(4, 3, 0)))
        );
        assert_eq!(
            code(reply_of(Stage::Connect, Failure::WallTime, OnError::Tempfail).await),
            ("disconnect", 421, Some(Status(4, 3, 0)))
        );
        assert_eq!(
            code(reply_of(Stage::MailFrom, Failure::Memory, OnError::Reject).await),
            ("refuse", 550, Some(Status(5, 7, 0)))
        );
        assert_eq!(
            code(reply_of(Stage::Connect, Failure::Invalid("bad".into()), OnError::Reject).await),
            ("refuse", 554, Some(Status(5, 7, 0)))
        );
    }

    #[tokio::test]
    async fn nothing_left_to_call_on_ends_the_stage() {
        let (decision, fake, _) =
            run(Stage::RcptTo, vec![says(Verdict::Continue), None, says(Verdict::Continue)], OnError::Tempfail).await;
        assert_eq!(decision, Decision::Proceed);
        assert_eq!(fake.called, [0, 1]);
    }
}
