import { listening, serve, type Served } from "../server/serve-process.js";

/**
 * Several `callscript serve` instances behind Debian's nginx running deploy/nginx.conf, all on
 * loopback, as test/deploy/cluster.test.ts starts them (nginx itself: nginx.mjs, shared with
 * bench/cluster.mjs).
 */

export { freePort, nginxAvailable, startNginx, type Nginx } from "./nginx.mjs";

/** One instance: `serve` on a fixed port, so that nginx's upstream finds it again after a restart. */
export interface Instance {
  port: number;
  served: Served;
  address: string;
}

export async function startInstance(port: number, configFile: string, env: Record<string, string> = {}): Promise<Instance> {
  const served = serve(["--config", configFile, "--port", String(port)], env);
  const address = await listening(served);
  return { port, served, address };
}

/** `/readyz` of an instance answers 200. */
export async function ready(address: string): Promise<boolean> {
  try {
    return (await fetch(`${address}/readyz`)).status === 200;
  } catch {
    return false;
  }
}

/** What an instance's /scripts shows of each script: name → version (null when none serves). */
export async function versionsOf(address: string): Promise<Record<string, string | null>> {
  const response = await fetch(`${address}/scripts`);
  if (response.status !== 200) throw new Error(`GET ${address}/scripts answered ${response.status}`);
  const body = (await response.json()) as { scripts: { name: string; version: string | null }[] };
  return Object.fromEntries(body.scripts.map((script) => [script.name, script.version]));
}
