#!/usr/bin/env node
import { buildCommand, buildUsage } from './commands/build.js';
import { demoCommand, demoUsage } from './commands/demo.js';
import { groundtruthCommand, groundtruthUsage } from './commands/groundtruth.js';
import { importCommand, importUsage } from './commands/import.js';
import { searchCommand, searchUsage } from './commands/search.js';
import { serveCommand, serveUsage } from './commands/serve.js';
import { runCli, type Command } from './run.js';

/**
 * `adanns bench` lives in the benchmarks workspace, which sits above the CLI;
 * it is loaded by name at run time so the CLI does not depend on it at build time.
 */
const loadBench = async () => (await import('@adanns/benchmarks' as string)) as { benchCommand: Command; benchUsage: string };
const bench: Command = async (argv) => (await loadBench()).benchCommand(argv);

const usage = `adanns: adaptive approximate nearest-neighbour search (AdANNS) over Matryoshka embeddings

${serveUsage}

${importUsage}

${buildUsage}

${searchUsage}

${groundtruthUsage}

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
    demo: { run: demoCommand, usage: demoUsage },
    // the bench usage text lives with the harness, loaded only when asked for
    bench: { run: bench, usage: argv[0] === 'bench' ? (await loadBench()).benchUsage : '' },
  },
  usage,
);
