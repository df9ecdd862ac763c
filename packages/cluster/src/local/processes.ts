import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync, writeFileSync } from 'node:fs';

/** How a supervised process ended. */
export interface ProcessExit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ProcessSpec {
  /** Short name used in reports ("nats n1", "adanns n2"). */
  name: string;
  command: string;
  args: string[];
  env?: NodeJS.ProcessEnv;
  /** stdout and stderr are appended here (the terminal only gets the launcher's own lines). */
  logFile: string;
}

/** Called when a process exits without having been asked to (a crash, or a kill from outside). */
export type UnexpectedExit = (name: string, pid: number, exit: ProcessExit, logTail: string) => void;

/** The last `lines` lines of a log file ('' when there is none). */
export function logTail(file: string, lines = 8): string {
  if (!existsSync(file)) return '';
  const text = readFileSync(file, 'utf8').trimEnd();
  return text.split('\n').slice(-lines).join('\n');
}

function describe(exit: ProcessExit): string {
  return exit.signal ? `signal ${exit.signal}` : `exit code ${exit.code}`;
}

/**
 * One child process of the launcher. Each runs in its own process group
 * (detached), so a Ctrl-C in the terminal reaches only the launcher, which
 * then stops the nodes before the NATS servers they write through: children
 * that got the terminal's SIGINT themselves would exit in any order.
 */
export class Supervised {
  readonly name: string;
  readonly pid: number;
  readonly logFile: string;
  /** Resolves when the process has exited (never rejects). */
  readonly exited: Promise<ProcessExit>;
  private readonly child: ChildProcess;
  private expected = false;
  private exit: ProcessExit | undefined;

  constructor(spec: ProcessSpec, onUnexpectedExit: UnexpectedExit) {
    const log = openSync(spec.logFile, 'a');
    try {
      this.child = spawn(spec.command, spec.args, { env: spec.env ?? process.env, stdio: ['ignore', log, log], detached: true });
    } finally {
      closeSync(log); // the child holds its own copy of the descriptor
    }
    this.name = spec.name;
    this.logFile = spec.logFile;
    let spawnError: Error | undefined;
    this.exited = new Promise<ProcessExit>((resolve) => {
      // 'error' without 'exit' happens when the command cannot be started at all (ENOENT)
      this.child.once('error', (e) => {
        spawnError = e;
        if (this.child.pid === undefined) resolve({ code: null, signal: null });
      });
      this.child.once('exit', (code, signal) => resolve({ code, signal }));
    }).then((exit) => {
      this.exit = exit;
      if (!this.expected) {
        const tail = spawnError && this.child.pid === undefined ? `could not start ${spec.command}: ${spawnError.message}` : logTail(spec.logFile);
        onUnexpectedExit(this.name, this.child.pid ?? 0, exit, tail);
      }
      return exit;
    });
    this.pid = this.child.pid ?? 0;
  }

  get running(): boolean {
    return this.exit === undefined;
  }

  /** Sends `signal` (SIGKILL by default: the fault tests' kill -9) and waits for the exit. */
  async kill(signal: NodeJS.Signals = 'SIGKILL'): Promise<ProcessExit> {
    this.expected = true;
    if (this.running) this.child.kill(signal);
    return this.exited;
  }

  /** SIGTERM, then SIGKILL if it has not exited after `graceMs`. */
  async stop(graceMs = 15_000): Promise<ProcessExit> {
    this.expected = true;
    if (!this.running) return this.exited;
    this.child.kill('SIGTERM');
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<'late'>((resolve) => {
      timer = setTimeout(() => resolve('late'), graceMs);
    });
    const first = await Promise.race([this.exited, late]);
    clearTimeout(timer);
    if (first === 'late') this.child.kill('SIGKILL');
    return this.exited;
  }

  /** Synchronous last resort for process 'exit' handlers: no waiting possible there. */
  killNow(): void {
    this.expected = true;
    if (this.running && this.pid) {
      try {
        process.kill(this.pid, 'SIGKILL');
      } catch {
        // already gone
      }
    }
  }

  describeExit(): string | undefined {
    return this.exit && describe(this.exit);
  }
}

export { describe as describeExit };

interface PidRecord {
  name: string;
  pid: number;
}

/**
 * The launcher records its children's pids in its data directory, so that a
 * launcher killed with SIGKILL (which cannot stop anything) leaves nothing
 * behind for long: the next start stops those processes first. A pid counts
 * as ours only while its command line still names the data directory (a
 * recycled pid belongs to someone else).
 */
export class PidFile {
  constructor(
    private readonly file: string,
    private readonly marker: string,
  ) {}

  write(children: readonly Supervised[]): void {
    const records: PidRecord[] = children.filter((c) => c.running).map((c) => ({ name: c.name, pid: c.pid }));
    writeFileSync(this.file, JSON.stringify(records) + '\n');
  }

  /** Kills the processes a previous launcher left running; returns their names. */
  async reapStale(): Promise<string[]> {
    if (!existsSync(this.file)) return [];
    let records: PidRecord[];
    try {
      records = JSON.parse(readFileSync(this.file, 'utf8')) as PidRecord[];
    } catch {
      return [];
    }
    const reaped: string[] = [];
    for (const { name, pid } of records) {
      if (!this.isOurs(pid)) continue;
      try {
        process.kill(pid, 'SIGKILL');
        reaped.push(`${name} (pid ${pid})`);
      } catch {
        // exited meanwhile
      }
    }
    // SIGKILL is asynchronous: wait until they are gone, so their ports are free
    for (let i = 0; i < 100 && records.some((r) => this.isOurs(r.pid)); i++) await new Promise((r) => setTimeout(r, 50));
    return reaped;
  }

  private isOurs(pid: number): boolean {
    try {
      return readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0').some((arg) => arg.includes(this.marker));
    } catch {
      return false; // no such process (or no /proc: then nothing is reaped)
    }
  }
}
