import { createHmac, randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { entryMatchesHost, knownHostsName, keyTypeOfBlob, parseKnownHosts, verifyHostKey } from '../../schedulers/known-hosts.js';

function blob(type: string, body: string): Buffer {
  const t = Buffer.from(type);
  const b = Buffer.from(body);
  const len = (n: number): Buffer => {
    const x = Buffer.alloc(4);
    x.writeUInt32BE(n);
    return x;
  };
  return Buffer.concat([len(t.length), t, len(b.length), b]);
}

const ED = blob('ssh-ed25519', 'key-one-32-bytes-xxxxxxxxxxxxxxx');
const ED2 = blob('ssh-ed25519', 'key-two-32-bytes-xxxxxxxxxxxxxxx');
const RSA = blob('ssh-rsa', 'rsa-key');

function hashed(name: string): string {
  const salt = randomBytes(20);
  return `|1|${salt.toString('base64')}|${createHmac('sha1', salt).update(name).digest('base64')}`;
}

describe('known_hosts', () => {
  it('reads the key type from a key blob and names non-22 ports in brackets', () => {
    expect(keyTypeOfBlob(ED)).toBe('ssh-ed25519');
    expect(knownHostsName('login1', 22)).toBe('login1');
    expect(knownHostsName('127.0.0.1', 2222)).toBe('[127.0.0.1]:2222');
  });

  it('matches the same key, refuses a changed key and an unknown host', () => {
    const entries = parseKnownHosts(`# comment\nlogin1,login2 ssh-ed25519 ${ED.toString('base64')}\n\n[127.0.0.1]:2222 ssh-ed25519 ${ED.toString('base64')}\n`);
    expect(verifyHostKey(entries, 'login2', 22, ED).verdict).toBe('match');
    expect(verifyHostKey(entries, 'login1', 22, ED2).verdict).toBe('mismatch');
    expect(verifyHostKey(entries, '127.0.0.1', 2222, ED).verdict).toBe('match');
    expect(verifyHostKey(entries, '127.0.0.1', 22, ED).verdict).toBe('unknown');
    expect(verifyHostKey(entries, 'login3', 22, ED).verdict).toBe('unknown');
  });

  it('compares only keys of the same type (another type alone is unknown, not changed)', () => {
    const entries = parseKnownHosts(`login1 ssh-rsa ${RSA.toString('base64')}`);
    expect(verifyHostKey(entries, 'login1', 22, ED).verdict).toBe('unknown');
    expect(verifyHostKey(entries, 'login1', 22, RSA).verdict).toBe('match');
  });

  it('understands hashed hosts, wildcards, negation and @revoked', () => {
    const entries = parseKnownHosts(
      [
        `${hashed('[10.0.0.5]:2200')} ssh-ed25519 ${ED.toString('base64')}`,
        `*.cluster.org,!evil.cluster.org ssh-ed25519 ${ED2.toString('base64')}`,
        `@revoked login9 ssh-ed25519 ${ED.toString('base64')}`,
        `@cert-authority *.x ssh-ed25519 ${ED.toString('base64')}`,
      ].join('\n'),
    );
    expect(verifyHostKey(entries, '10.0.0.5', 2200, ED).verdict).toBe('match');
    expect(verifyHostKey(entries, '10.0.0.5', 22, ED).verdict).toBe('unknown');
    expect(verifyHostKey(entries, 'node7.cluster.org', 22, ED2).verdict).toBe('match');
    expect(verifyHostKey(entries, 'evil.cluster.org', 22, ED2).verdict).toBe('unknown');
    expect(verifyHostKey(entries, 'login9', 22, ED).verdict).toBe('revoked');
    expect(entries).toHaveLength(3);
    expect(entryMatchesHost(entries[1]!, 'NODE1.CLUSTER.ORG')).toBe(true);
  });
});
