import { existsSync, readdirSync, statSync } from "node:fs";
import path from "node:path";
import type TS from "typescript";
import { codeRoot } from "../paths.js";
import { sandboxHint } from "./hints.js";

/**
 * The scripts type-checked against the SDK with the TypeScript compiler, the one implementation
 * behind `callscript check` and the server's `typecheck` gate. A folder's program is kept warm in
 * a language service: a save re-checks the files of the script that changed (its own and the
 * helpers its bundle includes), reusing the parsed SDK and lib files, instead of building a program
 * from nothing. The compiler options are those `init` writes into the folder's tsconfig.json.
 */

/** The globals a script has inside its sandbox beyond the language itself (see the guest prelude). */
export const SANDBOX_GLOBALS_FILE = "callscript-env.d.ts";
export const SANDBOX_GLOBALS = `// What scripts have inside the callscript sandbox beyond the language itself (written by callscript init).
// There is no require, process, timers, fetch or file system: only the hook's input, ctx and this.
interface CallscriptConsole {
  /** Lines go to the script's log, like ctx.log.info. */
  log(...args: unknown[]): void;
  info(...args: unknown[]): void;
  warn(...args: unknown[]): void;
  error(...args: unknown[]): void;
  debug(...args: unknown[]): void;
  trace(...args: unknown[]): void;
}
declare var console: CallscriptConsole;
`;

/** The SDK's types, without extension: `sdk/index.ts` in the sources, `dist/sdk/index.d.ts` when built. */
export function sdkTypes(): string {
  return path.join(codeRoot, "sdk", "index");
}

/** The tsconfig.json of a scripts folder: `callscript` resolves to the SDK that runs the scripts. */
export function scriptsTsconfig(
  dir: string,
  options: { absolute?: boolean } = {},
): {
  compilerOptions: Record<string, unknown>;
  include: string[];
} {
  let sdk = sdkTypes();
  if (!options.absolute) {
    sdk = path.relative(path.resolve(dir), sdk).split(path.sep).join("/");
    if (!sdk.startsWith(".")) sdk = `./${sdk}`;
  }
  return {
    compilerOptions: {
      target: "ES2022",
      module: "ESNext",
      moduleResolution: "Bundler",
      // The sandbox is a bare V8 isolate: the language and nothing else (no DOM, no Node).
      lib: ["ES2022"],
      types: [],
      strict: true,
      // Each file is compiled on its own (esbuild), as in production.
      isolatedModules: true,
      noEmit: true,
      skipLibCheck: true,
      paths: { callscript: [sdk] },
    },
    include: ["**/*.ts"],
  };
}

export interface TypeProblem {
  /** Absolute path. */
  file: string;
  line?: number;
  column?: number;
  /** `TS2551`. */
  code: string;
  /** One or two lines: the error, and the reason at the end of its chain; long types cut. */
  message: string;
}

/** The type check as the registry uses it: in a worker for the server (see typecheck-service.ts). */
export interface TypeChecking {
  /** The type errors of `files` (absolute; a script and its helpers) in the scripts folder `dir`. */
  check(dir: string, files: readonly string[]): Promise<TypeProblem[]>;
  close(): Promise<void>;
}

type TypeScript = typeof TS;

/** The compiler, loaded on first use: it takes most of a second to load. */
export async function loadTypeScript(): Promise<TypeScript> {
  return (await import("typescript")).default;
}

/** Every .ts file in the folder and its subfolders, but not node_modules or hidden folders. */
export function tsFilesOf(dir: string): string[] {
  const out: string[] = [];
  let entries;
  try {
    entries = readdirSync(dir, { withFileTypes: true });
  } catch {
    return out;
  }
  for (const entry of entries) {
    if (entry.name.startsWith(".") || entry.name === "node_modules") continue;
    const file = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...tsFilesOf(file));
    else if (/\.m?ts$/.test(entry.name)) out.push(file);
  }
  return out.sort();
}

function isInside(file: string, dir: string): boolean {
  const relative = path.relative(dir, file);
  return !relative.startsWith("..") && !path.isAbsolute(relative);
}

/** A quoted type longer than this is cut in messages: the SDK's names say more than its expansion. */
const MAX_TYPE_CHARS = 80;
/** Lines of a diagnostic's chain kept: its head and the reason at its end. */
const CHAIN_TAIL = 2;

/**
 * A diagnostic as an admin reads it: the head of its chain and the last lines (the actual
 * reason: "Type 'string' is not assignable to type 'boolean'"), quoted types past 80 characters
 * cut, and, for a global the sandbox lacks, what it offers instead of the compiler's advice to
 * install Node's types.
 */
export function shortMessage(ts: TypeScript, diagnostic: TS.Diagnostic): string {
  const lines = ts
    .flattenDiagnosticMessageText(diagnostic.messageText, "\n")
    .split("\n")
    .map((line) => line.trim())
    .filter(Boolean);
  const missing = /^Cannot find name '([\w$]+)'/.exec(lines[0] ?? "");
  if (missing) {
    const hint = sandboxHint(missing[1]!);
    if (hint) return `Cannot find name '${missing[1]}': ${hint}.`;
  }
  const kept = lines.length <= CHAIN_TAIL + 1 ? lines : [lines[0]!, ...lines.slice(-CHAIN_TAIL)];
  return kept.map(cutLongTypes).join(" ");
}

/** `'{ [x: string]: unknown; call_full: { ... } }'` → `'{ [x: string]: unknown; call_full: {…}'`. */
function cutLongTypes(line: string): string {
  return line.replace(/'((?:[^'\\]|\\.)*)'/g, (quoted, text: string) => (text.length <= MAX_TYPE_CHARS ? quoted : `'${text.slice(0, MAX_TYPE_CHARS - 1)}…'`));
}

/** One scripts folder's program, kept in a language service between checks. */
export class FolderTypeCheck {
  private readonly root: string;
  private readonly options: TS.CompilerOptions;
  private readonly globalsFile: string;
  private fileNames: string[] = [];
  private readonly service: TS.LanguageService;

  constructor(
    private readonly ts: TypeScript,
    dir: string,
  ) {
    this.root = path.resolve(dir);
    const { options, errors } = ts.convertCompilerOptionsFromJson(scriptsTsconfig(this.root, { absolute: true }).compilerOptions, this.root);
    if (errors.length > 0) throw new Error(ts.flattenDiagnosticMessageText(errors[0]!.messageText, "\n"));
    this.options = options;
    this.globalsFile = path.join(this.root, SANDBOX_GLOBALS_FILE);
    const virtual = (file: string) => file === this.globalsFile && !existsSync(file);
    const host: TS.LanguageServiceHost = {
      getCompilationSettings: () => this.options,
      getScriptFileNames: () => this.fileNames,
      // Files of the folder change under us; the SDK and the compiler's libs do not while we run.
      getScriptVersion: (file) => (isInside(file, this.root) ? versionOf(file) : "0"),
      getScriptSnapshot: (file) => {
        if (virtual(file)) return ts.ScriptSnapshot.fromString(SANDBOX_GLOBALS);
        const text = ts.sys.readFile(file);
        return text === undefined ? undefined : ts.ScriptSnapshot.fromString(text);
      },
      getCurrentDirectory: () => this.root,
      getDefaultLibFileName: (compilerOptions) => ts.getDefaultLibFilePath(compilerOptions),
      fileExists: (file) => virtual(file) || ts.sys.fileExists(file),
      readFile: (file) => (virtual(file) ? SANDBOX_GLOBALS : ts.sys.readFile(file)),
      readDirectory: ts.sys.readDirectory,
      directoryExists: ts.sys.directoryExists,
      getDirectories: ts.sys.getDirectories,
    };
    this.service = ts.createLanguageService(host, ts.createDocumentRegistry());
  }

  /**
   * The type errors of `files` (absolute paths inside the folder), against the folder as it is
   * now on disk: files added or removed since the last check are taken in.
   */
  check(files: readonly string[]): TypeProblem[] {
    const all = tsFilesOf(this.root);
    this.fileNames = all.includes(this.globalsFile) ? all : [...all, this.globalsFile];
    const problems: TypeProblem[] = [];
    for (const file of files) {
      const absolute = path.resolve(file);
      if (!isInside(absolute, this.root) || !this.fileNames.includes(absolute)) continue;
      const diagnostics = [...this.service.getSyntacticDiagnostics(absolute), ...this.service.getSemanticDiagnostics(absolute)];
      for (const diagnostic of diagnostics) {
        if (diagnostic.category !== this.ts.DiagnosticCategory.Error) continue;
        const returns = this.badReturns(diagnostic);
        if (returns.length > 0) {
          problems.push(...returns);
          continue;
        }
        const problem: TypeProblem = {
          file: diagnostic.file ? path.resolve(diagnostic.file.fileName) : absolute,
          code: `TS${diagnostic.code}`,
          message: shortMessage(this.ts, diagnostic),
        };
        if (diagnostic.file && diagnostic.start !== undefined) {
          const { line, character } = diagnostic.file.getLineAndCharacterOfPosition(diagnostic.start);
          problem.line = line + 1;
          problem.column = character + 1;
        }
        problems.push(problem);
      }
    }
    return problems;
  }

  /**
   * A hook handler whose return value does not fit its hook is reported by TypeScript at the
   * handler's name, with the handler's whole type. Found instead: each `return` of the handler
   * whose value does not fit, at its own line, with the value's type and the reason at the end of
   * the compiler's chain ("Type 'string' is not assignable to type 'boolean | undefined'").
   * Empty when the diagnostic is not of that kind (or no single return is to blame).
   */
  private badReturns(diagnostic: TS.Diagnostic): TypeProblem[] {
    const ts = this.ts;
    if (diagnostic.code !== 2322 || !diagnostic.file || diagnostic.start === undefined) return [];
    const program = this.service.getProgram();
    if (!program) return [];
    const checker = program.getTypeChecker();
    const name = findToken(ts, diagnostic.file, diagnostic.start);
    const owner = name?.parent;
    if (!owner || (owner as TS.NamedDeclaration).name !== name || !ts.isObjectLiteralExpression(owner.parent)) return [];
    const handler = ts.isMethodDeclaration(owner)
      ? owner
      : ts.isPropertyAssignment(owner) && (ts.isFunctionExpression(owner.initializer) || ts.isArrowFunction(owner.initializer))
        ? owner.initializer
        : undefined;
    if (!handler?.body || !ts.isBlock(handler.body) || handler.modifiers?.some((modifier) => modifier.kind === ts.SyntaxKind.AsyncKeyword)) return [];
    const expectedHandler = checker.getContextualType(owner.parent);
    const property = expectedHandler && checker.getPropertyOfType(expectedHandler, name.getText());
    const signature = property && checker.getSignaturesOfType(checker.getNonNullableType(checker.getTypeOfSymbol(property)), ts.SignatureKind.Call)[0];
    if (!signature) return [];
    const expected = signature.getReturnType();
    const reason = ts
      .flattenDiagnosticMessageText(diagnostic.messageText, "\n")
      .split("\n")
      .map((line) => line.trim())
      .filter(Boolean)
      .slice(1)
      .slice(-CHAIN_TAIL)
      .map(cutLongTypes)
      .join(" ");
    const problems: TypeProblem[] = [];
    const visit = (node: TS.Node): void => {
      if (ts.isFunctionLike(node)) return; // a nested function's returns are its own
      if (ts.isReturnStatement(node) && node.expression) {
        const type = checker.getTypeAtLocation(node.expression);
        if (!checker.isTypeAssignableTo(type, expected)) {
          const { line, character } = diagnostic.file!.getLineAndCharacterOfPosition(node.getStart());
          problems.push({
            file: path.resolve(diagnostic.file!.fileName),
            line: line + 1,
            column: character + 1,
            code: `TS${diagnostic.code}`,
            message:
              cutLongTypes(`${name.getText()} returns '${checker.typeToString(type)}', which does not fit '${checker.typeToString(expected)}'.`) +
              (reason ? ` ${reason}` : ""),
          });
        }
      }
      ts.forEachChild(node, visit);
    };
    ts.forEachChild(handler.body, visit);
    return problems;
  }

  /** Errors of the options or of files outside any script (the SDK not found): shown once by `check`. */
  globalProblems(): TypeProblem[] {
    return this.service
      .getCompilerOptionsDiagnostics()
      .filter((diagnostic) => diagnostic.category === this.ts.DiagnosticCategory.Error)
      .map((diagnostic) => ({ file: this.root, code: `TS${diagnostic.code}`, message: shortMessage(this.ts, diagnostic) }));
  }

  dispose(): void {
    this.service.dispose();
  }
}

/** The innermost node at `position` (an identifier, say). */
function findToken(ts: TypeScript, file: TS.SourceFile, position: number): TS.Node | undefined {
  let found: TS.Node | undefined;
  const visit = (node: TS.Node): void => {
    if (position < node.getStart(file) || position >= node.getEnd()) return;
    found = node;
    ts.forEachChild(node, visit);
  };
  ts.forEachChild(file, visit);
  return found;
}

function versionOf(file: string): string {
  try {
    const stats = statSync(file);
    return `${stats.mtimeMs}:${stats.size}`;
  } catch {
    return "gone";
  }
}

/**
 * Warm programs kept. A server reads its scripts from one folder, but each rollout by a flipped
 * link is another real path (a checkout per commit): without a bound, one program per commit
 * would stay.
 */
const FOLDERS_KEPT = 4;

/** The type check in this thread, one warm program per folder (`callscript check`, tests, the worker). */
export class InProcessTypeChecking implements TypeChecking {
  private ts: TypeScript | undefined;
  /** By last use, oldest first. */
  private readonly folders = new Map<string, FolderTypeCheck>();

  async folder(dir: string): Promise<FolderTypeCheck> {
    const root = path.resolve(dir);
    this.ts ??= await loadTypeScript();
    let folder = this.folders.get(root);
    if (folder) {
      this.folders.delete(root);
    } else {
      folder = new FolderTypeCheck(this.ts, root);
    }
    this.folders.set(root, folder);
    for (const [oldest, kept] of this.folders) {
      if (this.folders.size <= FOLDERS_KEPT) break;
      kept.dispose();
      this.folders.delete(oldest);
    }
    return folder;
  }

  async check(dir: string, files: readonly string[]): Promise<TypeProblem[]> {
    return (await this.folder(dir)).check(files);
  }

  async close(): Promise<void> {
    for (const folder of this.folders.values()) folder.dispose();
    this.folders.clear();
  }
}
