// external-tagger: prefixes the Subject of mail from outside the configured internal
// domains with "[EXTERNAL]", at DATA. Built with componentize-js against the narrow
// world in wit/tagger.wit (log + config only); see build.sh and plugins/README.md.

import { get } from 'sluice:plugin/config@0.2.0';
import { write } from 'sluice:plugin/log@0.2.0';

import { classify, readConfig, taggedSubject } from './tagger.js';

const NAME = 'external-tagger';
const VERSION = '0.1.0';

// Read once per instance (an instance may serve several sessions, one after the other).
let settings;
function config() {
  if (settings === undefined) {
    const { config, warnings } = readConfig(get);
    for (const warning of warnings) write('warn', `config: ${warning}`);
    settings = config;
  }
  return settings;
}

function outcome(tags = [], annotations = []) {
  return { verdict: { tag: 'continue' }, tags, score: 0, annotations };
}

// With stdio disabled (no wasi:filesystem), an exception would trap silently: log it
// first, then let the plugin's on_error policy decide.
function logged(hook) {
  return (...args) => {
    try {
      return hook(...args);
    } catch (e) {
      write('error', `${e?.stack ?? e}`);
      throw e;
    }
  };
}

export const hooks = {
  describe() {
    // Reusable: the only global is the parsed config (`settings`).
    return { name: NAME, version: VERSION, stages: ['data'], reuseInstances: true };
  },
  // Never called (not in `stages`), but every export of the world must exist.
  connect: () => outcome(),
  helo: () => outcome(),
  mailFrom: () => ({ outcome: outcome(), newSender: undefined }),
  rcptTo: () => ({ outcome: outcome(), action: { tag: 'keep' }, addRecipients: [] }),

  data: logged((session, transaction, message) => {
    const cfg = config();
    const fromValues = message.header('From');
    const verdict = classify(
      { sender: transaction.sender, from: fromValues[0], authUser: session.authUser },
      cfg,
    );
    const result = {
      outcome: outcome(),
      headerChanges: [],
      newBody: undefined,
      addRecipients: [],
      removeRecipients: [],
      route: undefined,
    };
    if (!verdict.external) return result;
    result.outcome = outcome(['external'], [['external', verdict.reason]]);
    const subject = taggedSubject(message.header('Subject')[0], cfg.prefix);
    if (subject !== undefined) result.headerChanges.push({ tag: 'set', val: ['Subject', subject] });
    return result;
  }),
};
