#!/usr/bin/env node
import { buildCommand, buildUsage } from './commands/build.js';
import { demoCommand, demoUsage } from './commands/demo.js';
import { groundtruthCommand, groundtruthUsage } from './commands/groundtruth.js';
import { searchCommand, searchUsage } from './commands/search.js';
import { runCli } from './run.js';

const usage = `adanns: adaptive approximate nearest-neighbour search (AdANNS) over Matryoshka embeddings

${buildUsage}

${searchUsage}

${groundtruthUsage}

${demoUsage}

SOURCE is one of: FILE.fvecs, FILE.bvecs, FILE.npy, FILE.hdf5:train|test, fashion-mnist:train|test,
synthetic:n=N,dim=D[,clusters=C,queries=Q,seed=S,part=base|queries]`;

process.exitCode = await runCli(process.argv.slice(2), { build: buildCommand, search: searchCommand, groundtruth: groundtruthCommand, demo: demoCommand }, usage);
