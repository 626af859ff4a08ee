import path from "node:path";
import { originalPositionFor, TraceMap } from "@jridgewell/trace-mapping";
import type { SourceLocation } from "../schema/envelope.js";

/** Where a bundle position came from, classified for what an admin should see. */
interface MappedFrame {
  file: string;
  line: number;
  column: number;
  /** In the admin's scripts folder (not the SDK or the prelude). */
  own: boolean;
  /** The runtime's own prelude: hidden from stacks. */
  internal: boolean;
}

const FRAME = /callscript:\/\/([^\s:)]+)\.js:(\d+):(\d+)/g;

/**
 * Maps stack traces of one bundle back to its `.ts` sources, so that errors point at the admin's
 * own line rather than at generated code.
 */
export class BundleSourceMap {
  private traceMap: TraceMap | undefined;

  /**
   * `lineOffset`: lines of the prelude, which the bundle's positions count after (see
   * script-context.ts); frames on them are the runtime's own.
   */
  constructor(
    private readonly sourceMapJson: string,
    private readonly scriptsDir: string,
    private readonly lineOffset = 0,
  ) {}

  private map(): TraceMap {
    this.traceMap ??= new TraceMap(this.sourceMapJson);
    return this.traceMap;
  }

  /** V8 positions are 1-based lines and columns. */
  frame(line: number, column: number): MappedFrame | undefined {
    if (line <= this.lineOffset) return undefined;
    const position = originalPositionFor(this.map(), { line: line - this.lineOffset, column: Math.max(0, column - 1) });
    if (position.source === null || position.line === null) return undefined;
    // esbuild writes source map sources as URL paths: `hé.ts` is `h%C3%A9.ts` there.
    const source = decodeSource(position.source);
    const absolute = path.resolve(this.scriptsDir, source);
    const relative = path.relative(this.scriptsDir, absolute);
    const outside = relative.startsWith("..") || path.isAbsolute(relative);
    // The prelude and the generated entry module are ours, not the admin's.
    const internal = /runtime[\\/]sandbox[\\/]guest[\\/]/.test(absolute) || source.startsWith("<") || source.includes("callscript-entry:");
    const file = outside ? displayOutside(absolute) : relative;
    return { file, line: position.line, column: position.column + 1, own: !outside && !internal, internal };
  }

  /**
   * The stack with bundle positions replaced by source positions; prelude frames, frames of
   * generated code (no source) and the host's frames past the isolate boundary dropped.
   */
  mapStack(stack: string): { stack: string; location?: SourceLocation } {
    let location: SourceLocation | undefined;
    const lines: string[] = [];
    for (const line of stack.split("\n")) {
      // isolated-vm appends the host's async stack to errors that cross into the host.
      if (line.includes("<isolated-vm boundary>")) break;
      let internal = false;
      const mapped = line.replace(FRAME, (whole, _name: string, lineText: string, columnText: string) => {
        const frame = this.frame(Number(lineText), Number(columnText));
        if (!frame) {
          internal = true;
          return whole;
        }
        if (frame.internal) internal = true;
        if (frame.own && !location) location = { file: frame.file, line: frame.line, column: frame.column };
        return `${frame.file}:${frame.line}:${frame.column}`;
      });
      if (!internal) lines.push(mapped);
    }
    return location ? { stack: lines.join("\n"), location } : { stack: lines.join("\n") };
  }
}

function decodeSource(source: string): string {
  try {
    return decodeURIComponent(source);
  } catch {
    return source;
  }
}

/** SDK frames read as `callscript/sdk/phone.ts`, not as an absolute path of the host. */
function displayOutside(absolute: string): string {
  const sdk = absolute.lastIndexOf(`${path.sep}sdk${path.sep}`);
  return sdk >= 0 ? `callscript${absolute.slice(sdk).split(path.sep).join("/")}` : path.basename(absolute);
}
