// The ISO end-to-end tests run on their own after the rest (npm test): they
// build the ISO and boot it in QEMU under TCG, each VM taking a whole core.
// One at a time: two guests at once starved GRUB's 3 s menu and the timings.
// The resume test (processes killed at random points, both cores busy for
// minutes) runs here too, so it does not starve the timed UI tests.
export default {
  files: ['out/test/resume.test.js', 'out/test/iso.test.js'],
  workerThreads: false,
  serial: true,
  timeout: '15m',
};
