// The ISO end-to-end tests (test/vm/) run on their own after the rest (npm test): they
// build the ISO and boot it in QEMU under TCG, each VM taking a whole core.
// One at a time: two guests at once starved GRUB's 3 s menu and the timings.
// The soak tests (test/soak/: processes killed at random points, both cores
// busy for minutes) run here too, so they do not starve the timed UI tests.
export default {
  files: ['out/test/soak/**/*.test.js', 'out/test/vm/**/*.test.js'],
  workerThreads: false,
  serial: true,
  timeout: '15m',
};
