import os from "node:os";
import path from "node:path";

/**
 * Where what is kept between runs of the server lives: the type check's results
 * (typecheck-cache.ts) and the bundles (compile-cache.ts). systemd's CacheDirectory,
 * CALLSCRIPT_CACHE_DIR, else a folder of the user's in the temp dir. (The folder is named
 * `typecheck` for the results that were kept there first.)
 */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  const systemd = env.CACHE_DIRECTORY?.split(":")[0];
  return env.CALLSCRIPT_CACHE_DIR || (systemd ? path.join(systemd, "typecheck") : path.join(os.tmpdir(), `callscript-${os.userInfo().uid}`, "typecheck"));
}
