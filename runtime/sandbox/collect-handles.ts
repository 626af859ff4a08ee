import vm from "node:vm";

/**
 * A full collection of this thread's heap, now, while isolated-vm's state for the thread is still
 * there: the weak callbacks of the isolated-vm handles that died since the last one (disposed
 * isolates, their contexts, scripts and references) run now, not as the thread ends. When a
 * thread ends, node removes isolated-vm's state first and then does its own last work: under
 * NODE_V8_COVERAGE (c8) it writes the thread's coverage, under `--cpu-prof` or `--heap-prof` its
 * profile. A collection that work triggered ran those callbacks without isolated-vm's state, and
 * isolated-vm 5 aborted the whole process on an assertion (`IsolateEnvironment::GetCurrent():
 * Assertion environment != nullptr`): a load-probe worker ending, or the server stopping on SIGTERM.
 *
 * vm.measureMemory is the one full collection node offers without --expose-gc, which would give
 * every new context, the scripts' own, a global gc(). Node flags it experimental and says so once;
 * that warning would tell an admin nothing, so it is not printed. Only the call itself is covered:
 * any other warning of the thread meanwhile is printed as ever.
 */
export async function collectDeadHandles(): Promise<void> {
  const emitWarning = process.emitWarning;
  process.emitWarning = () => undefined;
  let measured: Promise<unknown>;
  try {
    measured = vm.measureMemory({ mode: "summary", execution: "eager" });
  } catch {
    return;
  } finally {
    process.emitWarning = emitWarning;
  }
  await measured.catch(() => undefined);
}
