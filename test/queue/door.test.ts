// src/queue/index.ts is the queue layer's door: every other part of src/
// (tasks, bus, testing, ops, telemetry, cli, src/index.ts) imports the queue
// through it, never one of its files (eslint.config.js enforces it for the
// folders of QUEUE_DOOR_ONLY; this test for every folder). The importers are
// read from the source tree, not listed by hand.
import { describe, expect, it } from 'vitest';
import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import * as door from '../../src/queue/index.js';

const root = fileURLToPath(new URL('../../', import.meta.url));
const src = join(root, 'src');
const queueDir = join(src, 'queue');
const DOOR = join(queueDir, 'index.ts');
// The door's public half: the queue API `pgferry` exports, listed once there;
// the door and src/index.ts re-export it whole (the one allowed `export *`).
const PUBLIC = join(queueDir, 'public.ts');

interface QueueImport {
  file: string; // importer, relative to the repo
  module: string; // queue file, absolute, .ts
  name: string; // the exported name taken
  typeOnly: boolean;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory()
      ? tsFiles(join(dir, e.name))
      : e.name.endsWith('.ts')
        ? [join(dir, e.name)]
        : [],
  );
}

/** Every named import or re-export from a src/queue file, outside src/queue: past the door, or through it. */
function queueImports(): {
  imports: QueueImport[];
  viaDoor: QueueImport[];
  namespaces: string[];
  wholePublic: string[];
} {
  const imports: QueueImport[] = [];
  const viaDoor: QueueImport[] = [];
  const namespaces: string[] = [];
  const wholePublic: string[] = [];
  for (const file of tsFiles(src)) {
    if (file.startsWith(queueDir + '/')) continue;
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest);
    for (const st of sf.statements) {
      if (!(ts.isImportDeclaration(st) || ts.isExportDeclaration(st))) continue;
      if (!st.moduleSpecifier || !ts.isStringLiteral(st.moduleSpecifier)) continue;
      const spec = st.moduleSpecifier.text;
      if (!spec.startsWith('.')) continue;
      const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      if (!target.startsWith(queueDir + '/')) continue;
      const rel = relative(root, file);
      const into = target === DOOR || target === PUBLIC ? viaDoor : imports;
      const add = (el: ts.ImportSpecifier | ts.ExportSpecifier, declTypeOnly: boolean) =>
        into.push({
          file: rel,
          module: target,
          name: (el.propertyName ?? el.name).text,
          typeOnly: declTypeOnly || el.isTypeOnly,
        });
      if (ts.isImportDeclaration(st)) {
        const clause = st.importClause;
        const bindings = clause?.namedBindings;
        if (clause?.name || (bindings && ts.isNamespaceImport(bindings))) namespaces.push(rel);
        if (bindings && ts.isNamedImports(bindings))
          bindings.elements.forEach((el) => add(el, clause.isTypeOnly));
      } else if (st.exportClause && ts.isNamedExports(st.exportClause)) {
        st.exportClause.elements.forEach((el) => add(el, st.isTypeOnly));
      } else if (target === PUBLIC) {
        wholePublic.push(rel); // the door's public half, re-exported whole
      } else {
        namespaces.push(rel); // export * from a queue file
      }
    }
  }
  return { imports, viaDoor, namespaces, wholePublic };
}

const { imports, viaDoor, namespaces, wholePublic } = queueImports();

/** The declarations each module exports, by name, as the type checker resolves them. */
function exportedDeclarations(): (module: string, name: string) => ts.Declaration[] | undefined {
  const modules = [DOOR];
  const program = ts.createProgram(modules, {
    strict: true,
    module: ts.ModuleKind.NodeNext,
    moduleResolution: ts.ModuleResolutionKind.NodeNext,
    target: ts.ScriptTarget.ES2022,
    noEmit: true,
    skipLibCheck: true,
  });
  const checker = program.getTypeChecker();
  return (module, name) => {
    const sf = program.getSourceFile(module);
    const sym = sf && checker.getSymbolAtLocation(sf);
    const exp = sym && checker.getExportsOfModule(sym).find((s) => s.name === name);
    if (!exp) return undefined;
    const target = exp.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(exp) : exp;
    return target.declarations ?? [];
  };
}

describe('the queue door (src/queue/index.ts)', () => {
  it('finds the imports it guards (the scan is not empty)', () => {
    const importers = new Set(
      [...viaDoor.map((i) => i.file), ...wholePublic].map((f) => f.split('/')[1]),
    );
    expect(wholePublic).toEqual(['src/index.ts']);
    for (const layer of ['tasks', 'bus', 'testing', 'index.ts', 'cli'])
      expect(importers).toContain(layer);
    expect(viaDoor.map((i) => i.name)).toEqual(
      expect.arrayContaining(['toMessage', 'Headers', 'QueueEngine', 'checkInt']),
    );
  });

  it('no file outside src/queue imports a queue file other than the door', () => {
    expect(imports.map((i) => `${i.file}: ${i.name} from ${relative(root, i.module)}`)).toEqual([]);
  });

  it('no importer takes a queue file whole (default, namespace or export *)', () => {
    expect(namespaces).toEqual([]);
  });

  it('exports every name the other layers take through it', () => {
    const decls = exportedDeclarations();
    const missing = viaDoor.filter((imp) => !decls(DOOR, imp.name)?.length);
    expect(missing.map((i) => `${i.file}: ${i.name}`)).toEqual([]);
  }, 120_000); // builds a type-checker program over src/queue: seconds, more on a loaded machine

  it('every value the importers take is there at run time', () => {
    const values = [...new Set(viaDoor.filter((i) => !i.typeOnly).map((i) => i.name))];
    const absent = values.filter((name) => !(name in door));
    expect(absent).toEqual([]);
    // Type-only names are erased: they must not be required at run time.
    expect(values).toEqual(expect.arrayContaining(['toMessage', 'checkInt', 'QueueClient']));
  });

  it('exports nothing beyond what it documents (no export * but its public half)', () => {
    const text = readFileSync(DOOR, 'utf8');
    expect(text.match(/^export \*.*$/gm)).toEqual(["export * from './public.js';"]);
    expect(text).not.toMatch(/from '\.\/statements\.js'|from '\.\/held\.js'/);
    const pub = readFileSync(PUBLIC, 'utf8');
    expect(pub).not.toMatch(/^export \*/m);
    expect(pub).not.toMatch(/from '\.\/engine\/|from '\.\/rows\.js'|from '\.\/statements\.js'/);
  });
});
