import { existsSync, realpathSync, unlinkSync, writeFileSync } from "node:fs";
import path from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import type { BatchReport } from "../../runtime/registry/watcher.js";
import type { HookAnswer } from "../../runtime/schema/envelope.js";
import { compiled, script, scriptsFolder } from "../helpers/scripts.js";
import { git, gitAsync, scriptsRepo } from "../helpers/scripts-git.js";
import { waitFor } from "../helpers/wait.js";
import { closeAll, setup, sleep, type Setup } from "./harness.js";

/**
 * A rollout of many scripts at once is one swap: every request runs the scripts of one release,
 * never some of the old and some of the new. Each script of the pipeline answers its own field with
 * its release's marker (two of them read it from a helper), so an answer shows which release of
 * each script ran. Real files, real git, the real pull script, real chokidar.
 */

afterEach(closeAll);

const HOOK = "process_registration_params";

/** Script `s<i>`: answers `S<i>` with its release, written in it or (s1, s2) read from lib/release.ts. */
function releaseScript(i: number, release: string): string {
  const viaHelper = i <= 2;
  return script(
    HOOK,
    `return { S${i}: ${viaHelper ? "RELEASE" : JSON.stringify(release)} };`,
    "",
    viaHelper ? `import { RELEASE } from "./lib/release";` : undefined,
  );
}

/** The files of a release: scripts `numbers`, the helper with its marker. */
function release(name: string, numbers: number[]): Record<string, string> {
  const files: Record<string, string> = { "lib/release.ts": `export const RELEASE = ${JSON.stringify(name)};\n` };
  for (const i of numbers) files[`s${i}.ts`] = releaseScript(i, name);
  return files;
}

/** What a request answers when every script of the pipeline is of `name`. */
function expected(name: string, numbers: number[]): Record<string, string> {
  return Object.fromEntries(numbers.map((i) => [`S${i}`, name]));
}

const R1 = { name: "r1", numbers: [1, 2, 3, 4, 5] };
const R2 = { name: "r2", numbers: [1, 2, 3, 4, 5] };
// r3 deletes s5 and adds s6.
const R3 = { name: "r3", numbers: [1, 2, 3, 4, 6] };
const RELEASES = [R1, R2, R3];

/** Files to commit to go from release `from` to release `to` (`null` deletes). */
function change(from: typeof R1, to: typeof R1): Record<string, string | null> {
  const files: Record<string, string | null> = release(to.name, to.numbers);
  for (const i of from.numbers) if (!to.numbers.includes(i)) files[`s${i}.ts`] = null;
  return files;
}

/** Call the hook in a loop until stopped; every answer kept. */
function keepCalling(s: Setup) {
  const answers: HookAnswer[] = [];
  let running = true;
  const done = (async () => {
    while (running) {
      answers.push(await s.call(HOOK, { CALL_ID: "c-1" }));
      await sleep(1);
    }
  })();
  return {
    answers,
    async stop() {
      running = false;
      await done;
      return answers;
    },
  };
}

/** The release an answer is wholly of, or a description of what is wrong with it. */
function releaseOf(answer: HookAnswer): string {
  if (answer.state !== "success") return `error answer: ${JSON.stringify(answer.error)}`;
  const { CALL_ID: _base, ...data } = answer.data;
  const whole = RELEASES.find((r) => JSON.stringify(data) === JSON.stringify(expected(r.name, r.numbers)));
  return whole ? whole.name : `mixed: ${JSON.stringify(data)}`;
}

/**
 * Every answer is of one whole release, and releases only move forward (the loop calls one request
 * after another). Returns the releases seen, in order.
 */
function checkAnswers(answers: readonly HookAnswer[]): string[] {
  const seen: string[] = [];
  for (const answer of answers) {
    const name = releaseOf(answer);
    if (seen.at(-1) !== name) seen.push(name);
  }
  expect(seen.filter((name) => !/^r\d$/.test(name))).toEqual([]);
  expect([...seen].sort()).toEqual(seen);
  return seen;
}

async function answersRelease(s: Setup, r: typeof R1): Promise<void> {
  await waitFor(async () => releaseOf(await s.call(HOOK, { CALL_ID: "c-1" })) === r.name, `every script answering ${r.name}`, 20_000);
}

/** What /scripts shows: each script of `r`, active, at the version its file in `dir` compiles to. */
async function expectVersions(s: Setup, dir: string, r: typeof R1): Promise<void> {
  const want = await Promise.all(r.numbers.map(async (i) => ({ name: `s${i}`, state: "active", version: (await compiled(dir, `s${i}.ts`)).version })));
  expect(s.registry.states().map(({ name, state, version }) => ({ name, state, version }))).toEqual(want);
}

describe("rollout of many scripts at once", () => {
  it("the pull script flips the link to a new checkout: the new folder is loaded whole, every answer is of one release, /scripts shows the new versions", async () => {
    const repo = await scriptsRepo(release(R1.name, R1.numbers));
    const batches: BatchReport[] = [];
    const s = await setup({}, { typecheck: "off" }, { scriptsDir: repo.scriptsDir, onBatch: (batch) => batches.push(batch) });
    // Helpers resolve through the link: all five load.
    expect(checkAnswers([await s.call(HOOK, { CALL_ID: "c-1" })])).toEqual(["r1"]);
    const calls = keepCalling(s);

    for (const [from, to] of [
      [R1, R2],
      [R2, R3],
    ] as const) {
      const before = batches.length;
      repo.commit(change(from, to), to.name);
      expect(await repo.pull()).toMatch(/^scripts now at [0-9a-f]{40}/);
      await answersRelease(s, to);
      await s.watcher.idle();
      await expectVersions(s, repo.scriptsDir, to);
      // One batch: the folder, loaded whole.
      const flips = batches.slice(before);
      expect(flips.map((batch) => batch.folder)).toEqual([realpathSync(path.join(repo.root, "releases", git(repo.source, "rev-parse", "HEAD"), "scripts"))]);
    }
    const seen = checkAnswers(await calls.stop());
    expect(seen).toEqual(["r1", "r2", "r3"]);
    expect(s.registry.states().some((state) => state.name === "s5")).toBe(false);
    expect(s.logs.filter((entry) => entry.message === "scripts folder flipped; loaded whole")).toHaveLength(2);

    // The watcher now watches the new checkout: a save there is picked up.
    writeFileSync(path.join(repo.scriptsDir, "s6.ts"), releaseScript(6, "edited"));
    await waitFor(
      async () => {
        const answer = await s.call(HOOK, { CALL_ID: "c-1" });
        return answer.state === "success" && answer.data.S6 === "edited";
      },
      "the save in the new checkout answering",
      20_000,
    );
  }, 90_000);

  it("a git pull in place that changes, deletes and adds scripts is one swap", async () => {
    const repo = await scriptsRepo(release(R1.name, R1.numbers));
    const work = path.join(path.dirname(repo.source), "work");
    git(path.dirname(work), "clone", "--quiet", repo.source, work);
    const s = await setup({}, { typecheck: "off" }, { scriptsDir: path.join(work, "scripts") });
    const calls = keepCalling(s);
    for (const [from, to] of [
      [R1, R2],
      [R2, R3],
    ] as const) {
      repo.commit(change(from, to), to.name);
      await gitAsync(work, "pull", "--quiet", "--ff-only");
      await answersRelease(s, to);
    }
    await s.watcher.idle();
    expect(checkAnswers(await calls.stop())).toEqual(["r1", "r2", "r3"]);
    await expectVersions(s, path.join(work, "scripts"), R3);
  }, 90_000);

  it("files rewritten in place in one go (no git), one of them deleted: one swap, the deletion with it", async () => {
    const dir = scriptsFolder(release(R1.name, R1.numbers));
    const s = await setup({}, { typecheck: "off" }, { scriptsDir: dir });
    const calls = keepCalling(s);
    await waitFor(() => calls.answers.length > 0, "a first answer");
    // As rsync or a copy would: every file of r3 written, then s5 removed.
    for (const [name, text] of Object.entries(release(R3.name, R3.numbers))) writeFileSync(path.join(dir, name), text);
    unlinkSync(path.join(dir, "s5.ts"));
    await answersRelease(s, R3);
    await s.watcher.idle();
    expect(checkAnswers(await calls.stop())).toEqual(["r1", "r3"]);
    await expectVersions(s, dir, R3);
  }, 60_000);

  it("while git's index lock exists (a checkout writing the folder), the batch waits for git to finish", async () => {
    const dir = scriptsFolder(release(R1.name, R1.numbers));
    git(dir, "init", "--quiet");
    const lock = path.join(dir, ".git", "index.lock");
    const batches: BatchReport[] = [];
    const s = await setup({}, { typecheck: "off" }, { scriptsDir: dir, onBatch: (batch) => batches.push(batch) });
    const calls = keepCalling(s);
    writeFileSync(lock, "");
    const files = Object.entries(release(R2.name, R2.numbers));
    // Half the files, then a pause far past the batch's usual wait (150 ms), then the rest.
    for (const [name, text] of files.slice(0, 3)) writeFileSync(path.join(dir, name), text);
    await sleep(600);
    expect(batches).toEqual([]);
    expect(releaseOf(await s.call(HOOK, { CALL_ID: "c-1" }))).toBe("r1");
    for (const [name, text] of files.slice(3)) writeFileSync(path.join(dir, name), text);
    await sleep(50);
    unlinkSync(lock);
    await answersRelease(s, R2);
    await s.watcher.idle();
    expect(checkAnswers(await calls.stop())).toEqual(["r1", "r2"]);
    expect(batches).toHaveLength(1);
    expect(batches[0]!.files.sort()).toEqual(files.map(([name]) => name).sort());
    expect(existsSync(lock)).toBe(false);
  }, 60_000);
});
