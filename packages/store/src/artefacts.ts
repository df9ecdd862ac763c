import { existsSync, readdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Backend } from '@adanns/compute';
import { loadIndex, readArrayFile, saveIndex, writeArrayFile, type AdannsIndex, type LoadOptions } from '@adanns/core';

/**
 * Index artefacts of a collection: directories `index-<sequence>` written by
 * core's saveIndex (every array file with header and CRC-32) plus
 * `sequence.bin`, the change sequence the artefact covers, and a pointer file
 * `CURRENT` naming the live one, replaced atomically. A directory is only
 * ever named by CURRENT once completely written.
 */
const POINTER = 'CURRENT';
/** Present while a build is wanted and has not finished: a build a crash or a stop interrupted restarts on open. */
const BUILD_REQUEST = 'BUILD_REQUESTED';

/** `trainedCount`: the points the index was trained on (kept in `trained.json`; catch-up adds do not count). */
export function writeArtefact(index: AdannsIndex, dir: string, sequence: number, trainedCount: number): string {
  const name = `index-${sequence}-${Date.now().toString(36)}`;
  const tmp = join(dir, `${name}.tmp`);
  rmSync(tmp, { recursive: true, force: true });
  saveIndex(index, tmp);
  writeArrayFile(join(tmp, 'sequence.bin'), Float64Array.of(sequence), [1]);
  writeFileSync(join(tmp, 'trained.json'), `${JSON.stringify({ trainedCount })}\n`);
  renameSync(tmp, join(dir, name));
  return name;
}

/** Records that a build is wanted (atomic write), with why. */
export function requestBuild(dir: string, reason: string): void {
  const tmp = join(dir, `${BUILD_REQUEST}.tmp`);
  writeFileSync(tmp, `${JSON.stringify({ reason, at: new Date().toISOString() })}\n`);
  renameSync(tmp, join(dir, BUILD_REQUEST));
}

/** Why a build was requested and has not finished, or undefined. */
export function pendingBuild(dir: string): string | undefined {
  const path = join(dir, BUILD_REQUEST);
  if (!existsSync(path)) return undefined;
  try {
    return String((JSON.parse(readFileSync(path, 'utf8')) as { reason?: unknown }).reason ?? 'requested');
  } catch {
    return 'requested'; // torn by a crash: still a request
  }
}

export function clearBuildRequest(dir: string): void {
  rmSync(join(dir, BUILD_REQUEST), { force: true });
}

/** Points CURRENT at an artefact directory (atomic rename) and removes every other one. */
export function publishArtefact(dir: string, name: string): void {
  const tmp = join(dir, `${POINTER}.tmp`);
  writeFileSync(tmp, `${name}\n`);
  renameSync(tmp, join(dir, POINTER));
  for (const entry of readdirSync(dir)) if (entry.startsWith('index-') && entry !== name) rmSync(join(dir, entry), { recursive: true, force: true });
}

/**
 * Loads the artefact CURRENT names: undefined when there is none, an error
 * (never a half-trusted index) when it is missing, truncated or corrupt.
 */
export function readArtefact(backend: Backend, dir: string, options: LoadOptions = {}): { index: AdannsIndex; name: string; sequence: number; trainedCount: number } | undefined {
  const pointer = join(dir, POINTER);
  if (!existsSync(pointer)) return undefined;
  const name = readFileSync(pointer, 'utf8').trim();
  if (!/^index-[0-9]+-[0-9a-z]+$/.test(name)) throw new Error(`${pointer}: does not name an index artefact`);
  const at = join(dir, name);
  const sequence = readArrayFile(join(at, 'sequence.bin'), 'f64', [1]).array[0];
  const index = loadIndex(backend, at, options);
  // artefacts written before trained.json was kept: the size they were saved with
  let trainedCount = index.size;
  if (existsSync(join(at, 'trained.json'))) {
    let value: unknown;
    try {
      value = (JSON.parse(readFileSync(join(at, 'trained.json'), 'utf8')) as { trainedCount?: unknown }).trainedCount;
    } catch {
      value = undefined;
    }
    if (typeof value !== 'number' || !Number.isInteger(value) || value < 0) {
      index.release();
      throw new Error(`${join(at, 'trained.json')}: malformed`);
    }
    trainedCount = value;
  }
  return { index, name, sequence, trainedCount };
}

/** Queries a user gave to calibrate on (POST .../calibrate): kept so rebuilds and re-calibrations use them too. */
const CALIBRATION_QUERIES = 'calibration-queries.bin';

export function calibrationQueriesPath(dir: string): string | undefined {
  const path = join(dir, CALIBRATION_QUERIES);
  return existsSync(path) ? path : undefined;
}

export function writeCalibrationQueries(dir: string, queries: Float32Array, rows: number, dim: number): string {
  const path = join(dir, CALIBRATION_QUERIES);
  writeArrayFile(path, queries, [rows, dim]);
  return path;
}

/** Forgets every artefact (after one was found corrupt). */
export function discardArtefacts(dir: string): void {
  if (!existsSync(dir)) return;
  for (const entry of readdirSync(dir)) if (entry.startsWith('index-') || entry.startsWith(POINTER)) rmSync(join(dir, entry), { recursive: true, force: true });
}
