// Passphrases: from CUSTOS_PASSPHRASE for scripted runs, else typed on the
// terminal without echo. Never from a command-line argument (ps would show it).
import { UsageError } from '../errors.js';

export async function readPassphrase(prompt: string): Promise<string> {
  const env = process.env['CUSTOS_PASSPHRASE'];
  if (env !== undefined) return env;
  const stdin = process.stdin;
  if (!stdin.isTTY) throw new UsageError('a passphrase is needed: type it on a terminal, or set CUSTOS_PASSPHRASE');
  process.stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.resume();
  try {
    return await new Promise<string>((resolve, reject) => {
      let text = '';
      const onData = (chunk: Buffer) => {
        for (const ch of chunk.toString('utf8')) {
          if (ch === '\r' || ch === '\n') {
            stdin.off('data', onData);
            process.stderr.write('\n');
            resolve(text);
            return;
          }
          if (ch === '\u0003') {
            stdin.off('data', onData);
            reject(new UsageError('cancelled'));
            return;
          }
          if (ch === '\u007f' || ch === '\b') text = text.slice(0, -1);
          else text += ch;
        }
      };
      stdin.on('data', onData);
    });
  } finally {
    stdin.setRawMode(false);
    stdin.pause();
  }
}
