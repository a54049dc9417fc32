// The ISO end-to-end test runs on its own after the rest (npm test): it builds
// the ISO and boots it in QEMU, which takes both cores for about two minutes.
export default {
  files: ['out/test/iso.test.js'],
  workerThreads: false,
  timeout: '15m',
};
