/**
 * Child processes of the tests: `lexus` as a user runs it (bin/lexus.js, which runs the compiled
 * dist/; test/globalSetup.ts builds it before any test), node scripts, and other programs (npm,
 * pg_dump, promtool). One that ends by itself is run with `run`/`runNode`/`runLexus`; one that
 * runs until told (`lexus start`) with `start`/`startLexus`, a handle to wait on and stop.
 */
import { type ChildProcess, spawn, spawnSync } from 'node:child_process';
import { chmod, mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const ROOT = path.resolve(__dirname, '../..');
export const BIN = path.join(ROOT, 'bin/lexus.js');

/** A clean environment for `lexus`: nothing from the developer's shell or .env leaks in. */
export function cleanEnv(env: Record<string, string> = {}): Record<string, string> {
  return { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', LOG_PRETTY: '0', ...env };
}

export interface RunOptions {
  /** The whole environment of the child (`runLexus`/`startLexus`: added to cleanEnv()); without it, this process's. */
  env?: Record<string, string>;
  cwd?: string;
  /** Written to its standard input. */
  input?: string;
  /** Then it is killed (SIGTERM for `run`, SIGKILL for `start`), in ms. */
  timeout?: number;
}

export interface RunResult {
  status: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
  /** Set when it could not be started (e.g. ENOENT: the program is not installed). */
  error: Error | undefined;
}

/** Runs `command` to its end. */
export function run(command: string, args: readonly string[], options: RunOptions = {}): RunResult {
  const result = spawnSync(command, args, {
    cwd: options.cwd,
    env: options.env,
    input: options.input,
    timeout: options.timeout,
    encoding: 'utf8',
    maxBuffer: 64 * 1024 * 1024,
  });
  return {
    status: result.status,
    signal: result.signal,
    stdout: result.stdout ?? '',
    stderr: result.stderr ?? '',
    error: result.error,
  };
}

/** As run, without blocking this process: for a child that talks to a server of this test. */
export async function runAsync(command: string, args: readonly string[], options: RunOptions = {}): Promise<RunResult> {
  const child = start(command, args, options);
  const exit = await child.exited;
  return { status: exit.code, signal: exit.signal, stdout: child.stdout, stderr: child.stderr, error: child.error };
}

/** Runs this node with `args` (a script: `['-e', code]`) to its end. */
export function runNode(args: readonly string[], options: RunOptions = {}): RunResult {
  return run(process.execPath, args, options);
}

export interface LexusOptions extends RunOptions {
  /** Options for node before bin/lexus.js, e.g. `['-r', preload]`. */
  nodeArgs?: string[];
}

/** Runs `lexus ARGS` to its end (60 s at most unless told), in a clean environment plus `env`. */
export function runLexus(args: readonly string[], options: LexusOptions = {}): RunResult {
  return runNode([...(options.nodeArgs ?? []), BIN, ...args], {
    timeout: 60_000,
    ...options,
    env: cleanEnv(options.env),
  });
}

/** As runLexus, without blocking this process: for runs side by side (it.concurrent). */
export function runLexusAsync(args: readonly string[], options: LexusOptions = {}): Promise<RunResult> {
  return runAsync(process.execPath, [...(options.nodeArgs ?? []), BIN, ...args], {
    timeout: 60_000,
    ...options,
    env: cleanEnv(options.env),
  });
}

export interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Date.now() when it exited. */
  at: number;
}

export interface StartOptions extends RunOptions {
  /** In a process group of its own, as in a terminal: signals then go to the whole group. */
  detached?: boolean;
}

/** A child process that runs until told: its output so far, a wait for what it prints, its stop. */
export class Spawned {
  readonly child: ChildProcess;
  readonly startedAt = Date.now();
  /** Date.now() at the first signal sent with kill(), else 0. */
  signalledAt = 0;
  stdout = '';
  stderr = '';
  /** Both, in the order they came. */
  output = '';
  /** Set when it could not be started. */
  error: Error | undefined;
  /** Resolves when it has exited and its output is read (or a second after it exited). */
  readonly exited: Promise<Exit>;
  private readonly detached: boolean;
  private readonly waiters = new Set<() => void>();
  private exit: Exit | undefined;
  private parsed: Record<string, unknown>[] = [];
  private parsedChars = 0;

  constructor(command: string, args: readonly string[], options: StartOptions = {}) {
    this.detached = options.detached ?? false;
    const stdin = options.input === undefined ? 'ignore' : 'pipe';
    this.child = spawn(command, args, {
      cwd: options.cwd,
      env: options.env,
      detached: this.detached,
      stdio: [stdin, 'pipe', 'pipe'],
    });
    if (options.input !== undefined) this.child.stdin!.end(options.input);
    const took = (stream: 'stdout' | 'stderr') => (chunk: Buffer) => {
      this[stream] += chunk.toString();
      this.output += chunk.toString();
      this.notify();
    };
    this.child.stdout!.on('data', took('stdout'));
    this.child.stderr!.on('data', took('stderr'));
    const timer = options.timeout === undefined ? undefined : setTimeout(() => this.kill('SIGKILL'), options.timeout);
    this.exited = new Promise<Exit>((resolve) => {
      let closed = false;
      this.child.on('close', () => {
        closed = true;
        if (this.exit) resolve(this.exit);
      });
      this.child.on('exit', (code, signal) => {
        if (timer) clearTimeout(timer);
        this.exit = { code, signal, at: Date.now() };
        this.notify();
        if (closed) resolve(this.exit);
        else setTimeout(() => resolve(this.exit!), 1000).unref();
      });
      this.child.on('error', (error) => {
        this.error = error;
        this.exit ??= { code: null, signal: null, at: Date.now() };
        this.notify();
        resolve(this.exit);
      });
    });
  }

  /** The JSON lines of its standard output so far (a line starting with `{` that is not JSON throws). */
  get lines(): Record<string, unknown>[] {
    const end = this.stdout.lastIndexOf('\n') + 1;
    if (end > this.parsedChars) {
      const fresh = this.stdout
        .slice(this.parsedChars, end)
        .split('\n')
        .filter((l) => l.startsWith('{'));
      this.parsedChars = end;
      this.parsed.push(...fresh.map((l) => JSON.parse(l) as Record<string, unknown>));
    }
    return this.parsed;
  }

  get exitedYet(): boolean {
    return this.exit !== undefined;
  }

  /**
   * Resolves true as soon as `seen` holds (checked on each piece of output), false when it
   * exits first or `timeoutMs` passes. An exception in `seen` rejects.
   */
  waitFor(seen: (p: Spawned) => boolean, timeoutMs = 60_000): Promise<boolean> {
    return new Promise<boolean>((resolve, reject) => {
      const check = () => {
        let holds: boolean;
        try {
          holds = seen(this);
        } catch (error) {
          done();
          reject(error);
          return;
        }
        if (holds || this.exit) {
          done();
          resolve(holds);
        }
      };
      const timer = setTimeout(() => {
        done();
        resolve(false);
      }, timeoutMs);
      const done = () => {
        clearTimeout(timer);
        this.waiters.delete(check);
      };
      this.waiters.add(check);
      check();
    });
  }

  /** Sends `signal` (to its process group when detached); does nothing once it has exited. */
  kill(signal: NodeJS.Signals = 'SIGTERM'): void {
    if (this.exit || this.child.pid === undefined) return;
    if (!this.signalledAt) this.signalledAt = Date.now();
    try {
      if (this.detached) process.kill(-this.child.pid, signal);
      else this.child.kill(signal);
    } catch {
      // Gone in the meantime.
    }
  }

  /**
   * Waits for `seen` (at most `timeoutMs`), then sends `signal` and waits for the exit. Throws,
   * with its output, when `seen` did not come: it exited first, or was too slow (then SIGKILL).
   */
  async stopWhen(
    seen: (p: Spawned) => boolean,
    what: string,
    options: { signal?: NodeJS.Signals; timeoutMs?: number } = {},
  ): Promise<Exit> {
    const timeoutMs = options.timeoutMs ?? 60_000;
    if (!(await this.waitFor(seen, timeoutMs))) {
      const exit = await this.stop('SIGKILL');
      throw new Error(
        `no ${what} within ${timeoutMs / 1000} s (exit ${exit.code ?? exit.signal}):\n${this.stdout}\n${this.stderr}`,
      );
    }
    return this.stop(options.signal ?? 'SIGTERM');
  }

  /** kill(signal), then its exit. */
  stop(signal: NodeJS.Signals = 'SIGTERM'): Promise<Exit> {
    this.kill(signal);
    return this.exited;
  }

  private notify(): void {
    for (const check of [...this.waiters]) check();
  }
}

/** Starts `command`; see Spawned. */
export function start(command: string, args: readonly string[], options: StartOptions = {}): Spawned {
  return new Spawned(command, args, options);
}

/** Starts `lexus ARGS` in a clean environment plus `env`. */
export function startLexus(args: readonly string[], options: StartOptions & { nodeArgs?: string[] } = {}): Spawned {
  return start(process.execPath, [...(options.nodeArgs ?? []), BIN, ...args], {
    ...options,
    env: cleanEnv(options.env),
  });
}

/** A wait for `"event":"NAME"` in its standard output (a JSON log line's event). */
export const logged = (event: string) => (p: Spawned) => p.stdout.includes(`"event":"${event}"`);

/** The JSON lines of a text (a run's standard output). */
export const jsonLines = (text: string): Record<string, unknown>[] =>
  text
    .split('\n')
    .filter((l) => l.startsWith('{'))
    .map((l) => JSON.parse(l) as Record<string, unknown>);

/**
 * A new folder under the system's temporary folder, open to other users (0755): as root, the
 * embedded PostgreSQL runs as "postgres" and must reach its folder. Remove it when done.
 */
export async function tempDir(prefix: string): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), prefix));
  await chmod(dir, 0o755);
  return dir;
}
