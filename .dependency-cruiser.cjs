// Architecture rules, checked by `npm test` (npm run lint:deps). A file's folder says
// what it may import: the stages of the data path depend only on earlier ones, and the
// UI only renders and asks. Type-only imports count too (tsPreCompilationDeps).
module.exports = {
  forbidden: [
    { name: 'no-circular', severity: 'error', comment: 'no import cycles, type-only ones included', from: {}, to: { circular: true } },
    {
      name: 'tui-no-device-io',
      severity: 'error',
      comment: 'the UI reaches devices only through the core (inventory, guardian, run-acquisition): no native addon, no raw sysfs or block I/O',
      from: { path: '^tui/' },
      to: { path: '^appliance/(native\\.ts|disk/(block-device|sysfs|vpd|kernel-stat|mountinfo|device-identity|transport|stable-id)\\.ts)' },
    },
    {
      name: 'disk-first',
      severity: 'error',
      comment: 'finding disks depends on no later stage',
      from: { path: '^appliance/disk/' },
      to: { path: '^(appliance/(writeblock|imaging|custody|commands)/|tui/)' },
    },
    {
      name: 'writeblock-before-imaging',
      severity: 'error',
      comment: 'write-block depends on finding disks only',
      from: { path: '^appliance/writeblock/' },
      to: { path: '^(appliance/(imaging|custody|commands)/|tui/)' },
    },
    {
      name: 'imaging-no-ui',
      severity: 'error',
      comment: 'the engine knows no UI and no CLI verb',
      from: { path: '^appliance/(imaging|custody|disk|writeblock)/' },
      to: { path: '^(tui/|appliance/commands/)' },
    },
  ],
  options: {
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.json' },
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '^(node_modules|out|build)/' },
  },
};
