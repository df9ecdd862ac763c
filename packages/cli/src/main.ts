#!/usr/bin/env node
import { buildCommand, buildUsage } from './commands/build.js';
import { demoCommand, demoUsage } from './commands/demo.js';
import { groundtruthCommand, groundtruthUsage } from './commands/groundtruth.js';
import { importCommand, importUsage } from './commands/import.js';
import { infoCommand, infoUsage } from './commands/info.js';
import { searchCommand, searchUsage } from './commands/search.js';
import { serveCommand, serveUsage } from './commands/serve.js';
import { runCli, UsageError, type Command } from '@adanns/cli-kit';

/**
 * `adanns bench` is the benchmark harness, @adanns/benchmarks: an optional
 * dependency of the CLI (an install without it has every other command),
 * loaded only when asked for.
 */
async function loadBench(): Promise<typeof import('@adanns/benchmarks')> {
  try {
    return await import('@adanns/benchmarks');
  } catch (e) {
    const missing = (e as NodeJS.ErrnoException).code === 'ERR_MODULE_NOT_FOUND' && (e as Error).message.includes("'@adanns/benchmarks'");
    if (missing) throw new UsageError('adanns bench needs the optional package @adanns/benchmarks, which is not installed');
    throw e;
  }
}
const bench: Command = async (argv) => (await loadBench()).benchCommand(argv);

const usage = `adanns: adaptive approximate nearest-neighbour search (AdANNS) over Matryoshka embeddings

${serveUsage}

${importUsage}

${buildUsage}

${searchUsage}

${groundtruthUsage}

${infoUsage}

${demoUsage}

adanns bench ...  (the benchmark harness; adanns bench --help for its options)

SOURCE is one of: FILE.fvecs, FILE.bvecs, FILE.npy, FILE.hdf5:train|test, fashion-mnist:train|test,
synthetic:n=N,dim=D[,clusters=C,queries=Q,seed=S,part=base|queries]`;

const argv = process.argv.slice(2);
process.exitCode = await runCli(
  argv,
  {
    serve: { run: serveCommand, usage: serveUsage },
    import: { run: importCommand, usage: importUsage },
    build: { run: buildCommand, usage: buildUsage },
    search: { run: searchCommand, usage: searchUsage },
    groundtruth: { run: groundtruthCommand, usage: groundtruthUsage },
    info: { run: infoCommand, usage: infoUsage },
    demo: { run: demoCommand, usage: demoUsage },
    // the bench usage text lives with the harness, loaded only when asked for
    bench: { run: bench, usage: argv[0] === 'bench' ? (await loadBench()).benchUsage : '' },
  },
  usage,
);
