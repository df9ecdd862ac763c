import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { checkDependencies, formatGraph, importsOf } from '../deps.js';

describe('workspace dependencies', () => {
  it('are declared, stay inside their packages and form no cycle', () => {
    const { packages, problems } = checkDependencies();
    console.log(formatGraph(packages));
    expect(problems).toEqual([]);
    // the layering the architecture document describes
    const deps = (name: string) => packages.find((p) => p.name === name)!.declared;
    expect(deps('@adanns/client')).toEqual(['@adanns/wire']);
    expect(deps('@adanns/datasets')).not.toContain('@adanns/compute');
    expect(deps('@adanns/benchmarks')).not.toContain('@adanns/cli');
  });
});

describe('the dependency check', () => {
  const repo = mkdtempSync(join(tmpdir(), 'adanns-deps-'));
  afterAll(() => rmSync(repo, { recursive: true, force: true }));
  const write = (path: string, text: string) => {
    mkdirSync(dirname(join(repo, path)), { recursive: true });
    writeFileSync(join(repo, path), text);
  };
  const pkg = (dir: string, name: string, deps: Record<string, string>, refs: string[]) => {
    write(`${dir}/package.json`, JSON.stringify({ name, dependencies: deps }));
    write(`${dir}/tsconfig.json`, JSON.stringify({ references: refs.map((path) => ({ path })) }));
  };

  it('reports undeclared, cyclic, out-of-package and value imports of type-only packages', () => {
    write('package.json', JSON.stringify({ workspaces: ['a', 'b', 'client', 'wire'], devDependencies: { vitest: '1' } }));
    pkg('a', '@adanns/a', { '@adanns/b': '1' }, ['../b']);
    pkg('b', '@adanns/b', { '@adanns/a': '1' }, []);
    pkg('client', '@adanns/client', { '@adanns/wire': '1' }, ['../wire']);
    pkg('wire', '@adanns/wire', { '@adanns/b': '1' }, ['../b']);
    write('a/src/index.ts', "import { b } from '@adanns/b';\nimport x from 'left-pad';\nimport '../../wire/src/index.js';\nexport const a = b;\n");
    write('a/test/a.test.ts', "import { it } from 'vitest';\nimport { a } from '@adanns/a';\nimport { w } from '@adanns/wire';\n");
    write('b/src/index.ts', "export const b = 1;\nexport const lazy = () => import('@adanns/a' as string);\n");
    write('client/src/index.ts', "import type { T } from '@adanns/wire';\nimport { S } from '@adanns/wire';\n");
    write('wire/src/index.ts', 'export const w = 1;\n');
    const { problems } = checkDependencies(repo);
    expect(problems).toEqual(
      expect.arrayContaining([
        'a/src/index.ts: imports "left-pad", not in @adanns/a\'s dependencies',
        'a/src/index.ts: relative import "../../wire/src/index.js" leaves a/src',
        'a/test/a.test.ts: imports "@adanns/wire", not in @adanns/a\'s dependencies or devDependencies',
        'b/tsconfig.json: no reference to a (@adanns/b depends on @adanns/a)',
        'client/src/index.ts: @adanns/client may import "@adanns/wire" for types only (import type)',
        'cycle among declared dependencies: @adanns/a -> @adanns/b -> @adanns/a',
        'cycle among imported dependencies: @adanns/a -> @adanns/b -> @adanns/a',
        'wire/package.json: declares @adanns/b, which its src never imports',
      ]),
    );
    expect(problems).toHaveLength(8);
  });

  it('reads type-only, dynamic and re-exported imports', () => {
    const sites = importsOf(
      'x.ts',
      "import type { A } from 'a';\nimport { type B } from 'b';\nimport { C, type D } from 'c';\nexport { E } from 'e';\nexport type { F } from 'f';\nconst g = await import('g');\ntype H = import('h').H;\n",
    );
    expect(sites.map((s) => [s.specifier, s.typeOnly])).toEqual([
      ['a', true],
      ['b', true],
      ['c', false],
      ['e', false],
      ['f', true],
      ['g', false],
      ['h', true],
    ]);
  });
});
