// Reads an unencrypted OpenSSH ed25519 private key (openssh-key-v1) into a
// node:crypto key, for the golden test against ssh-keygen. Test-only.
import { createPrivateKey, type KeyObject } from 'node:crypto';
import { SshReader } from '../../appliance/custody/ssh-wire.js';

export function opensshEd25519(text: string): KeyObject {
  const b64 = text.replace(/-----[A-Z ]+-----/g, '').replace(/\s+/g, '');
  const r = new SshReader(Buffer.from(b64, 'base64'));
  if (r.raw(15).toString('latin1') !== 'openssh-key-v1\0') throw new Error('not openssh-key-v1');
  if (r.string().toString() !== 'none') throw new Error('encrypted keys are not supported here');
  r.string(); // kdf name
  r.string(); // kdf options
  if (r.uint32() !== 1) throw new Error('one key expected');
  r.string(); // public key
  const priv = new SshReader(r.string());
  if (priv.uint32() !== priv.uint32()) throw new Error('check bytes differ');
  priv.string(); // key type
  priv.string(); // public
  const secret = priv.string(); // seed || public, 64 bytes
  const pkcs8 = Buffer.concat([Buffer.from('302e020100300506032b657004220420', 'hex'), secret.subarray(0, 32)]);
  return createPrivateKey({ key: pkcs8, format: 'der', type: 'pkcs8' });
}
