// The ISO end-to-end tests run on their own after the rest (npm test): they
// build the ISO and boot it in QEMU under TCG, each VM taking a whole core.
// One at a time: two guests at once starved GRUB's 3 s menu and the timings.
export default {
  files: ['out/test/iso.test.js'],
  workerThreads: false,
  serial: true,
  timeout: '15m',
};
