// Runs the built component through Sluice's offline runner on the fixtures, checking
// what fixtures/EXPECTED.md lists. Needs external-tagger.wasm (./build.sh) and the
// server binary: $SLUICE, else `sluice` on PATH, else the repo's target/{release,debug}.
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const here = join(dirname(fileURLToPath(import.meta.url)), '..');
const wasm = join(here, 'external-tagger.wasm');
const repo = join(here, '..', '..');

function sluiceBinary() {
  if (process.env.SLUICE) return process.env.SLUICE;
  const onPath = spawnSync('sluice', ['--version']);
  if (onPath.status === 0) return 'sluice';
  return ['release', 'debug'].map((p) => join(repo, 'target', p, 'sluice')).find((p) => existsSync(p));
}

const sluice = sluiceBinary();
const skip = !existsSync(wasm) ? 'external-tagger.wasm not built (run ./build.sh)' : !sluice ? 'no sluice binary' : false;

function run(eml, from, extra = []) {
  const args = ['plugin', 'test', wasm, '--message', join(here, 'fixtures', eml), '--from', from,
    '--rcpt', 'bob@example.com', '--plugin-config', join(here, 'fixtures', 'config.toml'),
    '--grant', 'log', 'config', '--json', ...extra];
  const out = spawnSync(sluice, args, { encoding: 'utf8' });
  assert.equal(out.status, 0, `sluice exited ${out.status}: ${out.stderr}`);
  return JSON.parse(out.stdout);
}

const subject = (report) => report.headers_added.find((h) => h.startsWith('Subject: '));

test('external sender: subject tagged', { skip }, () => {
  const r = run('external.eml', 'support@partner.example');
  assert.equal(r.fate, 'accepted');
  assert.equal(subject(r), 'Subject: [EXTERNAL] Your ticket #5521 has been updated');
  assert.deepEqual(r.tags, ['external']);
});

test('internal sender: untouched', { skip }, () => {
  const r = run('internal.eml', 'alice@example.com');
  assert.equal(r.fate, 'accepted');
  assert.deepEqual(r.headers_added, []);
});

test('From: claiming an internal domain over an external envelope: tagged', { skip }, () => {
  const r = run('spoofed-ceo.eml', 'mailer@freemail.example');
  assert.equal(subject(r), 'Subject: [EXTERNAL] Urgent: gift cards for the client meeting');
});

test('already tagged: not tagged twice', { skip }, () => {
  const r = run('already-tagged.eml', 'support@partner.example');
  assert.deepEqual(r.headers_added, []);
  assert.deepEqual(r.tags, ['external']);
});

test('imports only what log + config grant', { skip }, () => {
  const out = spawnSync(sluice, ['plugin', 'test', wasm, '--message', join(here, 'fixtures', 'external.eml'),
    '--from', 'a@partner.example', '--rcpt', 'bob@example.com', '--grant', 'log'], { encoding: 'utf8' });
  assert.equal(out.status, 2);
  assert.match(out.stdout + out.stderr, /not granted "config"/);
});
