// A minimal QMP client (QEMU's JSON monitor) over its unix socket: enough to
// hot-plug a disk into a running VM as an examiner would plug in a USB stick.
import net from 'node:net';

export async function qmp(socket: string, commands: object[]): Promise<unknown[]> {
  const conn = net.createConnection(socket);
  const replies: unknown[] = [];
  let buf = '';
  const lines: string[] = [];
  let wake: (() => void) | null = null;
  conn.on('data', (d) => {
    buf += d.toString();
    let i: number;
    while ((i = buf.indexOf('\n')) >= 0) {
      lines.push(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
    wake?.();
  });
  const next = async (): Promise<Record<string, unknown>> => {
    for (;;) {
      const line = lines.shift();
      if (line !== undefined) {
        const msg = JSON.parse(line) as Record<string, unknown>;
        if ('event' in msg) continue;
        return msg;
      }
      await new Promise<void>((r) => (wake = r));
    }
  };
  await new Promise<void>((resolve, reject) => {
    conn.once('connect', resolve);
    conn.once('error', reject);
  });
  await next(); // greeting
  for (const c of [{ execute: 'qmp_capabilities' }, ...commands]) {
    conn.write(JSON.stringify(c) + '\n');
    const reply = await next();
    if ('error' in reply) throw new Error(`QMP ${JSON.stringify(c)}: ${JSON.stringify(reply['error'])}`);
    replies.push(reply['return']);
  }
  conn.end();
  return replies.slice(1);
}
