// Lint: the layering rules. The lifecycle machine, the event schemas and the
// plan are pure: they never reach Docker, Redis, the file system or the
// effects that do (src/effects). The CLI reaches Docker only through
// attach and doctor's probe.
import tseslint from 'typescript-eslint';

const io = [
  'dockerode',
  'ioredis',
  'bullmq',
  'node:fs',
  'fs',
  'node:fs/promises',
  'fs/promises',
  'node:child_process',
  'child_process',
  'node:net',
  'net',
  'node:http',
  'http',
  'node:https',
  'https',
];
const pureLayer = (extra = []) => ({
  'no-restricted-imports': [
    'error',
    {
      paths: io.map((name) => ({ name, message: 'this layer is pure: no I/O' })),
      patterns: [
        { group: ['**/effects/**', '**/effects'], message: 'this layer is pure: it never imports effects' },
        { group: ['**/worker/**'], message: 'this layer is pure: it never imports the worker' },
        ...extra,
      ],
    },
  ],
});

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'vendor/**', '.bottle-test/**'] },
  {
    files: ['src/**/*.ts'],
    languageOptions: { parser: tseslint.parser },
  },
  { files: ['src/machines/**/*.ts'], rules: pureLayer() },
  { files: ['src/plan/**/*.ts'], rules: pureLayer() },
  {
    files: ['src/events/**/*.ts'],
    rules: pureLayer([{ group: ['**/machines/**', '**/machines'], message: 'events do not import the machine' }]),
  },
  {
    // The event store (Redis streams) reads and appends events; it knows neither the machine nor the effects.
    files: ['src/event-store/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            { group: ['**/machines/**', '**/machines'], message: 'the event store does not import the machine' },
            { group: ['**/effects/**', '**/effects'], message: 'the event store does not import effects' },
          ],
        },
      ],
    },
  },
  {
    files: ['src/cli/**/*.ts'],
    // attach and doctor's probe are the CLI's Docker.
    ignores: ['src/cli/attach.ts', 'src/cli/docker-probe.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          paths: [{ name: 'dockerode', message: "the CLI reaches Docker only through attach and doctor's probe" }],
          patterns: [
            {
              group: ['**/effects/docker/**', '**/effects/cleanup*', '**/effects/index*'],
              message: "the CLI reaches Docker only through attach and doctor's probe",
            },
            {
              group: ['**/worker/**', '**/worker'],
              message: 'the CLI talks to the engine (src/engine), never the worker',
            },
          ],
        },
      ],
    },
  },
  {
    // The gateway and the network watch are programs of their own: bundled apart (scripts/build-gateway.mjs)
    // and run in the gateway's image with no node_modules. Each imports its own folder and src/shared only,
    // so neither pulls the engine, the worker or the CLI into its bundle, nor depends on the other.
    files: ['src/gateway/**/*.ts', 'src/netwatch/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              // Any way up and out, `../shared/...` excepted (a `..` further in could climb back out).
              regex: '^\\.\\.(/(?!shared/)|$)|/\\.\\.(/|$)',
              message: 'the gateway and the network watch import only their own folder and src/shared',
            },
          ],
        },
      ],
    },
  },
);
