/**
 * The dependency check (docs/ARCHITECTURE.md, "Packages"): reads every import
 * of every workspace package with the TypeScript parser and fails on
 * - a package imported but not declared in package.json (src: dependencies,
 *   optionalDependencies or peerDependencies; test: those or devDependencies,
 *   the repository root's devDependencies included);
 * - a relative import that leaves the package's src (src must not reach into
 *   another package or the repository);
 * - a cycle among the workspace packages, declared or imported;
 * - a declared workspace dependency without a tsconfig reference (tsc -b order),
 *   or one its src never imports (a stale edge in the graph);
 * - a value import of a package that may only be imported for its types.
 *
 *   npm run check:deps      prints the package graph, exits 1 on a problem
 */
import { readdirSync, readFileSync, statSync } from 'node:fs';
import { builtinModules } from 'node:module';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const REPO = fileURLToPath(new URL('..', import.meta.url));

/** Imports that must stay type-only (they would load server code into the client). */
const TYPE_ONLY: Record<string, string[]> = { '@adanns/client': ['@adanns/wire'] };

interface Manifest {
  name: string;
  dependencies?: Record<string, string>;
  optionalDependencies?: Record<string, string>;
  peerDependencies?: Record<string, string>;
  devDependencies?: Record<string, string>;
  workspaces?: string[];
}

export interface WorkspacePackage {
  name: string;
  dir: string;
  manifest: Manifest;
  /** Workspace packages it declares at run time (dependencies, optional, peer). */
  declared: string[];
  /** Of those, the optional ones. */
  optional: string[];
  /** Workspace packages its src imports. */
  imported: string[];
}

export interface ImportSite {
  file: string;
  specifier: string;
  typeOnly: boolean;
}

export interface DepReport {
  packages: WorkspacePackage[];
  problems: string[];
}

const readJson = <T>(path: string): T => JSON.parse(readFileSync(path, 'utf8')) as T;

function tsFiles(dir: string): string[] {
  let entries: string[];
  try {
    entries = readdirSync(dir);
  } catch {
    return [];
  }
  return entries.flatMap((entry) => {
    const path = join(dir, entry);
    if (entry === 'node_modules' || entry === 'dist') return [];
    if (statSync(path).isDirectory()) return tsFiles(path);
    return /\.(ts|mts|mjs|js)$/.test(entry) && !entry.endsWith('.d.ts') ? [path] : [];
  });
}

/** Every module specifier a file imports, with whether the import is for types only. */
export function importsOf(file: string, text = readFileSync(file, 'utf8')): ImportSite[] {
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.Latest, true);
  const found: ImportSite[] = [];
  const add = (node: ts.Expression | undefined, typeOnly: boolean) => {
    if (node && ts.isStringLiteralLike(node)) found.push({ file, specifier: node.text, typeOnly });
    // import(x as string) and friends: a literal behind a cast still names a package
    else if (node && (ts.isAsExpression(node) || ts.isParenthesizedExpression(node))) add(node.expression, typeOnly);
  };
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node)) {
      const clause = node.importClause;
      const allTypes =
        clause !== undefined &&
        (clause.isTypeOnly || (!clause.name && clause.namedBindings !== undefined && ts.isNamedImports(clause.namedBindings) && clause.namedBindings.elements.length > 0 && clause.namedBindings.elements.every((e) => e.isTypeOnly)));
      add(node.moduleSpecifier, allTypes);
    } else if (ts.isExportDeclaration(node)) {
      const allTypes = node.isTypeOnly || (node.exportClause !== undefined && ts.isNamedExports(node.exportClause) && node.exportClause.elements.every((e) => e.isTypeOnly));
      add(node.moduleSpecifier, allTypes);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) {
      add(node.arguments[0], false);
    } else if (ts.isImportTypeNode(node) && ts.isLiteralTypeNode(node.argument)) {
      add(node.argument.literal as ts.Expression, true);
    } else if (ts.isImportEqualsDeclaration(node) && ts.isExternalModuleReference(node.moduleReference)) {
      add(node.moduleReference.expression, node.isTypeOnly);
    }
    ts.forEachChild(node, visit);
  };
  visit(source);
  return found;
}

/** The package a bare specifier names: `@scope/name/x` -> `@scope/name`, `name/x` -> `name`. */
function packageOf(specifier: string): string {
  const parts = specifier.split('/');
  return specifier.startsWith('@') ? parts.slice(0, 2).join('/') : parts[0];
}

const isBuiltin = (name: string): boolean => name.startsWith('node:') || builtinModules.includes(name);

/** Cycles in a graph, each as a path that returns to its start. */
function cycles(graph: Map<string, string[]>): string[][] {
  const found: string[][] = [];
  const state = new Map<string, 'open' | 'done'>();
  const stack: string[] = [];
  const walk = (node: string): void => {
    state.set(node, 'open');
    stack.push(node);
    for (const next of graph.get(node) ?? []) {
      if (state.get(next) === 'open') found.push([...stack.slice(stack.indexOf(next)), next]);
      else if (!state.has(next)) walk(next);
    }
    stack.pop();
    state.set(node, 'done');
  };
  for (const node of [...graph.keys()].sort()) if (!state.has(node)) walk(node);
  return found;
}

export function checkDependencies(repo = REPO): DepReport {
  const root = readJson<Manifest>(join(repo, 'package.json'));
  const dirs = root.workspaces ?? [];
  const manifests = dirs.map((dir) => ({ dir, manifest: readJson<Manifest>(join(repo, dir, 'package.json')) }));
  const names = new Set(manifests.map((m) => m.manifest.name));
  const problems: string[] = [];
  const packages: WorkspacePackage[] = [];

  for (const { dir, manifest } of manifests) {
    const runtime = { ...manifest.dependencies, ...manifest.optionalDependencies, ...manifest.peerDependencies };
    const dev = { ...runtime, ...manifest.devDependencies, ...root.devDependencies };
    const declared = Object.keys(runtime).filter((n) => names.has(n));
    const optional = Object.keys(manifest.optionalDependencies ?? {}).filter((n) => names.has(n));
    const imported = new Set<string>();
    const pkgDir = join(repo, dir);

    for (const [area, allowed] of [
      ['src', runtime],
      ['test', dev],
    ] as const) {
      for (const file of tsFiles(join(pkgDir, area))) {
        const where = relative(repo, file);
        for (const site of importsOf(file)) {
          const spec = site.specifier;
          if (spec.startsWith('.')) {
            const target = resolve(dirname(file), spec);
            const home = join(pkgDir, area === 'src' ? 'src' : '');
            if (relative(home, target).startsWith('..')) {
              // tests may share another package's test helpers, never its sources
              const otherTest = area === 'test' && /[/\\]test[/\\]/.test(relative(repo, target));
              if (!otherTest) problems.push(`${where}: relative import "${spec}" leaves ${relative(repo, home) || dir}`);
            }
            continue;
          }
          const name = packageOf(spec);
          if (isBuiltin(spec) || name === manifest.name) continue;
          if (!(name in allowed)) {
            const kind = area === 'src' ? 'dependencies' : 'dependencies or devDependencies';
            problems.push(`${where}: imports "${name}", not in ${manifest.name}'s ${kind}`);
          }
          if (area === 'src' && names.has(name)) {
            imported.add(name);
            if (TYPE_ONLY[manifest.name]?.includes(name) && !site.typeOnly) problems.push(`${where}: ${manifest.name} may import "${name}" for types only (import type)`);
          }
        }
      }
    }

    for (const dep of declared) if (!imported.has(dep)) problems.push(`${dir}/package.json: declares ${dep}, which its src never imports`);
    const tsconfig = readJson<{ references?: { path: string }[] }>(join(pkgDir, 'tsconfig.json'));
    const referenced = new Set((tsconfig.references ?? []).map((r) => resolve(pkgDir, r.path)));
    for (const dep of declared) {
      const depDir = manifests.find((m) => m.manifest.name === dep)!.dir;
      if (!referenced.has(resolve(repo, depDir))) problems.push(`${dir}/tsconfig.json: no reference to ${depDir} (${manifest.name} depends on ${dep})`);
    }
    packages.push({ name: manifest.name, dir, manifest, declared: declared.sort(), optional: optional.sort(), imported: [...imported].sort() });
  }

  for (const [what, edges] of [
    ['declared', (p: WorkspacePackage) => p.declared],
    ['imported', (p: WorkspacePackage) => p.imported],
  ] as const) {
    const graph = new Map(packages.map((p) => [p.name, edges(p)]));
    for (const cycle of cycles(graph)) problems.push(`cycle among ${what} dependencies: ${cycle.join(' -> ')}`);
  }
  return { packages, problems };
}

/** The graph, lowest package first, each with what it depends on (optional ones marked). */
export function formatGraph(packages: WorkspacePackage[]): string {
  const level = new Map<string, number>();
  const depth = (name: string, seen: string[] = []): number => {
    if (level.has(name)) return level.get(name)!;
    if (seen.includes(name)) return 0;
    const p = packages.find((x) => x.name === name)!;
    const d = p.declared.length === 0 ? 0 : 1 + Math.max(...p.declared.map((n) => depth(n, [...seen, name])));
    level.set(name, d);
    return d;
  };
  const sorted = [...packages].sort((a, b) => depth(a.name) - depth(b.name) || a.name.localeCompare(b.name));
  const width = Math.max(...packages.map((p) => p.name.length));
  return sorted
    .map((p) => {
      const deps = p.declared.map((d) => (p.optional.includes(d) ? `${d} (optional)` : d));
      return `${p.name.padEnd(width)}  ${p.dir.padEnd(18)} -> ${deps.length ? deps.join(', ') : '(none)'}`;
    })
    .join('\n');
}

if (process.argv[1] && fileURLToPath(import.meta.url) === resolve(process.argv[1])) {
  const { packages, problems } = checkDependencies();
  console.log(`Workspace packages, lowest first (-> declared workspace dependencies):\n${formatGraph(packages)}`);
  if (problems.length) {
    console.error(`\n${problems.length} dependency problem(s):\n${problems.map((p) => `  ${p}`).join('\n')}`);
    process.exitCode = 1;
  } else {
    console.log('\nno undeclared, out-of-package or cyclic imports between workspace packages');
  }
}
