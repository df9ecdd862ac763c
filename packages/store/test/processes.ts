/**
 * Process helpers for tests that start servers, builds and workers as child
 * processes (this package's and packages that build on it: cluster imports
 * it as ../../store/test/processes.js, as packages share compute's test/naive.ts).
 */

/** Whether a process with this id exists (signal 0 checks without sending anything). */
export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}
