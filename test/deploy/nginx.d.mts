/** Types of nginx.mjs (plain JavaScript, shared with bench/cluster.mjs). */
export declare const NGINX: string;
export declare const nginxAvailable: boolean;
export declare function freePort(): Promise<number>;
export declare function nginxConfFor(instancePorts: readonly number[], listenPort: number, options?: { workers?: number | "auto" }): string;
export interface Nginx {
  address: string;
  /** The master's pid and its workers' (for their CPU time). */
  pids(): number[];
  /** Stops nginx (SIGQUIT: it finishes what it holds) and removes its folder. */
  stop(): Promise<void>;
}
export declare function startNginx(instancePorts: readonly number[], options?: { workers?: number | "auto" }): Promise<Nginx>;
export declare function cpuMsOf(pid: number): number;
