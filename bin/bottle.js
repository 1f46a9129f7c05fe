#!/usr/bin/env node
import { main } from '../dist/cli-bundle/main.js';

const code = await main(process.argv);
// Piped stdout is asynchronous: wait until everything written has been
// flushed (a write's callback runs after the writes before it), then exit so
// open handles (Redis, Docker sockets) cannot keep a finished command alive.
await new Promise((resolve) => process.stdout.write('', resolve));
await new Promise((resolve) => process.stderr.write('', resolve));
process.exit(code);
