import type { CodecDefinition } from './codec.js';

const codecs = new Map<string, CodecDefinition>();

/** Adds a codec to the spec grammar (codecs/builtin.ts registers the shipped ones). */
export function registerCodec(definition: CodecDefinition): void {
  if (codecs.has(definition.name)) throw new Error(`codec "${definition.name}" is registered twice`);
  codecs.set(definition.name, definition);
}

export function codecDefinition(name: string): CodecDefinition {
  const definition = codecs.get(name);
  if (!definition) throw new Error(`unknown list codec "${name}" (known: ${[...codecs.keys()].join(', ')})`);
  return definition;
}

/** The codec whose token head this is, with what the head says (e.g. PQ's byte count). */
export function parseCodecHead(head: string): { definition: CodecDefinition; bytes?: number } | undefined {
  for (const definition of codecs.values()) {
    const parsed = definition.parse(head);
    if (parsed) return { definition, ...parsed };
  }
  return undefined;
}

/** Registry names of every codec (ScanSpec.codec values). */
export function codecNames(): string[] {
  return [...codecs.keys()];
}

/** Token forms of every codec, for error messages. */
export function codecTokens(): string[] {
  return [...codecs.values()].map((c) => c.token);
}
