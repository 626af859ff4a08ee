// What scripts have inside the callscript sandbox beyond the language itself (written by callscript init).
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
