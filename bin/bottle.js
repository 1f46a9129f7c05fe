#!/usr/bin/env node
import { main } from '../dist/cli-bundle/main.js';

const code = await main(process.argv);
// Open handles (Redis, Docker sockets) must not keep a finished command alive.
process.exit(code);
