export { runCli, type Command } from './run.js';
export { UsageError } from './args.js';
