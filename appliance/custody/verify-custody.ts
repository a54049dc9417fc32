// The checks `custos verify` makes on a custody record, before the image:
// the record's signature, the log's chain and signature, and that the record
// names the log's last line. Each check is one verdict naming what failed.
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { ALLOWED_SIGNERS_FILE, CUSTODY_FILE, SIG_SUFFIX, type CustodyRecord } from './custody-record.js';
import { LOG_FILE } from './event-log.js';
import type { KeyObject } from 'node:crypto';
import { checkLog, type LogCheck } from './log-check.js';
import { parsePublicKeyLine, publicKeyBlob } from './ssh-wire.js';
import { sshsigVerify } from './sshsig.js';

export interface Verdict {
  check: string;
  ok: boolean;
  detail: string;
}

function read(file: string): Buffer | null {
  try {
    return readFileSync(file);
  } catch {
    return null;
  }
}

/**
 * The last checkpoint whose log prefix (lines 1..index+1) the signature covers,
 * for a log signed at a checkpoint and then extended or cut off.
 */
function signedCheckpoint(log: Buffer, chain: LogCheck, armored: string, namespace: string, key: KeyObject): number | null {
  for (let i = chain.entries.length - 1; i >= 0; i--) {
    if (chain.entries[i]?.type !== 'checkpoint') continue;
    if (sshsigVerify(log.subarray(0, chain.prefixBytes[i]), armored, namespace, key).ok) return i;
  }
  return null;
}

export function verifyCustody(dir: string, bytes: Buffer, record: CustodyRecord): Verdict[] {
  const out: Verdict[] = [];
  const at = (f: string) => path.join(dir, f);
  let key;
  try {
    key = parsePublicKeyLine(record.signer.publicKey).key;
  } catch {
    return [{ check: 'signer', ok: false, detail: `${CUSTODY_FILE}: signer.publicKey is not an ssh-ed25519 key` }];
  }
  const fp = record.signer.fingerprint;

  // 1. The record's own signature, by the key the record names.
  const recSig = read(at(CUSTODY_FILE + SIG_SUFFIX));
  if (!recSig) out.push({ check: 'record signature', ok: false, detail: `${CUSTODY_FILE}${SIG_SUFFIX} is missing` });
  else {
    const c = sshsigVerify(bytes, recSig.toString('utf8'), record.signer.namespace, key);
    out.push({
      check: 'record signature',
      ok: c.ok,
      detail: c.ok ? `${CUSTODY_FILE} signed by ${record.signer.principal} ${fp}` : `${CUSTODY_FILE}${SIG_SUFFIX}: ${c.reason}`,
    });
  }

  // 2. allowed_signers (what ssh-keygen trusts) names the same key for the same principal.
  const allowed = read(at(ALLOWED_SIGNERS_FILE));
  const line = allowed?.toString('utf8').trim() ?? '';
  const [principal, , ...keyPart] = line.split(/\s+/);
  let sameKey = false;
  try {
    sameKey = publicKeyBlob(parsePublicKeyLine(keyPart.join(' ')).key).equals(publicKeyBlob(key));
  } catch {
    sameKey = false;
  }
  out.push({
    check: 'allowed_signers',
    ok: allowed !== null && sameKey && principal === record.signer.principal,
    detail:
      allowed === null
        ? `${ALLOWED_SIGNERS_FILE} is missing`
        : sameKey && principal === record.signer.principal
          ? `${ALLOWED_SIGNERS_FILE} names ${principal} with ${fp}`
          : `${ALLOWED_SIGNERS_FILE} does not name the record's signer and key`,
  });

  // 3. The log's chain, line by line.
  const log = read(at(LOG_FILE));
  if (!log) {
    out.push({ check: 'log chain', ok: false, detail: `${LOG_FILE} is missing` });
    return out;
  }
  const chain = checkLog(log);
  out.push({
    check: 'log chain',
    ok: chain.ok,
    detail: chain.ok ? `${chain.entries.length} entries, every prev and seq in order, sealed` : chain.problems.join('; '),
  });

  // 4. The log's signature: over the whole log, else over the prefix up to a signed checkpoint.
  const logSig = read(at(LOG_FILE + SIG_SUFFIX));
  if (!logSig) out.push({ check: 'log signature', ok: false, detail: `${LOG_FILE}${SIG_SUFFIX} is missing` });
  else {
    const whole = sshsigVerify(log, logSig.toString('utf8'), record.signer.namespace, key);
    if (whole.ok) out.push({ check: 'log signature', ok: true, detail: `${LOG_FILE} signed by ${record.signer.principal} ${fp}` });
    else {
      const signed = signedCheckpoint(log, chain, logSig.toString('utf8'), record.signer.namespace, key);
      out.push({
        check: 'log signature',
        ok: false,
        detail:
          signed !== null
            ? `${LOG_FILE}${SIG_SUFFIX} covers only lines 1-${signed + 1} (checkpoint); lines ${signed + 2}-${chain.prefixBytes.length} are not signed`
            : `${LOG_FILE}${SIG_SUFFIX}: ${whole.reason}`,
      });
    }
  }

  // 5. The record names the log's last line: a log cut short or extended no longer matches.
  const head = chain.lineHashes[chain.lineHashes.length - 1] ?? '';
  const match = record.log.entries === chain.lineHashes.length && record.log.head === head;
  out.push({
    check: 'record names log head',
    ok: match,
    detail: match
      ? `${record.log.entries} entries, head ${head}`
      : `${CUSTODY_FILE} says ${record.log.entries} entries with head ${record.log.head}; ${LOG_FILE} has ${chain.lineHashes.length} with head ${head || '-'}`,
  });
  if (!existsSync(at(CUSTODY_FILE))) out.push({ check: 'record', ok: false, detail: `${CUSTODY_FILE} is missing` });
  return out;
}

/** For a run killed before it sealed: checks only what a crash leaves (the log and its last signed checkpoint). */
export function verifyInterruptedLog(dir: string): Verdict[] {
  const log = read(path.join(dir, LOG_FILE));
  if (!log) return [{ check: 'log', ok: false, detail: `${path.join(dir, LOG_FILE)} is missing` }];
  const chain = checkLog(log);
  const complete = chain.problems.filter((p) => !p.includes('no seal entry') && !p.includes('incomplete line'));
  const out: Verdict[] = [
    {
      check: 'log chain',
      ok: complete.length === 0,
      detail:
        complete.length === 0
          ? `${chain.entries.length} complete entries chain correctly${chain.partialTail ? ' (plus one cut off mid-line)' : ''}`
          : complete.join('; '),
    },
  ];
  // The signature file is the latest run's: a resumed run signs with its own key, named in its custody-resumed entry.
  type Signer = { publicKey?: string; namespace?: string; fingerprint?: string };
  const opened = [...chain.entries].reverse().find((e) => e.type === 'custody-opened' || e.type === 'custody-resumed');
  const signer =
    opened?.type === 'custody-resumed'
      ? (opened.data.data as { signer?: Signer } | undefined)?.signer
      : (opened?.data as { signer?: Signer } | undefined)?.signer;
  const sig = read(path.join(dir, LOG_FILE + SIG_SUFFIX));
  if (!signer?.publicKey || !sig) {
    out.push({ check: 'log signature', ok: false, detail: !sig ? `${LOG_FILE}${SIG_SUFFIX} is missing` : 'the first entry names no signer' });
    return out;
  }
  const key = parsePublicKeyLine(signer.publicKey).key;
  const signed = signedCheckpoint(log, chain, sig.toString('utf8'), signer.namespace ?? 'custos', key);
  out.push({
    check: 'log signature',
    ok: signed !== null,
    detail:
      signed !== null
        ? `lines 1-${signed + 1} signed at a checkpoint by ${signer.fingerprint ?? '?'}; ${chain.entries.length - signed - 1} later line(s) unsigned`
        : 'no signed checkpoint matches the log',
  });
  out.push({ check: 'record', ok: false, detail: `no ${CUSTODY_FILE}: the acquisition was interrupted before it finished` });
  return out;
}
