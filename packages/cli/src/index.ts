export { runCli, type Command } from './run.js';
export { intOption, parseOrUsage, required, UsageError } from './args.js';
export { progressBars } from './progress.js';
