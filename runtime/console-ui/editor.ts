import { javascript } from "@codemirror/lang-javascript";
import { setDiagnostics, type Diagnostic } from "@codemirror/lint";
import { StateEffect, StateField, type Extension } from "@codemirror/state";
import { Decoration, EditorView, type DecorationSet } from "@codemirror/view";
import { basicSetup } from "codemirror";

/** A line of the draft that an error points at, marked until the text changes or another run. */
const markLine = StateEffect.define<number | null>();

const markedLine = StateField.define<DecorationSet>({
  create: () => Decoration.none,
  update(marks, transaction) {
    marks = marks.map(transaction.changes);
    for (const effect of transaction.effects) {
      if (!effect.is(markLine)) continue;
      if (effect.value === null) return Decoration.none;
      const line = transaction.state.doc.line(Math.min(Math.max(1, effect.value), transaction.state.doc.lines));
      marks = Decoration.set([Decoration.line({ class: "cs-error-line", attributes: { "data-error-line": String(effect.value) } }).range(line.from)]);
    }
    return marks;
  },
  provide: (field) => EditorView.decorations.from(field),
});

export interface DraftEditor {
  text(): string;
  setText(text: string): void;
  /** Mark the error at `line`:`column` (1-based) with its message; null clears. */
  markError(error: { line: number; column: number; message: string } | null): void;
  destroy(): void;
}

/** The Try page's editor: CodeMirror 6 with TypeScript highlighting. Loaded in a chunk of its own. */
export function createEditor(parent: HTMLElement, text: string, onChange: () => void): DraftEditor {
  const extensions: Extension[] = [
    basicSetup,
    javascript({ typescript: true }),
    markedLine,
    EditorView.updateListener.of((update) => {
      if (update.docChanged) onChange();
    }),
    EditorView.theme({ "&": { fontSize: "13px" }, ".cm-scroller": { fontFamily: "ui-monospace, SFMono-Regular, Menlo, monospace" } }),
  ];
  const view = new EditorView({ doc: text, extensions, parent });
  return {
    text: () => view.state.doc.toString(),
    setText(next) {
      view.dispatch({ changes: { from: 0, to: view.state.doc.length, insert: next }, effects: markLine.of(null) });
      view.dispatch(setDiagnostics(view.state, []));
    },
    markError(error) {
      if (!error) {
        view.dispatch({ effects: markLine.of(null) });
        view.dispatch(setDiagnostics(view.state, []));
        return;
      }
      const doc = view.state.doc;
      const line = doc.line(Math.min(Math.max(1, error.line), doc.lines));
      const from = Math.min(line.from + Math.max(0, error.column - 1), line.to);
      const diagnostic: Diagnostic = { from, to: Math.max(from, line.to), severity: "error", message: error.message };
      view.dispatch({ effects: markLine.of(error.line), selection: { anchor: from }, scrollIntoView: true });
      view.dispatch(setDiagnostics(view.state, [diagnostic]));
    },
    destroy: () => view.destroy(),
  };
}
