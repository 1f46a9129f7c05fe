// Lint: the layering of src/ and the purity of the lifecycle machine.
//
// Layers, lowest first; a layer imports only the layers listed in `mayImport`, never one above it:
//   shared · manifest · plan · events · machines   (the manifest, the plan, the event schemas, the fold)
//   images · blobs · event-store                   (build contexts, uploaded trees, Redis streams)
//   engine                                         (the client kernel: bottle log, queues, Redis, live workers)
//   effects · worker · cli                         (Docker and the gateway; the BullMQ worker; the commands)
//   main.ts                                        (the entry point: registers the commands and `bottle worker`)
// The gateway and the network watch are programs of their own (last block). No import circles anywhere.
import { createNodeResolver, importX } from 'eslint-plugin-import-x';
import tseslint from 'typescript-eslint';

const FOLDERS = [
  'shared',
  'manifest',
  'plan',
  'events',
  'machines',
  'images',
  'blobs',
  'event-store',
  'engine',
  'effects',
  'worker',
  'cli',
  'gateway',
  'netwatch',
  'port-forwarder',
];

/** A relative import (`../x/…`, `../../x/…`) or dynamic import() of one of `folders`. */
const intoFolders = (folders) => `^(\\.\\./)+(${folders.join('|')})(/|$)`;

/**
 * A layer's rules: every folder of src/ not in `mayImport` is out of bounds, whether imported,
 * re-exported, imported for its types, loaded with import() or named in `typeof import()`.
 */
function layer({ name, files, mayImport, paths = [] }) {
  const denied = FOLDERS.filter((folder) => folder !== name && !mayImport.includes(folder));
  const message = mayImport.length
    ? `${name} imports only ${mayImport.join(', ')} (and its own folder)`
    : `${name} imports nothing else from src`;
  const regex = intoFolders(denied);
  // esquery reads `/` as the end of a regular expression: \x2F stands for it.
  const selectorRegex = `/${regex.replaceAll('/', '\\x2F')}/`;
  return {
    files,
    rules: {
      'no-restricted-imports': ['error', { paths, patterns: [{ regex, message }] }],
      'no-restricted-syntax': [
        'error',
        { selector: `ImportExpression[source.value=${selectorRegex}]`, message },
        { selector: `TSImportType[argument.literal.value=${selectorRegex}]`, message },
      ],
    },
  };
}

const LOWER_THAN_ENGINE = ['shared', 'manifest', 'plan', 'events', 'machines', 'images', 'blobs', 'event-store'];
const DOCKER_CLIENT = { name: 'dockerode', message: "the CLI reaches Docker only through attach and doctor's probe" };

const layers = [
  layer({ name: 'shared', files: ['src/shared/**/*.ts'], mayImport: [] }),
  // Reads and validates the manifest file; knows nothing of what is launched from it.
  layer({ name: 'manifest', files: ['src/manifest/**/*.ts'], mayImport: ['shared'] }),
  // The plan takes the ports and markers the bottle's gateway and network watch speak (their protocol modules).
  layer({ name: 'plan', files: ['src/plan/**/*.ts'], mayImport: ['shared', 'manifest', 'gateway', 'netwatch'] }),
  layer({ name: 'events', files: ['src/events/**/*.ts'], mayImport: ['shared', 'plan'] }),
  layer({ name: 'machines', files: ['src/machines/**/*.ts'], mayImport: ['shared', 'plan', 'events'] }),
  layer({ name: 'images', files: ['src/images/**/*.ts'], mayImport: ['shared', 'plan'] }),
  layer({ name: 'blobs', files: ['src/blobs/**/*.ts'], mayImport: ['shared', 'plan', 'images'] }),
  // The event store reads and appends events; it knows neither the machine nor what reads it.
  layer({ name: 'event-store', files: ['src/event-store/**/*.ts'], mayImport: ['shared', 'events'] }),
  layer({ name: 'engine', files: ['src/engine/**/*.ts'], mayImport: LOWER_THAN_ENGINE }),
  // Effects start the gateway and the network watch: the one layer that knows their programs.
  layer({
    name: 'effects',
    files: ['src/effects/**/*.ts'],
    mayImport: [...LOWER_THAN_ENGINE, 'engine', 'gateway', 'netwatch', 'port-forwarder'],
  }),
  layer({ name: 'worker', files: ['src/worker/**/*.ts'], mayImport: [...LOWER_THAN_ENGINE, 'engine', 'effects'] }),
  // The CLI talks to the engine, never the worker; it reaches Docker only through attach and doctor's probe.
  layer({
    name: 'cli',
    files: ['src/cli/**/*.ts'],
    mayImport: [...LOWER_THAN_ENGINE, 'engine'],
    paths: [DOCKER_CLIENT],
  }),
  layer({
    name: 'cli',
    files: ['src/cli/attach.ts', 'src/cli/docker-probe.ts'],
    mayImport: [...LOWER_THAN_ENGINE, 'engine', 'effects'],
  }),
];

// The plan imports no I/O module (the pure core below is stricter still). A second rule, typescript-eslint's
// no-restricted-imports (which also sees `import type`), keeps this list apart from the layering's.
const IO_MODULES = ['dockerode', 'ioredis', 'bullmq', 'fs', 'fs/promises', 'child_process', 'net', 'http', 'https'];
const noIo = {
  files: ['src/plan/**/*.ts'],
  rules: {
    '@typescript-eslint/no-restricted-imports': [
      'error',
      {
        paths: IO_MODULES.flatMap((name) => [name, `node:${name}`]).map((name) => ({
          name,
          message: 'the plan is pure: no I/O',
        })),
      },
    ],
  },
};

/**
 * The pure core: everything the lifecycle machine loads, so its fold is a function of the event
 * history alone. Timestamps arrive inside events; no clock, no randomness, no module loaded at run
 * time, and nothing imported from outside the core but zod and xstate.
 */
const CORE_FILES = [
  'src/plan/schema.ts',
  'src/shared/capability.ts',
  'src/shared/exit-signal.ts',
  'src/shared/traffic-summary.ts',
  'src/shared/token-usage.ts',
  'src/shared/budget.ts',
  'src/shared/prices.ts',
  'src/shared/agent-status.ts',
];
const coreModule = String.raw`\.\./(plan/schema|shared/(capability|exit-signal|traffic-summary|token-usage|budget|prices|agent-status))\.js$`;
const outsideCore = (ownFolder) => `^(?!(zod|xstate)$|${coreModule}|${ownFolder})`;
const coreMessage = 'the pure core (machines, events and the modules they load) imports only zod, xstate and itself';
const pureCore = [
  {
    files: ['src/machines/**/*.ts', 'src/events/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        { patterns: [{ regex: outsideCore(String.raw`\./|\.\./(events|machines)/`), message: coreMessage }] },
      ],
    },
  },
  {
    files: CORE_FILES,
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: outsideCore(String.raw`\./(capability|exit-signal|token-usage|budget|prices)\.js$`),
              message: coreMessage,
            },
          ],
        },
      ],
    },
  },
  {
    files: ['src/machines/**/*.ts', 'src/events/**/*.ts', ...CORE_FILES],
    rules: {
      'no-restricted-globals': [
        'error',
        { name: 'Date', message: 'the machine reads no clock: timestamps arrive inside events' },
        { name: 'performance', message: 'the machine reads no clock: timestamps arrive inside events' },
        { name: 'crypto', message: 'the machine draws no random numbers' },
      ],
      'no-restricted-properties': [
        'error',
        { object: 'Math', property: 'random', message: 'the machine draws no random numbers' },
        { object: 'process', property: 'hrtime', message: 'the machine reads no clock' },
        ...['Date', 'performance', 'crypto'].map((property) => ({
          object: 'globalThis',
          property,
          message: 'the machine reads no clock and draws no random numbers',
        })),
      ],
      // Replaces the layering's import() rule with a stricter one for these files.
      'no-restricted-syntax': [
        'error',
        { selector: 'ImportExpression', message: 'the pure core loads no module at run time' },
        { selector: 'TSImportType', message: coreMessage },
        { selector: "CallExpression[callee.name='require']", message: 'the pure core loads no module at run time' },
      ],
    },
  },
];

export default tseslint.config(
  { ignores: ['dist/**', 'node_modules/**', 'vendor/**', '.bottle-test/**'] },
  {
    // typescript-eslint's type-aware recommendations: floating promises, unsafe any, misused promises...
    files: ['src/**/*.ts'],
    extends: [tseslint.configs.recommendedTypeChecked],
    languageOptions: { parserOptions: { projectService: true, tsconfigRootDir: import.meta.dirname } },
    rules: {
      // A leading underscore names what a signature or a destructuring must hold but the code does not use.
      '@typescript-eslint/no-unused-vars': [
        'error',
        {
          argsIgnorePattern: '^_',
          varsIgnorePattern: '^_',
          destructuredArrayIgnorePattern: '^_',
          ignoreRestSiblings: true,
        },
      ],
    },
  },
  {
    files: ['src/**/*.ts'],
    languageOptions: { parser: tseslint.parser },
    plugins: { '@typescript-eslint': tseslint.plugin, 'import-x': importX },
    settings: {
      'import-x/extensions': ['.ts'],
      'import-x/parsers': { '@typescript-eslint/parser': ['.ts'] },
      // Sources import each other as `./x.js`, which is `./x.ts` before compilation.
      'import-x/resolver-next': [
        createNodeResolver({ extensions: ['.ts', '.js'], extensionAlias: { '.js': ['.ts', '.js'] } }),
      ],
    },
    rules: { 'import-x/no-cycle': ['error', { ignoreExternal: true }] },
  },
  ...layers,
  noIo,
  ...pureCore,
  {
    // The gateway and the network watch are programs of their own: bundled apart (scripts/build-gateway.mjs)
    // and run in the gateway's image with no node_modules. Each imports its own folder and src/shared only,
    // so neither pulls the engine, the worker or the CLI into its bundle, nor depends on the other.
    files: ['src/gateway/**/*.ts', 'src/netwatch/**/*.ts', 'src/port-forwarder/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              // Any way up and out, `../shared/...` excepted (a `..` further in could climb back out).
              regex: '^\\.\\.(/(?!shared/)|$)|/\\.\\.(/|$)',
              message:
                'the gateway, the network watch and the port forwarder import only their own folder and src/shared',
            },
          ],
        },
      ],
    },
  },
  {
    // The gateway's inspection (src/gateway/scan/) sits one folder down: the gateway's folder is `..`,
    // src/shared is `../../shared`; nothing further up or out.
    files: ['src/gateway/scan/**/*.ts'],
    rules: {
      'no-restricted-imports': [
        'error',
        {
          patterns: [
            {
              regex: '^\\.\\./\\.\\.(/(?!shared/)|$)|^\\.\\.$|[^.]/\\.\\.(/|$)|^\\./\\.\\.',
              message: 'the gateway and the network watch import only their own folder and src/shared',
            },
          ],
        },
      ],
    },
  },
);
