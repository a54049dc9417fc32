// A root shell inside a QEMU guest booted with custos.shell=ttyS1, reached
// through the unix socket behind that serial port: lets an ISO test act
// behind custos's back (clear a read-only flag) and read the guest's sysfs.
import net from 'node:net';

export class GuestShell {
  private buf = '';
  private seq = 0;
  private wake: (() => void) | null = null;

  private constructor(private readonly conn: net.Socket) {
    conn.on('data', (d: Buffer) => {
      this.buf += d.toString('latin1');
      this.wake?.();
    });
  }

  /** Connects once QEMU has made the socket; the shell itself comes up with the guest's init. */
  static async connect(socket: string, timeoutMs = 30_000): Promise<GuestShell> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      try {
        const conn = await new Promise<net.Socket>((resolve, reject) => {
          const c = net.createConnection(socket);
          c.once('connect', () => resolve(c));
          c.once('error', reject);
        });
        return new GuestShell(conn);
      } catch (e) {
        if (Date.now() > end) throw e;
        await new Promise((r) => setTimeout(r, 200));
      }
    }
  }

  /**
   * Runs one command line and returns its output. The end marker is written
   * split in the command ("__E""ND"), so the echoed command line never
   * matches it, only the shell's output does.
   */
  async run(command: string, timeoutMs = 60_000): Promise<string> {
    const n = ++this.seq;
    const marker = new RegExp(`__END_${n}__ (\\d+)`);
    const start = this.buf.length;
    this.conn.write(`${command}; echo "__E""ND_${n}__ $?"\n`);
    const end = Date.now() + timeoutMs;
    for (;;) {
      const out = this.buf.slice(start);
      const m = marker.exec(out);
      if (m) {
        // Drop everything up to the end of the echoed command line (it holds the split marker), and the marker.
        const body = out.slice(0, m.index);
        // The last echo: the line editor may draw the command line twice (typed before the prompt, then redrawn).
        const echoed = body.lastIndexOf(`"__E""ND_${n}__`);
        const lineEnd = echoed >= 0 ? body.indexOf('\n', echoed) : -1;
        return (lineEnd >= 0 ? body.slice(lineEnd + 1) : '').replace(/\r/g, '').trim();
      }
      if (Date.now() > end) throw new Error(`guest shell: no answer to ${JSON.stringify(command)}; got ${JSON.stringify(out.slice(-400))}`);
      await new Promise<void>((r) => {
        this.wake = r;
        setTimeout(r, 200);
      });
    }
  }

  /** Until the shell answers at all (it starts with the guest's init). */
  async ready(timeoutMs = 120_000): Promise<void> {
    const end = Date.now() + timeoutMs;
    for (;;) {
      try {
        await this.run('true', 5000);
        return;
      } catch (e) {
        if (Date.now() > end) throw e;
      }
    }
  }

  close(): void {
    this.conn.destroy();
  }
}
