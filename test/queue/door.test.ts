// src/queue/index.ts is the queue layer's door: every name another part of
// src/ (tasks, bus, testing, cli, src/index.ts) takes from a file of
// src/queue must be exported by the door, as the very same declaration, so
// the importers can be switched to the door without changing behaviour. The
// importers are read from the source tree (not listed by hand): a new import
// from a queue file that the door lacks fails here.
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

/** Every named import or re-export from a src/queue file other than the door, outside src/queue. */
function queueImports(): { imports: QueueImport[]; namespaces: string[] } {
  const imports: QueueImport[] = [];
  const namespaces: string[] = [];
  for (const file of tsFiles(src)) {
    if (file.startsWith(queueDir + '/')) continue;
    const sf = ts.createSourceFile(file, readFileSync(file, 'utf8'), ts.ScriptTarget.Latest);
    for (const st of sf.statements) {
      if (!(ts.isImportDeclaration(st) || ts.isExportDeclaration(st))) continue;
      if (!st.moduleSpecifier || !ts.isStringLiteral(st.moduleSpecifier)) continue;
      const spec = st.moduleSpecifier.text;
      if (!spec.startsWith('.')) continue;
      const target = resolve(dirname(file), spec).replace(/\.js$/, '.ts');
      if (!target.startsWith(queueDir + '/') || target === DOOR) continue;
      const rel = relative(root, file);
      const add = (el: ts.ImportSpecifier | ts.ExportSpecifier, declTypeOnly: boolean) =>
        imports.push({
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
      } else {
        namespaces.push(rel); // export * from a queue file
      }
    }
  }
  return { imports, namespaces };
}

const { imports, namespaces } = queueImports();

/** The declarations each module exports, by name, as the type checker resolves them. */
function exportedDeclarations(): (module: string, name: string) => ts.Declaration[] | undefined {
  const modules = [DOOR, ...new Set(imports.map((i) => i.module))];
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
    // The scan itself: it sees the imports of the files not yet switched to the door.
    expect(imports.length).toBeGreaterThan(0);
    expect(imports.map((i) => i.name)).toEqual(expect.arrayContaining(['toMessage', 'checkInt']));
  });

  it('only the files edited on other branches still bypass the door', () => {
    // Switched after those branches merge (then QUEUE_DOOR_ONLY enforces it in lint).
    expect([...new Set(imports.map((i) => i.file))].sort()).toEqual([
      'src/bus/bus.ts',
      'src/tasks/worker.ts',
    ]);
  });

  it('no importer takes a queue file whole (default, namespace or export *)', () => {
    expect(namespaces).toEqual([]);
  });

  it('exports every name the other layers take from a queue file, as the same declaration', () => {
    const decls = exportedDeclarations();
    const missing: string[] = [];
    for (const imp of imports) {
      const original = decls(imp.module, imp.name);
      expect(original, `${imp.file}: ${imp.name} is not exported by ${imp.module}`).toBeDefined();
      const viaDoor = decls(DOOR, imp.name);
      if (!viaDoor || viaDoor[0] !== original![0]) {
        missing.push(`${imp.file}: ${imp.name} (from ${relative(root, imp.module)})`);
      }
    }
    expect(missing).toEqual([]);
  }, 120_000); // builds a type-checker program over src/queue: seconds, more on a loaded machine

  it('every value the importers take is there at run time', () => {
    const values = [...new Set(imports.filter((i) => !i.typeOnly).map((i) => i.name))];
    const absent = values.filter((name) => !(name in door));
    expect(absent).toEqual([]);
    // Type-only names are erased: they must not be required at run time.
    expect(values).toEqual(expect.arrayContaining(['toMessage', 'checkInt']));
  });

  it('exports nothing beyond what it documents (no export *)', () => {
    const text = readFileSync(DOOR, 'utf8');
    expect(text).not.toMatch(/^export \*/m);
    expect(text).not.toMatch(/from '\.\/statements\.js'|from '\.\/held\.js'/);
  });
});
