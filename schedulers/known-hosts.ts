/**
 * OpenSSH known_hosts matching, so the SSH executor verifies login nodes the way `ssh` does with
 * StrictHostKeyChecking=yes: a host with no known key is refused, a changed key is refused.
 *
 * Supported: plain and comma-separated host patterns, `*` and `?` wildcards, `!` negation,
 * `[host]:port` for non-22 ports, hashed entries (`|1|salt|hmac`), `@revoked` markers. Lines with
 * `@cert-authority` are ignored (certificates are not supported).
 */
import { createHmac } from 'node:crypto';

export interface KnownHostEntry {
  patterns: string[];
  keyType: string;
  /** Base64 of the public key blob, as written in the file. */
  keyBase64: string;
  revoked: boolean;
}

export type HostKeyVerdict =
  | { verdict: 'match' }
  | { verdict: 'revoked' }
  | { verdict: 'mismatch'; knownTypes: string[] }
  | { verdict: 'unknown' };

/** Parse the text of a known_hosts file. Malformed lines are skipped, as ssh does. */
export function parseKnownHosts(text: string): KnownHostEntry[] {
  const entries: KnownHostEntry[] = [];
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#')) continue;
    const fields = line.split(/\s+/);
    let revoked = false;
    if (fields[0]?.startsWith('@')) {
      const marker = fields.shift();
      if (marker === '@revoked') revoked = true;
      else continue;
    }
    const [hosts, keyType, keyBase64] = fields;
    if (hosts === undefined || keyType === undefined || keyBase64 === undefined) continue;
    entries.push({ patterns: hosts.split(','), keyType, keyBase64, revoked });
  }
  return entries;
}

/** The name a host has in known_hosts: `host` on port 22, `[host]:port` otherwise. */
export function knownHostsName(host: string, port: number): string {
  return port === 22 ? host : `[${host}]:${port}`;
}

function wildcardMatch(pattern: string, name: string): boolean {
  const re = new RegExp(`^${pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.')}$`, 'i');
  return re.test(name);
}

function hashedMatch(pattern: string, name: string): boolean {
  const parts = pattern.split('|');
  // |1|salt|hash → ['', '1', salt, hash]
  if (parts.length !== 4 || parts[1] !== '1' || parts[2] === undefined || parts[3] === undefined) return false;
  const salt = Buffer.from(parts[2], 'base64');
  const digest = createHmac('sha1', salt).update(name).digest('base64');
  return digest === parts[3];
}

/** True when the entry's host patterns select `name` (a negated match wins over any other). */
export function entryMatchesHost(entry: KnownHostEntry, name: string): boolean {
  let matched = false;
  for (const pattern of entry.patterns) {
    if (pattern.startsWith('|')) {
      if (hashedMatch(pattern, name)) matched = true;
    } else if (pattern.startsWith('!')) {
      if (wildcardMatch(pattern.slice(1), name)) return false;
    } else if (wildcardMatch(pattern, name)) {
      matched = true;
    }
  }
  return matched;
}

/** The key type named inside an SSH public key blob (its first string). */
export function keyTypeOfBlob(blob: Buffer): string {
  if (blob.length < 4) return '';
  const len = blob.readUInt32BE(0);
  return blob.subarray(4, 4 + len).toString('latin1');
}

/**
 * Judge a host key the server presented. Only entries of the same key type are compared, as
 * OpenSSH does; an entry of another type alone makes the key `unknown`, not `mismatch`.
 */
export function verifyHostKey(entries: readonly KnownHostEntry[], host: string, port: number, blob: Buffer): HostKeyVerdict {
  const names = [knownHostsName(host, port)];
  const keyBase64 = blob.toString('base64');
  const type = keyTypeOfBlob(blob);
  const forHost = entries.filter((e) => names.some((n) => entryMatchesHost(e, n)));
  if (forHost.some((e) => e.revoked && e.keyBase64 === keyBase64)) return { verdict: 'revoked' };
  const sameType = forHost.filter((e) => !e.revoked && e.keyType === type);
  if (sameType.some((e) => e.keyBase64 === keyBase64)) return { verdict: 'match' };
  if (sameType.length > 0) return { verdict: 'mismatch', knownTypes: [type] };
  return { verdict: 'unknown' };
}

/** Host key algorithms that produce keys of this known_hosts key type. */
export function algorithmsForKeyType(keyType: string): string[] {
  return keyType === 'ssh-rsa' ? ['rsa-sha2-512', 'rsa-sha2-256', 'ssh-rsa'] : [keyType];
}

/** Key types known for the host, so the client can ask for those algorithms first. */
export function knownKeyTypes(entries: readonly KnownHostEntry[], host: string, port: number): string[] {
  const name = knownHostsName(host, port);
  return [...new Set(entries.filter((e) => !e.revoked && entryMatchesHost(e, name)).map((e) => e.keyType))];
}
