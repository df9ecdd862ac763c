#!/usr/bin/env node
import { runCli } from '@adanns/cli-kit';
import { benchCommand, benchUsage } from './bench.js';

process.exitCode = await runCli(['bench', ...process.argv.slice(2)], { bench: { run: benchCommand, usage: benchUsage } }, benchUsage);
