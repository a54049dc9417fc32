// The few pieces of the SSH wire format (RFC 4253 section 5) that SSHSIG and
// OpenSSH public keys need.
import { createHash, createPublicKey, type KeyObject } from 'node:crypto';

export function sshString(data: Buffer | string): Buffer {
  const bytes = typeof data === 'string' ? Buffer.from(data, 'utf8') : data;
  const len = Buffer.alloc(4);
  len.writeUInt32BE(bytes.length);
  return Buffer.concat([len, bytes]);
}

export function sshUint32(n: number): Buffer {
  const b = Buffer.alloc(4);
  b.writeUInt32BE(n);
  return b;
}

/** Reads SSH wire fields one after another, failing on any overrun. */
export class SshReader {
  private at = 0;
  constructor(private readonly buf: Buffer) {}
  raw(n: number): Buffer {
    if (this.at + n > this.buf.length) throw new Error('truncated SSH data');
    const out = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return out;
  }
  uint32(): number {
    return this.raw(4).readUInt32BE(0);
  }
  string(): Buffer {
    return this.raw(this.uint32());
  }
  get done(): boolean {
    return this.at === this.buf.length;
  }
}

export const ED25519 = 'ssh-ed25519';
// DER prefix of an Ed25519 SubjectPublicKeyInfo, followed by the 32-byte key.
const SPKI_ED25519_PREFIX = Buffer.from('302a300506032b6570032100', 'hex');

/** The 32 raw bytes of an Ed25519 public key. */
export function rawEd25519(key: KeyObject): Buffer {
  const pub = key.type === 'public' ? key : createPublicKey(key);
  const der = pub.export({ format: 'der', type: 'spki' });
  if (der.length !== 44 || !der.subarray(0, 12).equals(SPKI_ED25519_PREFIX)) throw new Error('not an Ed25519 key');
  return der.subarray(12);
}

export function ed25519FromRaw(raw: Buffer): KeyObject {
  if (raw.length !== 32) throw new Error('an Ed25519 public key has 32 bytes');
  return createPublicKey({ key: Buffer.concat([SPKI_ED25519_PREFIX, raw]), format: 'der', type: 'spki' });
}

/** string("ssh-ed25519") || string(key): the key blob OpenSSH prints and fingerprints. */
export function publicKeyBlob(key: KeyObject): Buffer {
  return Buffer.concat([sshString(ED25519), sshString(rawEd25519(key))]);
}

/** As `ssh-keygen -l` shows it: SHA256: and unpadded base64. */
export function fingerprint(blob: Buffer): string {
  return 'SHA256:' + createHash('sha256').update(blob).digest('base64').replace(/=+$/, '');
}

/** The OpenSSH public key line: `ssh-ed25519 AAAA... comment`. */
export function publicKeyLine(key: KeyObject, comment: string): string {
  return `${ED25519} ${publicKeyBlob(key).toString('base64')}${comment ? ' ' + comment : ''}`;
}

/** Parses an OpenSSH ssh-ed25519 public key line. */
export function parsePublicKeyLine(line: string): { key: KeyObject; comment: string } {
  const [type, b64, ...rest] = line.trim().split(/\s+/);
  if (type !== ED25519 || !b64) throw new Error('not an ssh-ed25519 public key line');
  const r = new SshReader(Buffer.from(b64, 'base64'));
  if (r.string().toString() !== ED25519) throw new Error('key blob is not ssh-ed25519');
  const key = ed25519FromRaw(r.string());
  return { key, comment: rest.join(' ') };
}
