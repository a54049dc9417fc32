import test from 'ava';
import { execa } from 'execa';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { canonicalJson } from '../../appliance/custody/jcs.js';
import { sshsigSign, sshsigVerify } from '../../appliance/custody/sshsig.js';
import { allowedSignersLine, keygen, loadKey, principalFor } from '../../appliance/custody/keys.js';
import { fingerprint, publicKeyBlob, publicKeyLine } from '../../appliance/custody/ssh-wire.js';
import { opensshEd25519 } from '../helpers/openssh-key.js';

const fixtures = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../test/fixtures/sshsig');
const tmp = () => mkdtempSync(path.join(os.tmpdir(), 'custos-sig-'));

test('golden: our SSHSIG is byte for byte what ssh-keygen -Y sign writes for the same key', async (t) => {
  const key = opensshEd25519(readFileSync(path.join(fixtures, 'test_ed25519'), 'utf8'));
  const message = readFileSync(path.join(fixtures, 'message.txt'));
  const ours = sshsigSign(message, key, 'custos');
  t.is(ours, readFileSync(path.join(fixtures, 'message.txt.sig.expected'), 'utf8'), 'committed golden signature');
  // And live, with this machine's OpenSSH.
  const dir = tmp();
  writeFileSync(path.join(dir, 'k'), readFileSync(path.join(fixtures, 'test_ed25519')), { mode: 0o600 });
  writeFileSync(path.join(dir, 'm'), message);
  await execa('ssh-keygen', ['-Y', 'sign', '-f', path.join(dir, 'k'), '-n', 'custos', path.join(dir, 'm')]);
  t.is(ours, readFileSync(path.join(dir, 'm.sig'), 'utf8'));
});

test('ssh-keygen -Y verify accepts our signature and allowed_signers; tampering, namespace and key swaps are rejected by both', async (t) => {
  const dir = tmp();
  const { privateKey } = generateKeyPairSync('ed25519');
  const key = { principal: principalFor('Dr. Jane Q. Examiner'), publicLine: publicKeyLine(privateKey, 'x') };
  t.is(key.principal, 'Dr._Jane_Q._Examiner');
  const msg = Buffer.from('{"case":"2026-117"}\n');
  writeFileSync(path.join(dir, 'allowed_signers'), allowedSignersLine(key, 'custos') + '\n');
  const sig = sshsigSign(msg, privateKey);
  writeFileSync(path.join(dir, 'm.sig'), sig);
  const sshVerify = (input: Buffer, ns = 'custos', who = key.principal) =>
    execa('ssh-keygen', ['-Y', 'verify', '-f', path.join(dir, 'allowed_signers'), '-I', who, '-n', ns, '-s', path.join(dir, 'm.sig')], {
      input,
      reject: false,
    });
  const good = await sshVerify(msg);
  t.is(good.exitCode, 0, good.stderr);
  t.regex(good.stdout, /Good "custos" signature for Dr\._Jane_Q\._Examiner/);
  t.true(sshsigVerify(msg, sig, 'custos', privateKey).ok);

  const flipped = Buffer.from(msg);
  flipped[3] = (flipped[3] as number) ^ 1;
  t.not((await sshVerify(flipped)).exitCode, 0);
  t.regex(String(sshsigVerify(flipped, sig).reason), /does not match/);
  t.not((await sshVerify(msg, 'file')).exitCode, 0);
  t.regex(String(sshsigVerify(msg, sig, 'file').reason), /namespace/);
  t.not((await sshVerify(msg, 'custos', 'someone-else')).exitCode, 0);
  // A valid signature by another key is not a signature by the recorded key.
  const other = generateKeyPairSync('ed25519').privateKey;
  const swapped = sshsigSign(msg, other);
  writeFileSync(path.join(dir, 'm.sig'), swapped);
  t.not((await sshVerify(msg)).exitCode, 0);
  const check = sshsigVerify(msg, swapped, 'custos', privateKey);
  t.false(check.ok);
  t.regex(String(check.reason), /not by the recorded key/);
  t.false(sshsigVerify(msg, 'garbage').ok);
});

test('RFC 8785 vectors: canonical JSON orders keys by UTF-16 units and writes numbers and strings as ECMAScript does', (t) => {
  t.is(
    canonicalJson({
      // RFC 8785's own vector: the literal is not exactly representable, which is what the test is about.
      // eslint-disable-next-line no-loss-of-precision
      numbers: [333333333.33333329, 1e30, 4.5, 0.002, 1e-27],
      string: '\u20ac$\u000f\u000aA\'\u0042\u0022\u005c\\"/',
      literals: [null, true, false],
    }),
    '{"literals":[null,true,false],"numbers":[333333333.3333333,1e+30,4.5,0.002,1e-27],"string":"€$\\u000f\\nA\'B\\"\\\\\\\\\\"/"}',
  );
  const sorted = canonicalJson({
    '\u20ac': 'Euro Sign',
    '\r': 'Carriage Return',
    '\ufb33': 'Hebrew Letter Dalet With Dagesh',
    '1': 'One',
    '\ud83d\ude00': 'Emoji: Grinning Face',
    '\u0080': 'Control',
    '\u00f6': 'Latin Small Letter O With Diaeresis',
  });
  t.is(
    sorted,
    '{"\\r":"Carriage Return","1":"One","\u0080":"Control","\u00f6":"Latin Small Letter O With Diaeresis","\u20ac":"Euro Sign","\ud83d\ude00":"Emoji: Grinning Face","\ufb33":"Hebrew Letter Dalet With Dagesh"}',
  );
  t.is(canonicalJson(-0), '0');
  t.is(canonicalJson({ b: undefined, a: [undefined] }), '{"a":[null]}');
  t.throws(() => canonicalJson({ x: Number.NaN }));
  t.throws(() => canonicalJson({ x: 1n }));
});

test('keygen: encrypted private key (0600), OpenSSH public line whose fingerprint ssh-keygen agrees with; wrong passphrase refused', async (t) => {
  const dir = tmp();
  const made = keygen(dir, 'Jane Examiner', 'correct horse battery');
  t.is(statSync(made.keyFile).mode & 0o777, 0o600);
  t.regex(readFileSync(made.keyFile, 'utf8'), /BEGIN ENCRYPTED PRIVATE KEY/);
  const l = await execa('ssh-keygen', ['-l', '-f', made.pubFile]);
  t.true(l.stdout.includes(made.key.fingerprint), l.stdout);
  const loaded = loadKey(made.keyFile, 'correct horse battery', null);
  t.is(loaded.fingerprint, made.key.fingerprint);
  t.is(loaded.principal, 'Jane_Examiner');
  t.is(fingerprint(publicKeyBlob(loaded.privateKey)), made.key.fingerprint);
  t.throws(() => loadKey(made.keyFile, 'wrong passphrase', null), { message: /wrong passphrase/ });
  t.throws(() => keygen(dir, 'Jane Examiner', 'correct horse battery'), { message: /never overwrites/ });
  t.throws(() => keygen(dir, 'Other', 'short'), { message: /at least 8/ });
});
