// Command-line glue shared by the `adanns` CLI and the benchmark harness
// (docs/ARCHITECTURE.md, "Packages"): argument checks, the --backend/--threads
// flags, progress bars and the command dispatcher.
export { runCli, type Command, type CommandEntry } from './run.js';
export { intOption, intOptions, parseOrUsage, required, UsageError } from './args.js';
export { progressBars } from './progress.js';
export { BACKEND_FLAGS, backendOptions, openBackend } from './backend.js';
