/**
 * The Docker deployment, checked without a Docker engine: the Dockerfile, .dockerignore,
 * docker-compose.lexus.yml and docker-compose.bali.yml are parsed and held against the
 * repository and against what the code reads (CONFIG_VARIABLES, loadConfig). The image's
 * /app is this repository (after `npm run build`, which `npm test` runs first).
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import { parse as parseJsonc } from 'jsonc-parser';
import { describe, expect, it } from 'vitest';
import { parseDocument } from 'yaml';
import { CONFIG_VARIABLES, loadConfig } from '../src/config';
import { STOP_MARGIN_MS } from '../src/daemon/run';
import { cleanEnv, runAsync } from './helpers/cli';

const ROOT = path.resolve(__dirname, '..');
const read = (file: string) => readFileSync(path.join(ROOT, file), 'utf8');

// --- Dockerfile -------------------------------------------------------------------------------

interface Instruction {
  keyword: string;
  args: string;
  /** Index of the build stage (FROM) it belongs to. */
  stage: number;
}
interface Stage {
  name: string | undefined;
  image: string;
  instructions: Instruction[];
}

/** Instructions by stage: comments dropped, continuation lines joined, global ARGs applied to FROM. */
function parseDockerfile(text: string): Stage[] {
  const lines: string[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    if (line.startsWith('#') || (line === '' && pending === '')) continue;
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    lines.push(pending + line);
    pending = '';
  }
  const globalArgs: Record<string, string> = {};
  const stages: Stage[] = [];
  for (const line of lines.filter((l) => l !== '')) {
    const match = /^(\S+)\s*(.*)$/.exec(line)!;
    const keyword = match[1]!.toUpperCase();
    const args = match[2]!.trim();
    if (keyword === 'FROM') {
      const [image, as, name] = args.replace(/^--platform=\S+\s+/, '').split(/\s+/);
      const resolved = image!.replace(/\$\{?(\w+)\}?/g, (_, v: string) => globalArgs[v] ?? '');
      stages.push({ name: as?.toUpperCase() === 'AS' ? name : undefined, image: resolved, instructions: [] });
    } else if (stages.length === 0) {
      if (keyword === 'ARG') {
        const [name, value] = args.split('=');
        globalArgs[name!] = value ?? '';
      }
    } else {
      stages.at(-1)!.instructions.push({ keyword, args, stage: stages.length - 1 });
    }
  }
  return stages;
}

/** A JSON-array (exec form) argument, or null for the shell form. */
function execForm(args: string): string[] | null {
  return args.startsWith('[') ? (JSON.parse(args) as string[]) : null;
}

interface Copy {
  from: string | undefined;
  sources: string[];
  dest: string;
  stage: number;
}
function copiesOf(stages: Stage[]): Copy[] {
  return stages.flatMap((s) =>
    s.instructions
      .filter((i) => i.keyword === 'COPY' || i.keyword === 'ADD')
      .map((i) => {
        const words = execForm(i.args) ?? i.args.split(/\s+/);
        const flags = words.filter((w) => w.startsWith('--'));
        const paths = words.filter((w) => !w.startsWith('--'));
        const from = flags.find((f) => f.startsWith('--from='))?.slice('--from='.length);
        return { from, sources: paths.slice(0, -1), dest: paths.at(-1)!, stage: i.stage };
      }),
  );
}

function workdirOf(stage: Stage): string {
  const dirs = stage.instructions.filter((i) => i.keyword === 'WORKDIR').map((i) => i.args);
  return dirs.reduce((dir, next) => path.posix.resolve(dir, next), '/');
}

const dockerfile = parseDockerfile(read('Dockerfile'));
const runtime = dockerfile.at(-1)!;
const WORKDIR = workdirOf(runtime);
/** A path in the image, as it is in this repository (the image's WORKDIR is the repository root). */
function inRepo(imagePath: string, workdir = WORKDIR): string {
  const absolute = path.posix.resolve(workdir, imagePath);
  expect(absolute === WORKDIR || absolute.startsWith(`${WORKDIR}/`), `${imagePath} is under ${WORKDIR}`).toBe(true);
  return path.join(ROOT, path.posix.relative(WORKDIR, absolute));
}
function lastOf(stage: Stage, keyword: string): string {
  const found = stage.instructions.filter((i) => i.keyword === keyword).at(-1);
  expect(found, `the runtime stage has ${keyword}`).toBeDefined();
  return found!.args;
}

// --- .dockerignore ----------------------------------------------------------------------------

function globToRegExp(pattern: string): RegExp {
  let re = '';
  for (let i = 0; i < pattern.length; i++) {
    const c = pattern[i]!;
    if (c === '*' && pattern[i + 1] === '*') {
      re += pattern[i + 2] === '/' ? '(?:.*/)?' : '.*';
      i += pattern[i + 2] === '/' ? 2 : 1;
    } else if (c === '*') re += '[^/]*';
    else if (c === '?') re += '[^/]';
    else re += c.replace(/[.+^${}()|[\]\\]/g, '\\$&');
  }
  return new RegExp(`^${re}$`);
}

/** Whether the build context leaves out a path (relative, with /): the last matching rule wins, a directory's rule covers what is in it. */
function dockerignored(text: string): (file: string) => boolean {
  const rules = text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '' && !l.startsWith('#'))
    .map((l) => {
      const negate = l.startsWith('!');
      const pattern = path.posix.normalize((negate ? l.slice(1) : l).trim()).replace(/^\/+|\/+$/g, '');
      return { negate, re: globToRegExp(pattern) };
    });
  return (file) => {
    const parts = file.split('/');
    const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
    let excluded = false;
    for (const rule of rules) if (candidates.some((c) => rule.re.test(c))) excluded = !rule.negate;
    return excluded;
  };
}
const ignored = dockerignored(read('.dockerignore'));

function filesUnder(file: string): string[] {
  const full = path.join(ROOT, file);
  if (!statSync(full).isDirectory()) return [file];
  return readdirSync(full).flatMap((entry) => filesUnder(path.posix.join(file, entry)));
}

// --- compose ----------------------------------------------------------------------------------

type Service = Record<string, unknown> & {
  environment?: Record<string, string> | string[];
  depends_on?: Record<string, { condition?: string }> | string[];
  volumes?: string[];
  ports?: string[];
  healthcheck?: { test?: string[] | string };
  logging?: { driver?: string; options?: Record<string, string> };
};
interface Compose {
  services: Record<string, Service>;
  volumes?: Record<string, unknown>;
  networks?: Record<string, { name?: string; external?: boolean }>;
}

/** The YAML of a compose file; compose's own merge tags (!reset, !override) are allowed. */
function composeFile(file: string): { compose: Compose; tagOf: (p: string[]) => string | undefined } {
  const doc = parseDocument(read(file), { logLevel: 'error' });
  expect(doc.errors.map(String)).toEqual([]);
  expect(doc.warnings.map(String).filter((w) => !/Unresolved tag: !(reset|override)\b/.test(w))).toEqual([]);
  return {
    compose: doc.toJS() as Compose,
    tagOf: (p) => (doc.getIn(p, true) as { tag?: string } | undefined)?.tag,
  };
}

/** Compose's variable interpolation: $VAR, ${VAR}, ${VAR:-default}, ${VAR-default}, ${VAR:?error}, ${VAR?error}, $$. */
function interpolate(value: string, vars: Record<string, string>): string {
  return value.replace(
    /\$\$|\$\{(\w+)(?:(:?)([-?])([^}]*))?\}|\$(\w+)/g,
    (whole, name?: string, colon?: string, op?: string, arg?: string, bare?: string) => {
      if (whole === '$$') return '$';
      if (bare) return vars[bare] ?? '';
      const set = vars[name!] !== undefined && (colon !== ':' || vars[name!] !== '');
      if (set) return vars[name!]!;
      if (op === '?') throw new Error(`required variable ${name} is missing: ${arg}`);
      return op === '-' ? interpolate(arg!, vars) : '';
    },
  );
}

function environmentOf(service: Service): Record<string, string> {
  const env = service.environment ?? {};
  if (!Array.isArray(env)) return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, String(v ?? '')]));
  return Object.fromEntries(env.map((e) => [e.split('=')[0]!, e.split('=').slice(1).join('=')]));
}
function interpolated(env: Record<string, string>, vars: Record<string, string>): Record<string, string> {
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, interpolate(v, vars)]));
}

/** Compose durations: 45s, 1m30s, 2m, 500ms. */
function durationSeconds(value: string): number {
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|us|h|m|s)/g)];
  expect(parts.map((p) => p[0]).join(''), `"${value}" is a duration`).toBe(value);
  const unit = { h: 3600, m: 60, s: 1, ms: 1e-3, us: 1e-6 } as const;
  return parts.reduce((sum, p) => sum + Number(p[1]) * unit[p[2] as keyof typeof unit], 0);
}

/** Environment variables set on purpose that the configuration loader does not read. */
const NOT_CONFIG_VARIABLES: Record<string, string> = {
  NODE_ENV: "the Node convention for production; set in the image, the code doesn't read it",
};

const { compose } = composeFile('docker-compose.lexus.yml');
const postgres = compose.services.postgres!;
const lexus = compose.services.lexus!;
/** What compose would read from a .env that only sets the required password. */
const DOTENV = { POSTGRES_PASSWORD: 'telegram_password_bali' };
const lexusEnv = () => interpolated(environmentOf(lexus), DOTENV);
/** The configuration the lexus container ends up with (no other variable from .env). */
const containerConfig = () => loadConfig(lexusEnv(), { inDocker: true, cwd: WORKDIR });

/** The container port the lexus service publishes, and the host address it is published on. */
function publishedPorts(service: Service): { host: string; container: number }[] {
  return (service.ports ?? []).map((p) => {
    const parts = interpolate(String(p), {}).split(':');
    return { host: parts.length === 3 ? parts[0]! : '0.0.0.0', container: Number(parts.at(-1)!.split('/')[0]) };
  });
}

/** node ARGS in the checkout, in a clean environment plus `env`; not blocking this process (a test serves the HEALTHCHECK here). */
async function runNode(
  args: string[],
  env: Record<string, string> = {},
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const r = await runAsync(process.execPath, args, { cwd: ROOT, env: cleanEnv(env), timeout: 30_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

// ----------------------------------------------------------------------------------------------

describe('Dockerfile', () => {
  it('builds in one stage and runs in another, on a Node LTS image the package supports', () => {
    expect(dockerfile.length).toBeGreaterThanOrEqual(2);
    const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
    const minimum = Number(/(\d+)/.exec(engines)![1]);
    for (const stage of dockerfile) {
      const major = Number(/^node:(\d+)/.exec(stage.image)?.[1]);
      expect(major, `${stage.image} is a node:MAJOR image`).toBeGreaterThanOrEqual(minimum);
      expect(major % 2, `${stage.image}: even majors are the LTS lines`).toBe(0);
    }
    expect(WORKDIR).toBe('/app');
    expect(lastOf(runtime, 'USER')).not.toMatch(/^(root|0)(:|$)/);
  });

  it('copies only paths that exist (dist/ after `npm run build`) and that the build context keeps', () => {
    const copies = copiesOf(dockerfile);
    expect(copies.length).toBeGreaterThan(0);
    for (const copy of copies) {
      for (const source of copy.sources) {
        if (copy.from === undefined) {
          // From the build context: the repository, less .dockerignore.
          expect(existsSync(path.join(ROOT, source)), `COPY ${source} exists in the repository`).toBe(true);
          for (const file of filesUnder(path.posix.normalize(source).replace(/\/$/, ''))) {
            expect(ignored(file), `${file} (COPY ${source}) is not left out by .dockerignore`).toBe(false);
          }
        } else {
          // From an earlier stage: its WORKDIR is the repository too.
          const from = dockerfile.find((s) => s.name === copy.from) ?? dockerfile[Number(copy.from)];
          expect(from, `stage ${copy.from}`).toBeDefined();
          const local = inRepo(source, workdirOf(from!));
          expect(
            existsSync(local),
            `COPY --from=${copy.from} ${source}: ${path.relative(ROOT, local)} exists (npm run build)`,
          ).toBe(true);
        }
      }
    }
  });

  it('gives the build stage what `npm run build` reads, and the runtime what the package ships', () => {
    const pkg = JSON.parse(read('package.json')) as { scripts: { build: string }; files: string[] };
    const project = /-p\s+(\S+)/.exec(pkg.scripts.build)![1]!;
    const tsconfig = parseJsonc(read(project)) as { extends?: string; include: string[] };
    const needed = [project, ...(tsconfig.extends ? [tsconfig.extends] : []), ...tsconfig.include].map((p) =>
      path.posix.normalize(p),
    );
    const copies = copiesOf(dockerfile);
    const copiedInto = (stage: number) =>
      copies
        .filter((c) => c.stage === stage)
        .flatMap((c) =>
          c.sources.map((s) =>
            c.sources.length === 1 && !c.dest.endsWith('/') && c.dest !== '.' && c.dest !== './'
              ? c.dest
              : path.posix.join(c.dest, path.posix.basename(s)),
          ),
        )
        .map((dest) => path.posix.relative(WORKDIR, path.posix.resolve(WORKDIR, dest)));
    const buildStage = dockerfile.findIndex((s) =>
      s.instructions.some((i) => i.keyword === 'RUN' && i.args.includes('npm run build')),
    );
    expect(buildStage, 'a stage runs `npm run build`').toBeGreaterThanOrEqual(0);
    expect(copiedInto(buildStage)).toEqual(expect.arrayContaining(['package.json', 'package-lock.json', ...needed]));
    expect(copiedInto(dockerfile.length - 1)).toEqual(
      expect.arrayContaining(['package.json', 'package-lock.json', ...pkg.files, 'config', 'lexus_assets']),
    );
    // Production dependencies only, and no `prepare` (the build) in the runtime stage.
    const install = runtime.instructions.find((i) => i.keyword === 'RUN' && /\bnpm ci\b/.test(i.args));
    expect(install?.args).toMatch(/--omit=dev/);
    expect(install?.args).toMatch(/--ignore-scripts/);
  });

  it('runs the `lexus` command: ENTRYPOINT + CMD, with /app as the repository', async () => {
    const entrypoint = execForm(lastOf(runtime, 'ENTRYPOINT'))!;
    const cmd = execForm(lastOf(runtime, 'CMD'))!;
    expect(entrypoint, 'ENTRYPOINT in exec form').not.toBeNull();
    expect(cmd, 'CMD in exec form').toEqual(['start']);
    // An init as PID 1 (installed in the image) forwards SIGTERM to node.
    let command = entrypoint;
    if (/tini$/.test(command[0]!)) {
      expect(runtime.instructions.some((i) => i.keyword === 'RUN' && /apt-get install\b.*\btini\b/.test(i.args))).toBe(
        true,
      );
      command = command.slice(command[1] === '--' ? 2 : 1);
    }
    expect(command[0]).toBe('node');
    const args = command.slice(1).map((a) => (a.startsWith('/') ? inRepo(a) : a));

    // `docker run IMAGE --help`: the usage, listing the default command.
    const help = await runNode([...args, '--help']);
    expect(help.code, help.stderr).toBe(0);
    expect(help.stdout).toMatch(new RegExp(`^\\s+${cmd[0]}\\b`, 'm'));
    // `docker run IMAGE start --help` and `docker run IMAGE import --help`: CMD and the others are subcommands.
    for (const sub of [cmd, ['import']]) {
      const run = await runNode([...args, ...sub, '--help']);
      expect(run.code, run.stderr).toBe(0);
      expect(run.stdout).toMatch(new RegExp(`^Usage: lexus ${sub[0]}\\b`, 'm'));
    }
  });

  it("puts the package's `lexus` command on the PATH (for `docker compose exec lexus lexus status`)", () => {
    const pkg = JSON.parse(read('package.json')) as { bin: { lexus: string } };
    const link = runtime.instructions
      .filter((i) => i.keyword === 'RUN')
      .map((i) => /\bln -s\s+(\S+)\s+\/usr\/local\/bin\/lexus\b/.exec(i.args))
      .find(Boolean);
    expect(link, 'RUN ln -s ... /usr/local/bin/lexus').toBeDefined();
    const target = inRepo(link![1]!);
    expect(target).toBe(path.join(ROOT, pkg.bin.lexus));
    expect(statSync(target).mode & 0o111, `${pkg.bin.lexus} is executable`).not.toBe(0);
    expect(readFileSync(target, 'utf8')).toMatch(/^#!\/usr\/bin\/env node\n/);
  });

  it('sets only environment variables the code reads (or says why)', () => {
    const names = runtime.instructions
      .filter((i) => i.keyword === 'ENV')
      .flatMap((i) => [...i.args.matchAll(/(\w+)=/g)].map((m) => m[1]!));
    for (const name of names)
      expect(name in CONFIG_VARIABLES || name in NOT_CONFIG_VARIABLES, `ENV ${name}`).toBe(true);
  });

  it('has a HEALTHCHECK that asks /healthz on HEALTH_PORT (default as in the code) and fails unless 200', async () => {
    const healthcheck = lastOf(runtime, 'HEALTHCHECK');
    const command = execForm(healthcheck.replace(/^(--\S+\s+)*CMD\s+/, ''))!;
    expect(command, 'HEALTHCHECK CMD in exec form').not.toBeNull();
    expect(command[0]).toBe('node');
    const script = command.join(' ');
    expect(script).toContain('/healthz');
    const defaultPort = Number(/process\.env\.HEALTH_PORT\s*\|\|\s*(\d+)/.exec(script)?.[1]);
    expect(defaultPort).toBe(loadConfig({}, { inDocker: true, cwd: WORKDIR }).health?.port);
    expect(EXPOSED()).toContain(defaultPort);

    // Run it against a stand-in listener: 200 → healthy; 503, another path or nobody → unhealthy.
    let status = 200;
    const server = createServer((req, res) => {
      res.writeHead(req.url === '/healthz' ? status : 404).end();
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const port = String((server.address() as AddressInfo).port);
    try {
      expect((await runNode(command.slice(1), { HEALTH_PORT: port })).code).toBe(0);
      status = 503;
      expect((await runNode(command.slice(1), { HEALTH_PORT: port })).code).not.toBe(0);
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
    expect((await runNode(command.slice(1), { HEALTH_PORT: port })).code).not.toBe(0);
  });
});
const EXPOSED = () =>
  runtime.instructions
    .filter((i) => i.keyword === 'EXPOSE')
    .flatMap((i) => i.args.split(/\s+/).map((p) => Number(p.split('/')[0])));

describe('.dockerignore', () => {
  it('keeps dependencies, build output, secrets, local state and tests out of the image', () => {
    for (const file of [
      'node_modules',
      'node_modules/pg/package.json',
      'dist/cli.js',
      '.env',
      'data/postgres/PG_VERSION',
      'sessions/lexus_kyiv_2.session',
      'test/docker.test.ts',
      'coverage/index.html',
      '.git/HEAD',
      'lexus.log',
      'bench-results.json',
      'simulation.html',
    ]) {
      expect(ignored(file), file).toBe(true);
    }
    for (const file of [
      'package.json',
      'src/cli.ts',
      'bin/lexus.js',
      'config/messages/cars/messages.json',
      'lexus_assets/lexus_variant_1.jpg',
    ]) {
      expect(ignored(file), file).toBe(false);
    }
  });
});

describe('docker-compose.lexus.yml', () => {
  it('runs postgres (official image, named volume, pg_isready) and lexus, which waits for it to be healthy', () => {
    expect(Object.keys(compose.services).sort()).toEqual(['lexus', 'postgres']);
    expect(postgres.image).toMatch(/^postgres:\d+/);
    const [volume, target] = String(postgres.volumes?.[0]).split(':');
    expect(compose.volumes).toHaveProperty(volume!);
    expect(target).toBe('/var/lib/postgresql/data');
    expect(JSON.stringify(postgres.healthcheck?.test)).toContain('pg_isready');

    expect(lexus.build).toBe('.');
    expect(existsSync(path.join(ROOT, 'Dockerfile'))).toBe(true);
    expect(lexus.depends_on).toEqual({ postgres: { condition: 'service_healthy' } });
    for (const service of [postgres, lexus]) {
      expect(service.restart).toBe('unless-stopped');
      expect(service.logging?.driver).toBe('json-file');
      expect(service.logging?.options).toHaveProperty('max-size');
      expect(service.logging?.options).toHaveProperty('max-file');
    }
  });

  it('sets only variables the configuration loader knows, or intentional exceptions', () => {
    const names = Object.keys(environmentOf(lexus));
    expect(names.length).toBeGreaterThan(0);
    for (const name of names)
      expect(name in CONFIG_VARIABLES || name in NOT_CONFIG_VARIABLES, `lexus sets ${name}`).toBe(true);
    expect(lexusEnv().LOG_PRETTY).toBe('0');
    expect(lexus.env_file).toBe('.env');
  });

  it("connects lexus to the postgres service with its credentials: the seed's URL by default; no password, no start", () => {
    const pgEnv = interpolated(environmentOf(postgres), DOTENV);
    const config = containerConfig();
    expect(config.database).toMatchObject({
      mode: 'external',
      connection: {
        host: 'postgres',
        port: 5432,
        user: pgEnv.POSTGRES_USER,
        password: pgEnv.POSTGRES_PASSWORD,
        database: pgEnv.POSTGRES_DB,
      },
    });
    expect(lexusEnv().DATABASE_URL).toBe(
      'postgresql://telegram_user_bali:telegram_password_bali@postgres:5432/telegram_promotion_bali',
    );
    // Names from .env follow through to both services.
    const custom = { POSTGRES_USER: 'lexus', POSTGRES_PASSWORD: 'pw', POSTGRES_DB: 'lexus_promotion' };
    expect(interpolated(environmentOf(lexus), custom).DATABASE_URL).toBe(
      'postgresql://lexus:pw@postgres:5432/lexus_promotion',
    );
    expect(interpolated(environmentOf(postgres), custom)).toMatchObject(custom);
    expect(() => interpolated(environmentOf(postgres), {})).toThrow(/POSTGRES_PASSWORD/);
    expect(() => interpolated(environmentOf(lexus), {})).toThrow(/POSTGRES_PASSWORD/);
  });

  it('publishes the health port the daemon listens on (HEALTH_PORT default), on 127.0.0.1 only, and checks /healthz', () => {
    const health = containerConfig().health;
    expect(health).toEqual({ host: '0.0.0.0', port: Number(/default (\d+)/.exec(CONFIG_VARIABLES.HEALTH_PORT)![1]) });
    expect(health!.port).toBe(9464);
    expect(publishedPorts(lexus)).toEqual([{ host: '127.0.0.1', container: health!.port }]);
    expect(publishedPorts(postgres)).toEqual([]);
    // The service's own healthcheck if it has one, else the image's.
    const test = lexus.healthcheck?.test ?? lastOf(runtime, 'HEALTHCHECK');
    expect(JSON.stringify(test)).toContain('/healthz');
  });

  it("gives a stop more time than the daemon's whole stop, and tells the daemon what it gives", () => {
    const config = containerConfig();
    const graceS = config.daemon.shutdownGraceMs / 1000;
    expect(graceS).toBe(loadConfig({}).daemon.shutdownGraceMs / 1000);
    const given = durationSeconds(String(lexus.stop_grace_period));
    expect(given).toBeGreaterThan(graceS + STOP_MARGIN_MS / 1000);
    expect(config.bounds.containerStopGraceMs).toBe(given * 1000);
  });

  it('mounts sessions, the assets and the messages where the code looks for them', () => {
    const config = loadConfig({}, { inDocker: true, cwd: WORKDIR });
    const used = {
      sessions: path.posix.join(config.dataDir, 'sessions'),
      assets: path.posix.join(config.daemon.baseDir, 'lexus_assets'),
      messages: path.posix.dirname(path.posix.dirname(config.daemon.messagesFile)),
    };
    expect(used).toEqual({ sessions: '/app/sessions', assets: '/app/lexus_assets', messages: '/app/config/messages' });
    const mounts = (lexus.volumes ?? []).map((v) => {
      const [source, target] = String(v).split(':');
      return { source: source!, target: target! };
    });
    expect(mounts.map((m) => m.target).sort()).toEqual(Object.values(used).sort());
    for (const { source, target } of mounts) {
      // Bind mounts of this repository's folders, at the same place in the image.
      expect(source.startsWith('./'), source).toBe(true);
      expect(existsSync(path.join(ROOT, source)), source).toBe(true);
      expect(inRepo(target)).toBe(path.join(ROOT, source));
    }
  });
});

describe('docker-compose.bali.yml', () => {
  it("points lexus at the Bali PostgreSQL on that system's network, without this project's postgres", () => {
    const { compose: bali, tagOf } = composeFile('docker-compose.bali.yml');
    expect(Object.keys(bali.services)).toEqual(['lexus']);
    const env = environmentOf(bali.services.lexus!);
    for (const name of Object.keys(env)) expect(name in CONFIG_VARIABLES, name).toBe(true);
    // The seed's URL for this case.
    expect(interpolated(env, DOTENV).DATABASE_URL).toBe(
      'postgresql://telegram_user_bali:telegram_password_bali@telegram-bali-postgres:5432/telegram_promotion_bali',
    );
    const config = loadConfig({ ...lexusEnv(), ...interpolated(env, DOTENV) }, { inDocker: true, cwd: WORKDIR });
    expect(config.database).toMatchObject({ mode: 'external', connection: { host: 'telegram-bali-postgres' } });
    expect(tagOf(['services', 'lexus', 'depends_on'])).toBe('!reset');
    expect(bali.services.lexus!.networks).toEqual(['bali']);
    expect(bali.networks?.bali?.external).toBe(true);
  });
});
