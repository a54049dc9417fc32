// Examiner signing keys: Ed25519, the private half encrypted with a
// passphrase (PKCS#8, AES-256-CBC with PBKDF2, as node:crypto writes it), the
// public half as an OpenSSH line so stock ssh-keygen can check signatures.
import { createPrivateKey, generateKeyPairSync, type KeyObject } from 'node:crypto';
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CustosError, UsageError } from '../errors.js';
import { fingerprint, parsePublicKeyLine, publicKeyBlob, publicKeyLine } from './ssh-wire.js';

export interface SigningKey {
  privateKey: KeyObject;
  /** The allowed_signers principal (ssh-keygen -Y verify -I). */
  principal: string;
  fingerprint: string;
  publicLine: string;
  /** 'examiner': loaded from the examiner's key file; 'one-time': made for this acquisition and then forgotten. */
  kind: 'examiner' | 'one-time';
}

/**
 * An allowed_signers principal is one token (no spaces, no quotes, no commas,
 * no pattern characters): the examiner's name with everything else as '_'.
 */
export function principalFor(name: string): string {
  const p = name
    .normalize('NFC')
    .replace(/[^A-Za-z0-9._@+-]+/g, '_')
    .replace(/^_+|_+$/g, '')
    .slice(0, 64);
  return p || 'examiner';
}

export function keygen(dir: string, examiner: string, passphrase: string): { keyFile: string; pubFile: string; key: SigningKey } {
  if (passphrase.length < 8) throw new UsageError('the passphrase needs at least 8 characters');
  const base = path.join(dir, principalFor(examiner));
  const keyFile = `${base}.key`;
  const pubFile = `${base}.pub`;
  for (const f of [keyFile, pubFile]) if (existsSync(f)) throw new CustosError('EEXIST', `${f} exists; custos never overwrites a key`);
  const { privateKey } = generateKeyPairSync('ed25519');
  const pem = privateKey.export({ format: 'pem', type: 'pkcs8', cipher: 'aes-256-cbc', passphrase });
  const principal = principalFor(examiner);
  writeFileSync(keyFile, pem, { flag: 'wx', mode: 0o600 });
  writeFileSync(pubFile, publicKeyLine(privateKey, principal) + '\n', { flag: 'wx', mode: 0o644 });
  return { keyFile, pubFile, key: describe(privateKey, principal, 'examiner') };
}

/** Loads an examiner key; its principal comes from KEY.pub (written by keygen) or the examiner name. */
export function loadKey(keyFile: string, passphrase: string, examiner: string | null): SigningKey {
  let pem: Buffer;
  try {
    pem = readFileSync(keyFile);
  } catch (e) {
    throw new CustosError('ENOKEY', `cannot read key ${keyFile}: ${(e as { code?: string }).code ?? 'error'}`);
  }
  let privateKey: KeyObject;
  try {
    privateKey = createPrivateKey({ key: pem, format: 'pem', passphrase });
  } catch {
    throw new CustosError('EBADKEY', `cannot open key ${keyFile}: wrong passphrase or not a custos key`);
  }
  if (privateKey.asymmetricKeyType !== 'ed25519') throw new CustosError('EBADKEY', `${keyFile} is not an Ed25519 key`);
  let principal = examiner ? principalFor(examiner) : 'examiner';
  const pubFile = keyFile.replace(/\.key$/, '') + '.pub';
  if (!examiner && existsSync(pubFile)) {
    const pub = parsePublicKeyLine(readFileSync(pubFile, 'utf8'));
    if (!publicKeyBlob(pub.key).equals(publicKeyBlob(privateKey))) throw new CustosError('EBADKEY', `${pubFile} does not belong to ${keyFile}`);
    principal = principalFor(pub.comment);
  }
  return describe(privateKey, principal, 'examiner');
}

/** A key for one acquisition when the examiner has none; it lives only in memory. */
export function oneTimeKey(examiner: string | null): SigningKey {
  return describe(generateKeyPairSync('ed25519').privateKey, examiner ? principalFor(examiner) : 'examiner', 'one-time');
}

function describe(privateKey: KeyObject, principal: string, kind: SigningKey['kind']): SigningKey {
  return { privateKey, principal, fingerprint: fingerprint(publicKeyBlob(privateKey)), publicLine: publicKeyLine(privateKey, principal), kind };
}

/** One allowed_signers line: this principal may sign in the custos namespace with this key. */
export function allowedSignersLine(key: Pick<SigningKey, 'principal' | 'publicLine'>, namespace: string): string {
  const [type, b64] = key.publicLine.split(' ');
  return `${key.principal} namespaces="${namespace}" ${type} ${b64}`;
}
