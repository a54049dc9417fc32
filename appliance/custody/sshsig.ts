// OpenSSH SSHSIG signatures (PROTOCOL.sshsig) with Ed25519, from node:crypto
// only, so that `ssh-keygen -Y verify` checks them with stock OpenSSH.
import { createHash, sign, verify, type KeyObject } from 'node:crypto';
import { ED25519, SshReader, ed25519FromRaw, fingerprint, publicKeyBlob, sshString, sshUint32 } from './ssh-wire.js';

export const SSHSIG_NAMESPACE = 'custos';
const MAGIC = Buffer.from('SSHSIG');
const HASH = 'sha512';
const BEGIN = '-----BEGIN SSH SIGNATURE-----';
const END = '-----END SSH SIGNATURE-----';

/** What Ed25519 signs: the magic, namespace, reserved, hash name and H(message). */
function signedData(message: Buffer, namespace: string): Buffer {
  const digest = createHash(HASH).update(message).digest();
  return Buffer.concat([MAGIC, sshString(namespace), sshString(''), sshString(HASH), sshString(digest)]);
}

/** Signs `message`; returns the armored signature exactly as `ssh-keygen -Y sign` writes it. */
export function sshsigSign(message: Buffer, privateKey: KeyObject, namespace = SSHSIG_NAMESPACE): string {
  if (!namespace) throw new Error('SSHSIG needs a namespace');
  const sig = sign(null, signedData(message, namespace), privateKey);
  const blob = Buffer.concat([
    MAGIC,
    sshUint32(1),
    sshString(publicKeyBlob(privateKey)),
    sshString(namespace),
    sshString(''),
    sshString(HASH),
    sshString(Buffer.concat([sshString(ED25519), sshString(sig)])),
  ]);
  const b64 = blob.toString('base64');
  const lines: string[] = [];
  for (let i = 0; i < b64.length; i += 70) lines.push(b64.slice(i, i + 70));
  return `${BEGIN}\n${lines.join('\n')}\n${END}\n`;
}

export interface SshsigCheck {
  ok: boolean;
  /** Why it failed, for the verdict line. */
  reason: string | null;
  /** Fingerprint of the key inside the signature (valid or not). */
  fingerprint: string | null;
  publicKey: KeyObject | null;
}

/**
 * Checks an armored SSHSIG over `message` in `namespace`. With `trusted`, the
 * key in the signature must also be that key (a signature made with another
 * key is rejected even if it is mathematically valid).
 */
export function sshsigVerify(message: Buffer, armored: string, namespace = SSHSIG_NAMESPACE, trusted?: KeyObject): SshsigCheck {
  const fail = (reason: string, fp: string | null = null, pk: KeyObject | null = null): SshsigCheck => ({ ok: false, reason, fingerprint: fp, publicKey: pk });
  const text = armored.trim();
  if (!text.startsWith(BEGIN) || !text.endsWith(END)) return fail('not an armored SSH signature');
  let r: SshReader;
  try {
    // Strict base64, as ssh-keygen reads it: Node's decoder would skip stray characters and ignore padding bits.
    const b64 = text.slice(BEGIN.length, text.length - END.length).replace(/\s+/g, '');
    const blob = Buffer.from(b64, 'base64');
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(b64) || blob.toString('base64') !== b64) return fail('signature is not valid base64');
    r = new SshReader(blob);
    if (!r.raw(6).equals(MAGIC)) return fail('bad SSHSIG magic');
    if (r.uint32() !== 1) return fail('unsupported SSHSIG version');
    const pkr = new SshReader(r.string());
    if (pkr.string().toString() !== ED25519) return fail('signature key is not Ed25519');
    const pk = ed25519FromRaw(pkr.string());
    const fp = fingerprint(publicKeyBlob(pk));
    const ns = r.string().toString();
    r.string(); // reserved
    const hash = r.string().toString();
    const sr = new SshReader(r.string());
    if (!r.done) return fail('trailing data after signature', fp, pk);
    if (sr.string().toString() !== ED25519) return fail('signature is not Ed25519', fp, pk);
    const sig = sr.string();
    if (ns !== namespace) return fail(`namespace is "${ns}", expected "${namespace}"`, fp, pk);
    if (hash !== HASH) return fail(`hash ${hash} not supported`, fp, pk);
    if (trusted && !publicKeyBlob(trusted).equals(publicKeyBlob(pk)))
      return fail(`signed by ${fp}, not by the recorded key ${fingerprint(publicKeyBlob(trusted))}`, fp, pk);
    if (!verify(null, signedData(message, namespace), pk, sig)) return fail('signature does not match the content', fp, pk);
    return { ok: true, reason: null, fingerprint: fp, publicKey: pk };
  } catch (e) {
    return fail(`malformed signature: ${e instanceof Error ? e.message : String(e)}`);
  }
}
