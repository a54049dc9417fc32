// A minimal ISO 9660 volume in memory (primary volume descriptor, root, BOOT,
// BOOT/VMLINUZ;1), the shape xorriso gives the custos ISO: a valid start for
// the fuzz test's mutations. The end-to-end tests use real xorriso images.

const BLOCK = 2048;

function record(name: string, lba: number, size: number, directory: boolean): Buffer {
  const id = Buffer.from(name, 'latin1');
  const len = 33 + id.length + (id.length % 2 === 0 ? 1 : 0);
  const r = Buffer.alloc(len);
  r[0] = len;
  r.writeUInt32LE(lba, 2);
  r.writeUInt32BE(lba, 6);
  r.writeUInt32LE(size, 10);
  r.writeUInt32BE(size, 14);
  r[25] = directory ? 0x02 : 0;
  r[32] = id.length;
  id.copy(r, 33);
  return r;
}

/** A volume whose /boot/vmlinuz is `kernel`, labelled `volume` (CUSTOS for ours). */
export function miniIso(kernel: Buffer, volume = 'CUSTOS'): Buffer {
  const rootLba = 18;
  const bootLba = 19;
  const fileLba = 20;
  const total = fileLba + Math.ceil(kernel.length / BLOCK);
  const img = Buffer.alloc(total * BLOCK);
  const pvd = img.subarray(16 * BLOCK, 17 * BLOCK);
  pvd[0] = 1;
  pvd.write('CD001', 1, 'latin1');
  pvd[6] = 1;
  pvd.write(volume.padEnd(32, ' '), 40, 'latin1');
  pvd.writeUInt32LE(total, 80);
  pvd.writeUInt16LE(BLOCK, 128);
  record('\0', rootLba, BLOCK, true).copy(pvd, 156);
  const term = img.subarray(17 * BLOCK, 18 * BLOCK);
  term[0] = 255;
  term.write('CD001', 1, 'latin1');
  Buffer.concat([record('\0', rootLba, BLOCK, true), record('\x01', rootLba, BLOCK, true), record('BOOT', bootLba, BLOCK, true)]).copy(img, rootLba * BLOCK);
  Buffer.concat([record('\0', bootLba, BLOCK, true), record('\x01', rootLba, BLOCK, true), record('VMLINUZ.;1', fileLba, kernel.length, false)]).copy(
    img,
    bootLba * BLOCK,
  );
  kernel.copy(img, fileLba * BLOCK);
  return img;
}
