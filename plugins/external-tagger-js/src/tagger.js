// The decisions of external-tagger, as plain functions with no host imports, so that
// `node --test` runs them without a server (see test/tagger.test.js).

/** Defaults of the `[plugin.config]` keys. */
export const DEFAULTS = Object.freeze({
  internal_domains: [],
  prefix: '[EXTERNAL]',
  trust_authenticated: true,
});

/**
 * Reads the plugin's config through `get(path)`, the WIT `config.get`: it returns
 * undefined or a variant such as `{ tag: 'text', val: 'x' }`, `{ tag: 'array', val: 3 }`
 * (elements at path + ['0'], ['1'], ...) or `{ tag: 'table', val: ['key', ...] }`.
 * Bad values fall back to the defaults; each problem is returned in `warnings`.
 */
export function readConfig(get) {
  const warnings = [];
  const config = { ...DEFAULTS, internal_domains: [] };

  const domains = get(['internal_domains']);
  const texts = [];
  if (domains === undefined) {
    warnings.push('internal_domains is not set: every sender is external');
  } else if (domains.tag === 'text') {
    texts.push(domains.val);
  } else if (domains.tag === 'array') {
    for (let i = 0; i < domains.val; i++) {
      const item = get(['internal_domains', String(i)]);
      if (item?.tag === 'text') texts.push(item.val);
      else warnings.push(`internal_domains[${i}]: expected a string; skipped`);
    }
  } else {
    warnings.push(`internal_domains: expected a list of domains, got ${domains.tag}; ignored`);
  }
  for (const text of texts) {
    const pattern = normalizeDomain(text);
    if (isDomainPattern(pattern)) config.internal_domains.push(pattern);
    else warnings.push(`internal_domains: ${JSON.stringify(text)} is not a domain pattern; skipped`);
  }

  const prefix = get(['prefix']);
  if (prefix !== undefined) {
    if (prefix.tag === 'text' && prefix.val.trim() !== '' && !/[\r\n]/.test(prefix.val)) {
      config.prefix = prefix.val.trim();
    } else {
      warnings.push(`prefix: expected a non-empty one-line string; using ${DEFAULTS.prefix}`);
    }
  }

  const trust = get(['trust_authenticated']);
  if (trust !== undefined) {
    if (trust.tag === 'boolean') config.trust_authenticated = trust.val;
    else warnings.push('trust_authenticated: expected true or false; using true');
  }
  return { config, warnings };
}

/** Lower case, no surrounding space, no trailing dot. */
export function normalizeDomain(domain) {
  return String(domain).trim().replace(/\.$/, '').toLowerCase();
}

// Letters, digits, '-' and '_'; any non-ASCII character for IDNs as written. (No \p{L}:
// the StarlingMonkey engine is built without Unicode property tables.)
const LABEL = /^(?:[a-z0-9_-]|[^\x00-\x7f]){1,63}$/i;

/** `example.com` or `*.example.com` (subdomains only), as in the server's config. */
export function isDomainPattern(pattern) {
  const name = pattern.startsWith('*.') ? pattern.slice(2) : pattern;
  return name.length > 0 && name.length <= 253 && name.split('.').every((label) => LABEL.test(label));
}

/** Whether `domain` matches one of the patterns. */
export function isInternalDomain(domain, patterns) {
  const d = normalizeDomain(domain);
  return patterns.some((p) => (p.startsWith('*.') ? d.endsWith(p.slice(1)) : d === p));
}

/** The domain of `local@domain`, or undefined (null sender, `postmaster`). */
export function domainOf(address) {
  const at = String(address ?? '').lastIndexOf('@');
  if (at <= 0 || at === address.length - 1) return undefined;
  return normalizeDomain(address.slice(at + 1));
}

/**
 * The address in a `From:` value: the one in angle brackets, else the first word with
 * an `@`. Quoted display names are skipped, so `"ceo@example.com" <x@evil.example>`
 * yields `x@evil.example`.
 */
export function fromAddress(value) {
  if (!value) return undefined;
  const unquoted = value.replace(/"(?:[^"\\]|\\.)*"/g, '""');
  const angle = /<([^<>]*)>/.exec(unquoted);
  if (angle) return angle[1].trim();
  return unquoted.split(/[\s,]+/).find((word) => word.includes('@'));
}

/**
 * Whether the message comes from outside. Internal means: an authenticated client
 * (with `trust_authenticated`), or an envelope sender and a `From:` whose domains are
 * all internal (the null sender of a bounce does not count; at least one must be
 * known). Both are easy to forge, so this tags what claims to be external, and a
 * spoofed internal sender is for SPF/DMARC checks earlier in the chain to stop.
 */
export function classify({ sender, from, authUser }, config) {
  if (config.trust_authenticated && authUser) {
    return { external: false, reason: `authenticated as ${authUser}` };
  }
  const domains = [
    ['envelope sender', domainOf(sender)],
    ['From', domainOf(fromAddress(from))],
  ].filter(([, domain]) => domain !== undefined);
  if (domains.length === 0) return { external: true, reason: 'no sender domain' };
  const outside = domains.find(([, domain]) => !isInternalDomain(domain, config.internal_domains));
  if (outside) return { external: true, reason: `${outside[0]} domain ${outside[1]} is not internal` };
  return { external: false, reason: 'internal sender' };
}

/** The tagged subject, or undefined if it already carries the prefix. */
export function taggedSubject(subject, prefix) {
  const current = (subject ?? '').trim();
  if (current.toLowerCase().includes(prefix.toLowerCase())) return undefined;
  return current === '' ? prefix : `${prefix} ${current}`;
}
