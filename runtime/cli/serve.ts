import { statSync } from "node:fs";
import path from "node:path";
import type { Command } from "commander";
import { pino, type Logger } from "pino";
import { CapabilityHost } from "../capabilities/capabilities.js";
import { parseKvUrl } from "../capabilities/config.js";
import { checkedGrants, configGrants } from "../config-capabilities.js";
import { WorkerTypeChecking } from "../compile/typecheck-service.js";
import { deadlineFor, loadConfig, type Config } from "../config.js";
import { ConfigError, UsageError, exitCodeOf } from "../errors.js";
import { configReloader, type ConfigReloader } from "../registry/config-reload.js";
import { ScriptRegistry, type ReloadResult } from "../registry/registry.js";
import { watchScripts, type ScriptWatcher } from "../registry/watcher.js";
import { hookNames } from "../schema/hooks.js";
import type { CallscriptServer } from "../server/app.js";
import { storeLog } from "../server/capability-events.js";
import { Catastrophe } from "../server/catastrophe.js";
import { assertSafeBinding } from "../server/auth.js";
import { logDestination } from "../server/log-destination.js";
import { flushThenAbort, handleSignals, summarizeReload } from "../server/shutdown.js";
import { checkScriptNames } from "./inputs.js";
import { isolatedVmWarning, loadIsolatedVm } from "../sandbox/ivm.js";
import { watchLoopLoad } from "../sandbox/loop-load.js";

interface ServeOptions {
  scripts?: string;
  config?: string;
  host?: string;
  port?: string;
  watch?: boolean;
}

/**
 * `callscript serve`: load the config and the scripts, listen, and keep serving until SIGTERM or
 * SIGINT (graceful) — SIGHUP reloads every script. Exit codes: 0 stopped cleanly, 1 could not
 * start or stop (port in use...), 2 the command or the config is wrong.
 */
export function registerServe(program: Command): void {
  program
    .command("serve")
    .description("Serve the scripts to the connector over HTTP: POST /hooks/<hook>")
    .option("--scripts <dir>", "the scripts folder (default: scriptsDir of the config, else ./scripts)")
    .option("--config <file>", "the config file, JSON or YAML (CALLSCRIPT_* variables override it; these options override both)")
    .option("--host <host>", "the address to listen on (default 127.0.0.1; beyond loopback a token is required)")
    .option("--port <port>", "the port to listen on (default 8787; 0 picks a free one)")
    .option("--no-watch", "do not reload a script when its file changes (SIGHUP still reloads them all)")
    .action(async (options: ServeOptions, command: Command) => {
      process.exitCode = await serve(options, command.getOptionValueSource("watch") === "cli");
    });
}

function startupFailure(error: unknown): number {
  const coded = error as { code?: string; message?: string };
  console.error(`callscript: ${coded.message ?? String(error)}`);
  return exitCodeOf(error);
}

function readConfig(options: ServeOptions, noWatch: boolean): Config {
  const port = options.port === undefined ? undefined : /^\d+$/.test(options.port) ? Number(options.port) : options.port;
  const config = loadConfig({
    ...(options.config !== undefined ? { file: options.config } : {}),
    overrides: {
      scriptsDir: options.scripts,
      host: options.host,
      port: port as number | undefined,
      watch: noWatch ? false : undefined,
    },
  });
  // A secret granted to a script but without a value is a config error, at start and on a reload.
  checkedGrants(config, options.config);
  return config;
}

/** What the log may say of the capabilities in force: the store, which secrets are set where (never their values), who may fetch. */
function capabilitiesSummary(config: Config): object {
  const { secrets, warnings } = configGrants(config);
  const kv = parseKvUrl(config.kv.url, ".");
  return {
    kv: kv.ok ? (kv.location.kind === "sqlite" ? `sqlite:${kv.location.file}` : kv.location.shown) : config.kv.url,
    secrets: Object.fromEntries([...secrets].map(([name, secret]) => [name, secret.from])),
    fetch: Object.fromEntries(Object.entries(config.scripts).flatMap(([name, entry]) => (entry.fetch ? [[name, entry.fetch.allow]] : []))),
    ...(warnings.length > 0 ? { warnings } : {}),
  };
}

function logGrantWarnings(log: Logger, config: Config): void {
  for (const warning of configGrants(config).warnings) log.warn({ warning }, `configuration: ${warning}`);
}

/** One CapabilityHost for the server's life: the config's grants (updated on reload), its kv store, its network. */
function capabilityHost(config: Config, configFile: string | undefined, log: Logger) {
  const { scripts, secrets } = configGrants(config);
  return (hooks: ConstructorParameters<typeof CapabilityHost>[0]["hooks"]) =>
    new CapabilityHost({
      scripts,
      secrets,
      kv: config.kv,
      baseDir: configFile ? path.dirname(path.resolve(configFile)) : process.cwd(),
      ...(hooks ? { hooks } : {}),
      ...storeLog(log),
    });
}

function configFrom(options: ServeOptions, noWatch: boolean): Config {
  const config = readConfig(options, noWatch);
  assertSafeBinding(config);
  let folder: boolean;
  try {
    folder = statSync(config.scriptsDir).isDirectory();
  } catch {
    folder = false;
  }
  if (!folder) throw new UsageError(`The scripts folder ${config.scriptsDir} does not exist (--scripts, or scriptsDir in the config)`);
  return config;
}

async function serve(options: ServeOptions, noWatch: boolean): Promise<number> {
  let config: Config;
  try {
    config = configFrom(options, noWatch);
  } catch (error) {
    return startupFailure(error);
  }

  // The HTTP server's modules (fastify and its plugins, the metrics, the console: about a third of
  // the start's imports) load while the scripts compile in esbuild's process and load in their
  // isolates' threads, instead of before: on two cores a first start of 500 scripts was ready
  // ≈ 0.3 s sooner (docs/benchmarks.md, "Cold start: the server's modules load beside the scripts").
  const serverModule = import("../server/app.js");
  serverModule.catch(() => undefined);
  const logLines = logDestination();
  const log = pino({ level: config.logLevel }, logLines.stream);
  try {
    const { line, version, patched } = loadIsolatedVm();
    log.info({ node: process.versions.node, isolatedVm: version, package: line, patched }, "sandbox runtime");
    const warning = isolatedVmWarning();
    if (warning) log.warn({ node: process.versions.node, isolatedVm: version }, warning);
  } catch (error) {
    return startupFailure(error);
  }
  // V8 lost control of an isolate: the process can no longer be trusted. Once serving, the hook
  // route answers every request in flight with an error and handleSignals ends the process (the
  // service manager restarts it); before that there is nothing to answer.
  const catastrophe = new Catastrophe();
  let serving = false;
  const onCatastrophicError = (script: string, message: string) => {
    catastrophe.trip(script, message);
    if (serving) return;
    log.fatal({ script, error: message }, "isolated-vm reported a catastrophic error while loading the scripts; ending the process");
    flushThenAbort(log);
  };
  // The type checker's worker starts with the first check, so `typecheck: off` never starts it.
  const loopLoad = watchLoopLoad();
  const registry = new ScriptRegistry(config, log, { onCatastrophicError, typeChecking: new WorkerTypeChecking({ quiet: () => loopLoad.quiet }), loopLoad });
  let app: CallscriptServer | undefined;
  let watcher: ScriptWatcher | undefined;
  let reloader: ConfigReloader | undefined;
  let capabilities: CapabilityHost | undefined;
  let loading: Promise<ReloadResult[]> | undefined;
  try {
    checkScriptNames(config, config.scriptsDir, options.config);
    const makeHost = capabilityHost(config, options.config, log);
    log.info(capabilitiesSummary(config), "capabilities (docs/capabilities.md)");
    logGrantWarnings(log, config);
    // The watcher starts before the first load, so that no save falls between the two.
    if (config.watch) {
      watcher = watchScripts(registry, log);
      await watcher.ready;
    }
    loading = registry.loadAll();
    loading.catch(() => undefined);
    const { buildServer } = await serverModule;
    app = buildServer({ config, registry, logger: log, logLines, catastrophe, capabilities: (hooks) => (capabilities = makeHost(hooks)) });
    loopLoad.countConnections(app.server);
    await app.ready();
    const results = await loading;
    // Settings the config gives a script that it does not declare: the config is wrong, as a typo is.
    const settingsProblems = results.flatMap((result) =>
      !result.ok && "problem" in result && result.problem.stage === "config" ? [result.problem.message] : [],
    );
    if (settingsProblems.length > 0) throw new ConfigError(options.config ?? "the configuration", settingsProblems.join("; "));
    const { loaded, failed } = summarizeReload(results);
    if (loaded.length + failed.length === 0) {
      log.warn({ scriptsDir: config.scriptsDir }, "no scripts in the scripts folder: every hook answers its defaults");
    } else {
      (failed.length > 0 ? log.warn : log.info).call(
        log,
        { scriptsDir: config.scriptsDir, loaded, failed },
        `scripts: ${loaded.length} loaded, ${failed.length} failed`,
      );
    }
    await app.listen({ host: config.host, port: config.port });
    const graceMs = Math.max(...hookNames.map((hook) => deadlineFor(config, hook))) + 5_000;
    reloader = configReloader({
      registry,
      log,
      read: () => readConfig(options, noWatch),
      file: options.config,
      watch: config.watch,
      ...(watcher ? { exclusive: watcher.exclusive } : {}),
      onApplied: (next) => {
        log.level = next.logLevel;
        // New grants and secret values for the next invocations; the kv store stays (kv needs a restart).
        const grants = configGrants(next);
        capabilities?.updateGrants(grants.scripts, grants.secrets);
        logGrantWarnings(log, next);
      },
    });
    await reloader.ready;
    const stopReloader = reloader;
    handleSignals({
      app,
      registry,
      watcher: watcher && {
        reloadAll: () => watcher!.reloadAll(),
        close: () => Promise.all([watcher!.close(), stopReloader.close()]).then(() => undefined),
      },
      reloadConfig: () => stopReloader.reload("SIGHUP"),
      capabilities,
      log,
      graceMs,
      catastrophe,
    });
    serving = true;
    const addresses = app
      .addresses()
      .flatMap((address) =>
        typeof address === "string" ? [] : [`http://${address.family === "IPv6" ? `[${address.address}]` : address.address}:${address.port}`],
      );
    log.info({ address: addresses[0], addresses, scriptsDir: config.scriptsDir, watch: config.watch, token: config.token !== undefined }, "callscript serving");
    // Out at once, not with the next batch of lines (log-destination.ts): whoever started the server waits for it.
    log.flush();
    console.error(
      `callscript: serving ${loaded.length} script${loaded.length === 1 ? "" : "s"} from ${config.scriptsDir} at ${addresses.join(", ")} ` +
        `(POST /hooks/<hook>${config.token ? ", bearer token required" : ""}; GET /docs, /scripts, /metrics${config.console.enabled ? ", /console" : ""})`,
    );
    return 0;
  } catch (error) {
    // A first load still running (the server could not be built) ends before the registry closes.
    await loading?.catch(() => undefined);
    await app?.close().catch(() => undefined);
    await watcher?.close().catch(() => undefined);
    await reloader?.close().catch(() => undefined);
    await registry.close().catch(() => undefined);
    loopLoad.close();
    await capabilities?.close().catch(() => undefined);
    return startupFailure(error);
  }
}
