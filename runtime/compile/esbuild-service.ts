import * as esbuild from "esbuild";

/** esbuild builds running now, for releaseEsbuild. */
let buildsRunning = 0;

/** esbuild.build, counted, so that releaseEsbuild never stops the service under a build. */
export async function build(options: esbuild.BuildOptions): Promise<esbuild.BuildResult> {
  buildsRunning++;
  try {
    return await esbuild.build(options);
  } finally {
    buildsRunning--;
  }
}

/**
 * esbuild's service keeps its read buffer at twice the largest answer it ever got for as long as it
 * runs: after a batch compile, 3 MB of a 500-script server's memory. Stopping the service while no
 * build runs gives that back; the next build (a save) starts a new one, about 10 ms once.
 */
export function releaseEsbuild(): void {
  if (buildsRunning === 0) void esbuild.stop();
}
