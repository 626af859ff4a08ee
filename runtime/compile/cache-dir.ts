import { lstatSync, mkdirSync, realpathSync, statSync } from "node:fs";
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

/**
 * A file or folder owned by this process's user and writable by no one else, in a folder no one
 * else can write to either (or replace it in); always true where there are no uids. What is read
 * back from the cache folder (bundles, V8's compiled code) must be ours alone.
 */
export function ownedAlone(file: string): boolean {
  const uid = process.getuid?.();
  if (uid === undefined) return true;
  return [file, path.dirname(file)].every((each) => {
    const stats = statSync(each);
    return stats.uid === uid && (stats.mode & 0o022) === 0;
  });
}

/**
 * Every folder from `dir` up to the root, as given and as its links resolve, is this user's or
 * root's and can be changed by no one else: not writable by group or others, unless sticky (/tmp
 * lets others add entries, not replace ours). A link along the way must be ours or root's too.
 */
export function privateFolder(dir: string): boolean {
  const uid = process.getuid?.();
  if (uid === undefined) return true;
  const chainIsPrivate = (start: string): boolean => {
    for (let each = start; ; each = path.dirname(each)) {
      const stats = lstatSync(each);
      if (stats.uid !== uid && stats.uid !== 0) return false;
      if (!stats.isSymbolicLink() && (stats.mode & 0o022) !== 0 && (stats.mode & 0o1000) === 0) return false;
      if (path.dirname(each) === each) return true;
    }
  };
  return chainIsPrivate(path.resolve(dir)) && chainIsPrivate(realpathSync(dir));
}

/**
 * Node 22.1+: V8's compiled code of the command line kept between starts (module.enableCompileCache)
 * in the cache folder, so that a start does not compile the bundle again (a server with one script
 * ready in 501 against 585 ms on Node 24, medians of 8 alternated starts). Only in a folder no one
 * else can change: V8 runs that code as it finds it, in the server's own process. Node 20 has no
 * such cache; Node's own NODE_DISABLE_COMPILE_CACHE=1 turns it off. Returns the folder when it is on.
 */
export function keepCompiledCode(
  enable: ((dir: string) => { status: number; directory?: string }) | undefined,
  env: NodeJS.ProcessEnv = process.env,
): string | undefined {
  if (typeof enable !== "function") return undefined;
  const dir = path.join(cacheDir(env), "node-compile-cache");
  try {
    mkdirSync(dir, { recursive: true, mode: 0o700 });
    if (!privateFolder(dir)) return undefined;
    return enable(dir).directory;
  } catch {
    // Only slower.
    return undefined;
  }
}
