/**
 * How a supervisor stops a long-running command (`serve`, `batch`): SIGTERM
 * or SIGINT to the process, or the end of the npm process that started it.
 *
 * `npm start` and `npx rcnn-serve ...` run the command under npm and `sh -c`.
 * A SIGTERM to npm (what a supervisor that started npm sends) ends npm and the
 * shell without passing it on, and a SIGKILL cannot be passed on: the command
 * lived on as an orphan holding its port. So a command started by npm also
 * watches the chain of processes above it up to npm, and stops as on SIGTERM
 * once a link of it is gone (its parent changes).
 */

import { readFileSync } from 'node:fs';

/** How often the launcher chain is checked, ms. */
const WATCH_INTERVAL_MS = 500;

/** The parent pid of `pid` (Linux /proc), or undefined where it cannot be read. */
function parentOf(pid: number): number | undefined {
  try {
    // "pid (comm) state ppid ...": comm may hold spaces and parentheses, so read after the last ')'.
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** The command name of `pid` (Linux /proc), or '' where it cannot be read. */
function commandOf(pid: number): string {
  try {
    return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').filter(Boolean).join(' ');
  } catch {
    return '';
  }
}

/**
 * The processes above this one up to the npm process that started it: [parent, grandparent, ...]
 * (just [parent] where /proc cannot be read or npm is not found within a few links).
 */
export function launcherChain(env: NodeJS.ProcessEnv = process.env): number[] {
  if (env.npm_command === undefined) return [];
  const chain = [process.ppid];
  for (let pid = process.ppid; chain.length < 4; ) {
    if (/(^|[/ ])(npm|npx)([ ]|$)|npm-cli\.js|npx-cli\.js/.test(commandOf(pid))) return chain;
    const parent = parentOf(pid);
    if (parent === undefined || parent <= 1) break;
    chain.push(parent);
    pid = parent;
  }
  return [process.ppid];
}

/** Whether every link of the chain still has the parent it had: the launcher is alive. */
function chainIntact(chain: readonly number[]): boolean {
  if (chain.length === 0) return true;
  if (process.ppid !== chain[0]) return false;
  for (let i = 1; i < chain.length; i++) {
    const parent = parentOf(chain[i - 1]!);
    if (parent !== undefined && parent !== chain[i]) return false;
  }
  return true;
}

/**
 * Call `stop` once, with the reason, on the first SIGTERM or SIGINT or when
 * the npm process that started this one ends.
 * @returns a function that removes the listeners and the watch.
 */
export function onStopRequest(stop: (why: string) => void): () => void {
  const chain = launcherChain();
  let watch: NodeJS.Timeout | undefined;
  const dispose = () => {
    process.removeListener('SIGTERM', onTerm).removeListener('SIGINT', onInt);
    clearInterval(watch);
  };
  const fire = (why: string) => {
    dispose();
    stop(why);
  };
  const onTerm = () => fire('SIGTERM');
  const onInt = () => fire('SIGINT');
  process.once('SIGTERM', onTerm).once('SIGINT', onInt);
  if (chain.length > 0) {
    watch = setInterval(() => {
      if (!chainIntact(chain)) fire('the npm process that started it ended');
    }, WATCH_INTERVAL_MS);
    watch.unref();
  }
  return dispose;
}
