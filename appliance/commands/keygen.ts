// `custos keygen`: the examiner's signing key (OpenSSH Ed25519), passphrase-protected.
import { statSync } from 'node:fs';
import { UsageError } from '../errors.js';
import { keygen } from '../custody/keys.js';
import { readPassphrase } from './passphrase.js';

/** custos keygen --out DIR --examiner NAME: an examiner key pair for signing custody records. */
export async function keygenCommand(a: { out: string | undefined; examiner: string | undefined; json: boolean }): Promise<number> {
  if (!a.out) throw new UsageError('keygen needs --out DIR (e.g. the custody USB)');
  if (!a.examiner) throw new UsageError('keygen needs --examiner NAME');
  let isDir = false;
  try {
    isDir = statSync(a.out).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new UsageError(`--out ${a.out} is not a directory`);
  const pass = await readPassphrase('passphrase for the new key: ');
  if (process.env['CUSTOS_PASSPHRASE'] === undefined) {
    const again = await readPassphrase('again: ');
    if (again !== pass) throw new UsageError('the passphrases differ; nothing written');
  }
  const made = keygen(a.out, a.examiner, pass);
  const out = {
    keyFile: made.keyFile,
    publicKeyFile: made.pubFile,
    principal: made.key.principal,
    fingerprint: made.key.fingerprint,
    publicKey: made.key.publicLine,
  };
  if (a.json) process.stdout.write(JSON.stringify(out, null, 2) + '\n');
  else
    process.stdout.write(
      `private key  ${made.keyFile} (encrypted)\npublic key   ${made.pubFile}\nprincipal    ${made.key.principal}\nfingerprint  ${made.key.fingerprint}\n`,
    );
  return 0;
}
