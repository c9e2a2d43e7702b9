// Unit tests of the plugin's logic on node: `npm test` (or `node --test test/`).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  classify,
  domainOf,
  fromAddress,
  isDomainPattern,
  isInternalDomain,
  readConfig,
  taggedSubject,
} from '../src/tagger.js';

/** A fake `config.get` over a plain object, answering as the host does. */
function getter(table) {
  const variant = (v) => {
    if (v === undefined) return undefined;
    if (Array.isArray(v)) return { tag: 'array', val: v.length };
    if (typeof v === 'string') return { tag: 'text', val: v };
    if (typeof v === 'boolean') return { tag: 'boolean', val: v };
    if (Number.isInteger(v)) return { tag: 'integer', val: BigInt(v) };
    if (typeof v === 'number') return { tag: 'float', val: v };
    return { tag: 'table', val: Object.keys(v) };
  };
  return (path) => variant(path.reduce((node, key) => (node === undefined ? undefined : node[key]), table));
}

const config = readConfig(getter({ internal_domains: ['example.com', '*.example.com', 'Example.NET.'] })).config;

test('reads the config, with defaults', () => {
  assert.deepEqual(config.internal_domains, ['example.com', '*.example.com', 'example.net']);
  assert.equal(config.prefix, '[EXTERNAL]');
  assert.equal(config.trust_authenticated, true);
  const custom = readConfig(getter({ internal_domains: 'example.org', prefix: ' [EXT] ', trust_authenticated: false }));
  assert.deepEqual(custom.warnings, []);
  assert.deepEqual(custom.config, { internal_domains: ['example.org'], prefix: '[EXT]', trust_authenticated: false });
});

test('bad config values warn and fall back', () => {
  const { config: c, warnings } = readConfig(
    getter({ internal_domains: ['ok.example', 7, 'not a domain'], prefix: '', trust_authenticated: 'yes' }),
  );
  assert.deepEqual(c.internal_domains, ['ok.example']);
  assert.equal(c.prefix, '[EXTERNAL]');
  assert.equal(c.trust_authenticated, true);
  assert.equal(warnings.length, 4);
  assert.match(readConfig(getter({})).warnings[0], /not set/);
  assert.equal(readConfig(getter({ internal_domains: { a: 1 } })).warnings.length, 1);
});

test('domain patterns', () => {
  assert.ok(isDomainPattern('example.com') && isDomainPattern('*.example.com') && isDomainPattern('bücher.example'));
  assert.ok(!isDomainPattern('') && !isDomainPattern('a..b') && !isDomainPattern('user@example.com'));
  assert.ok(isInternalDomain('EXAMPLE.com', config.internal_domains));
  assert.ok(isInternalDomain('mail.example.com', config.internal_domains));
  assert.ok(!isInternalDomain('badexample.com', config.internal_domains));
  assert.ok(!isInternalDomain('example.org', config.internal_domains));
});

test('addresses', () => {
  assert.equal(domainOf('alice@Example.COM'), 'example.com');
  assert.equal(domainOf(''), undefined);
  assert.equal(domainOf('postmaster'), undefined);
  assert.equal(domainOf(undefined), undefined);
  assert.equal(fromAddress('Alice <alice@example.com>'), 'alice@example.com');
  assert.equal(fromAddress('"ceo@example.com" <ceo@evil.example>'), 'ceo@evil.example');
  assert.equal(fromAddress('bob@example.org (Bob)'), 'bob@example.org');
  assert.equal(fromAddress(undefined), undefined);
});

test('classifies senders', () => {
  const c = (sender, from, authUser) => classify({ sender, from, authUser }, config).external;
  assert.equal(c('alice@example.com', 'Alice <alice@example.com>'), false);
  assert.equal(c('bounce@mail.example.com', 'Alice <alice@example.com>'), false);
  assert.equal(c('news@partner.example', 'News <news@partner.example>'), true);
  assert.equal(c('attacker@evil.example', 'CEO <ceo@example.com>'), true, 'From alone is not trusted');
  assert.equal(c('alice@example.com', '"alice@example.com" <x@evil.example>'), true);
  assert.equal(c('', 'MAILER-DAEMON <mailer-daemon@example.com>'), false, 'internal bounce');
  assert.equal(c('', undefined), true, 'nothing to go by');
  assert.equal(c('someone@gmail.example', 'x <x@gmail.example>', 'alice'), false, 'authenticated');
  const untrusting = { ...config, trust_authenticated: false };
  assert.equal(classify({ sender: 'x@gmail.example', authUser: 'alice' }, untrusting).external, true);
  assert.match(classify({ sender: 'x@gmail.example' }, config).reason, /envelope sender domain gmail.example/);
});

test('tags the subject once', () => {
  assert.equal(taggedSubject('Invoice', '[EXTERNAL]'), '[EXTERNAL] Invoice');
  assert.equal(taggedSubject('Re: [EXTERNAL] Invoice', '[EXTERNAL]'), undefined);
  assert.equal(taggedSubject('[external] x', '[EXTERNAL]'), undefined);
  assert.equal(taggedSubject(undefined, '[EXTERNAL]'), '[EXTERNAL]');
  assert.equal(taggedSubject('  ', '[EXTERNAL]'), '[EXTERNAL]');
});
