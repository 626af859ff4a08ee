import { parse } from "acorn";
import type { SourceLocation } from "../schema/envelope.js";
import type { BundleSourceMap } from "./source-map.js";

/**
 * Where a handler returned invalid data, for an `invalid_output` answer: the `return` statement,
 * found in the script's bundle (parsed with acorn, only when such an answer comes, once per
 * version) and mapped to its .ts line; else the hook's entry in `defineScript({ hooks })`, which
 * names the handler. The return is found when the handler is written in the script's `hooks` and
 * has one return, or one that returns an object literal with the key the problem is about (or
 * `null`, or an array, when that is what came back).
 */
export class ReturnSites {
  private handlers: Map<string, FunctionLike> | undefined | null;
  private readonly found = new Map<string, SourceLocation | null>();

  constructor(
    private readonly bundle: string,
    private readonly sourceMap: BundleSourceMap,
    /** Lines ahead of the bundle in the isolate's source text (the prelude's). */
    private readonly lineOffset: number,
  ) {}

  /**
   * `shape` narrows the returns to those whose value looks like the bad one: an object literal
   * with this key, or `null` / an array literal when the handler returned that.
   */
  locate(hook: string, shape: ReturnShape): SourceLocation | undefined {
    const cacheKey = `${hook}\u0000${shape.key ?? ""}\u0000${shape.kind ?? ""}`;
    if (!this.found.has(cacheKey)) this.found.set(cacheKey, this.search(hook, shape) ?? null);
    return this.found.get(cacheKey) ?? undefined;
  }

  private search(hook: string, shape: ReturnShape): SourceLocation | undefined {
    const handler = this.handlersByName()?.get(hook);
    if (!handler) return undefined;
    const returns = returnsOf(handler);
    const fitting = returns.filter((node) => fits(node.argument, shape));
    const site = fitting.length === 1 ? fitting[0] : returns.length === 1 ? returns[0] : undefined;
    return this.map(site ?? handler.key);
  }

  /** The functions written as properties of an object that is itself the value of a `hooks` property. */
  private handlersByName(): Map<string, FunctionLike> | undefined {
    if (this.handlers === undefined) {
      try {
        const program = parse(this.bundle, { ecmaVersion: "latest", sourceType: "script", locations: true }) as unknown as AnyNode;
        const handlers = new Map<string, FunctionLike>();
        const ambiguous = new Set<string>();
        walk(program, (node) => {
          const hooks = node.value as AnyNode | undefined;
          if (node.type !== "Property" || propertyName(node) !== "hooks" || hooks?.type !== "ObjectExpression") return;
          for (const property of hooks.properties ?? []) {
            const name = propertyName(property);
            const value = property.value as AnyNode | undefined;
            if (name === undefined || !value) continue;
            if (handlers.has(name)) ambiguous.add(name);
            // A handler written elsewhere (`need_registration: check`) is found by its entry only.
            const written = value.body && FUNCTION_TYPES.has(value.type);
            handlers.set(name, {
              key: property.key!,
              ...(written ? { body: value.body } : {}),
              expressionBody: value.type === "ArrowFunctionExpression" && value.expression === true,
            });
          }
        });
        for (const name of ambiguous) handlers.delete(name);
        this.handlers = handlers;
      } catch {
        this.handlers = null;
      }
    }
    return this.handlers ?? undefined;
  }

  private map(node: AnyNode | undefined): SourceLocation | undefined {
    if (!node?.loc) return undefined;
    const frame = this.sourceMap.frame(this.lineOffset + node.loc.start.line, node.loc.start.column + 1);
    return frame?.own ? { file: frame.file, line: frame.line, column: frame.column } : undefined;
  }
}

export interface ReturnShape {
  /** The returned object's first key on the bad path (`data.count…` → `count`). */
  key?: string;
  /** What the handler returned, when it was not an object. */
  kind?: "null" | "array" | "primitive";
}

/** The shape of the bad value, from the prelude's or the dispatcher's message and path. */
export function shapeOf(message: string, key?: string): ReturnShape {
  if (key !== undefined) return { key };
  const path = /^data(?:\.([A-Za-z_$][\w$]*)|\["((?:[^"\\]|\\.)*)"\])/.exec(message);
  if (path) return { key: path[1] ?? JSON.parse(`"${path[2]}"`) };
  if (message.startsWith("The handler returned null")) return { kind: "null" };
  if (message.startsWith("The handler returned an array")) return { kind: "array" };
  if (message.startsWith("The handler returned a ")) return { kind: "primitive" };
  return {};
}

/** An ESTree node as acorn makes it, with the fields read here. */
interface AnyNode {
  type: string;
  loc?: { start: { line: number; column: number } };
  key?: AnyNode;
  value?: unknown;
  body?: AnyNode;
  expression?: boolean;
  computed?: boolean;
  name?: string;
  argument?: AnyNode | null;
  properties?: AnyNode[];
  raw?: string;
  [child: string]: unknown;
}

interface FunctionLike {
  key: AnyNode;
  /** Absent when the hook's entry refers to a function written elsewhere. */
  body?: AnyNode;
  /** An arrow function whose body is its returned expression. */
  expressionBody: boolean;
}

const FUNCTION_TYPES = new Set(["FunctionExpression", "ArrowFunctionExpression", "FunctionDeclaration"]);

function propertyName(node: AnyNode): string | undefined {
  if (node.type !== "Property" || node.computed || !node.key) return undefined;
  if (node.key.type === "Identifier") return node.key.name;
  if (node.key.type === "Literal" && typeof node.key.value === "string") return node.key.value;
  return undefined;
}

/** The handler's return statements (an arrow's expression body counts as one), not those of functions inside it. */
function returnsOf(handler: FunctionLike): AnyNode[] {
  const body = handler.body;
  if (!body) return [];
  if (handler.expressionBody) return [{ type: "ReturnStatement", argument: body, ...(body.loc ? { loc: body.loc } : {}) }];
  const found: AnyNode[] = [];
  walk(
    body,
    (node) => {
      if (node.type === "ReturnStatement") found.push(node);
    },
    (node) => FUNCTION_TYPES.has(node.type),
  );
  return found;
}

function fits(argument: AnyNode | null | undefined, shape: ReturnShape): boolean {
  if (!argument) return false;
  if (shape.key !== undefined) {
    return argument.type === "ObjectExpression" && (argument.properties ?? []).some((property) => propertyName(property) === shape.key);
  }
  if (shape.kind === "null") return argument.type === "Literal" && argument.raw === "null";
  if (shape.kind === "array") return argument.type === "ArrayExpression";
  if (shape.kind === "primitive") return argument.type === "Literal" || argument.type === "TemplateLiteral";
  return false;
}

/** Depth-first over every node under `node`; `skip` stops the descent into a node (not the visit). */
function walk(node: AnyNode, visit: (node: AnyNode) => void, skip?: (node: AnyNode) => boolean): void {
  const stack: AnyNode[] = [node];
  while (stack.length > 0) {
    const current = stack.pop()!;
    visit(current);
    if (current !== node && skip?.(current)) continue;
    for (const key of Object.keys(current)) {
      if (key === "loc" || key === "start" || key === "end" || key === "type") continue;
      const child = current[key];
      if (Array.isArray(child)) {
        for (let i = child.length - 1; i >= 0; i--) if (isNode(child[i])) stack.push(child[i] as AnyNode);
      } else if (isNode(child)) stack.push(child as AnyNode);
    }
  }
}

function isNode(value: unknown): boolean {
  return value !== null && typeof value === "object" && typeof (value as { type?: unknown }).type === "string";
}
