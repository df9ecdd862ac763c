import { readdirSync, readFileSync, statSync } from 'node:fs';
import { join, relative } from 'node:path';

/**
 * An index artefact directory as one object-store blob: a JSON header line
 * `{files: [{path, size}]}` and the files' bytes one after the other.
 */
export function packArtefact(dir: string): Uint8Array {
  const files: { path: string; size: number }[] = [];
  const parts: Buffer[] = [];
  const walk = (at: string) => {
    for (const entry of readdirSync(at).sort()) {
      const path = join(at, entry);
      if (statSync(path).isDirectory()) walk(path);
      else {
        const bytes = readFileSync(path);
        files.push({ path: relative(dir, path), size: bytes.length });
        parts.push(bytes);
      }
    }
  };
  walk(dir);
  return Buffer.concat([Buffer.from(`${JSON.stringify({ files })}\n`), ...parts]);
}

export function unpackArtefact(blob: Uint8Array): Map<string, Uint8Array> {
  const bytes = Buffer.from(blob.buffer, blob.byteOffset, blob.byteLength);
  const newline = bytes.indexOf(10);
  if (newline < 0) throw new Error('artefact blob has no header');
  const header = JSON.parse(bytes.subarray(0, newline).toString('utf8')) as { files?: { path: unknown; size: unknown }[] };
  if (!Array.isArray(header.files)) throw new Error('artefact blob header lists no files');
  const out = new Map<string, Uint8Array>();
  let at = newline + 1;
  for (const f of header.files) {
    if (typeof f.path !== 'string' || typeof f.size !== 'number' || !Number.isInteger(f.size) || f.size < 0 || at + f.size > bytes.length) throw new Error('artefact blob is truncated or malformed');
    out.set(f.path, bytes.subarray(at, at + f.size));
    at += f.size;
  }
  if (at !== bytes.length) throw new Error('artefact blob has trailing bytes');
  return out;
}
