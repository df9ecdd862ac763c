export { runCli, type Command, type CommandEntry } from './run.js';
export { intOption, parseOrUsage, required, UsageError } from './args.js';
export { progressBars } from './progress.js';
export { BACKEND_FLAGS, backendOptions, openBackend } from './backend.js';
