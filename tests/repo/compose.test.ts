import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import { HASH_MAX_LISTPACK_VALUE } from '../../scripts/redis-server.ts';

/**
 * No Docker engine runs in the tests: these read docker-compose.yml and the
 * Dockerfile the way Compose and Docker would, with no variables set in the
 * shell (every `${VAR:-default}` takes its default).
 */
const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');

type EnvValue = string | number | boolean | null;
type Service = {
  image?: string;
  build?: string | { context?: string; dockerfile?: string };
  command?: string | string[];
  entrypoint?: string | string[];
  environment?: Record<string, EnvValue> | string[];
  ports?: (string | number | { target?: number; published?: string | number })[];
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  healthcheck?: { test?: string | string[] };
  init?: boolean;
  container_name?: string;
  hostname?: string;
  stop_signal?: string;
  stop_grace_period?: string;
};
type Compose = { services: Record<string, Service>; volumes?: Record<string, unknown> };

const compose = parse(read('docker-compose.yml')) as Compose;
const service = (name: string): Service => {
  const found = compose.services[name];
  if (!found) throw new Error(`docker-compose.yml has no service ${name}`);
  return found;
};

/** Compose's interpolation with an empty shell: `${VAR:-default}` → default, `$$` → `$`. */
const interpolate = (value: string) =>
  value.replace(/\$\$|\$\{(\w+)(?::?-([^}]*))?\}/g, (match, _name, fallback) =>
    match === '$$' ? '$' : (fallback ?? ''),
  );

const words = (value: string | string[] | undefined) =>
  (typeof value === 'string' ? value.split(/\s+/).filter(Boolean) : (value ?? [])).map(interpolate);

/** A key without a value is left unset in the container, as Compose does when the shell lacks it. */
function environmentOf(svc: Service): Record<string, string | undefined> {
  const entries: [string, EnvValue][] = Array.isArray(svc.environment)
    ? svc.environment.map((line) => {
        const at = line.indexOf('=');
        return at < 0 ? [line, null] : [line.slice(0, at), line.slice(at + 1)];
      })
    : Object.entries(svc.environment ?? {});
  return Object.fromEntries(
    entries.map(([key, value]) => [key, value == null ? undefined : interpolate(String(value))]),
  );
}

function publishedPorts(svc: Service) {
  return (svc.ports ?? []).map((port) => {
    if (typeof port === 'object') return { host: String(port.published), container: port.target };
    const parts = interpolate(String(port))
      .replace(/\/\w+$/, '')
      .split(':');
    const container = Number(parts.at(-1));
    return { host: parts.length > 1 ? parts.at(-2) : undefined, container };
  });
}

/** Go durations as Compose takes them: `40s`, `1m30s`, `1500ms`; ms. */
function durationMs(value: string): number {
  const unit: Record<string, number> = { h: 3_600_000, m: 60_000, s: 1000, ms: 1, us: 0.001 };
  const parts = [...value.matchAll(/(\d+(?:\.\d+)?)(ms|us|h|m|s)/g)];
  if (parts.map((part) => part[0]).join('') !== value) throw new Error(`bad duration ${value}`);
  return parts.reduce((sum, [, amount, name]) => sum + Number(amount) * (unit[name ?? ''] ?? 0), 0);
}

function dependsOnHealthy(svc: Service, on: string): boolean {
  const deps = svc.depends_on;
  return !!deps && !Array.isArray(deps) && deps[on]?.condition === 'service_healthy';
}

function dockerfileOf(svc: Service): string | undefined {
  if (!svc.build) return undefined;
  const { context = '.', dockerfile = 'Dockerfile' } =
    typeof svc.build === 'string' ? { context: svc.build } : svc.build;
  return posix.join(context, dockerfile);
}

// --- The Dockerfile, split into stages on FROM lines.

type Instruction = { keyword: string; args: string };
type Stage = { name?: string; instructions: Instruction[] };

function parseDockerfile(text: string): Stage[] {
  const lines = text
    .split('\n')
    .filter((line) => !line.trimStart().startsWith('#'))
    .join('\n')
    .replace(/\\\n/g, ' ')
    .split('\n')
    .map((line) => line.trim())
    .filter(Boolean);
  const stages: Stage[] = [];
  for (const line of lines) {
    const [keyword = '', ...rest] = line.split(/\s+/);
    const instruction = { keyword: keyword.toUpperCase(), args: rest.join(' ') };
    if (instruction.keyword === 'FROM') {
      stages.push({ name: /\bAS\s+(\S+)$/i.exec(instruction.args)?.[1], instructions: [] });
    }
    stages.at(-1)?.instructions.push(instruction);
  }
  return stages;
}

/** Exec form as written; shell form runs under `/bin/sh -c`, which keeps signals from node. */
const execForm = (args: string): string[] =>
  args.startsWith('[') ? (JSON.parse(args) as string[]) : ['/bin/sh', '-c', args];

function copies(stage: Stage) {
  let workdir = '/';
  const found: { from?: string; sources: string[]; dest: string }[] = [];
  for (const { keyword, args } of stage.instructions) {
    if (keyword === 'WORKDIR') workdir = posix.resolve(workdir, args);
    if (keyword !== 'COPY') continue;
    const parts = args.split(/\s+/);
    const from = parts.find((part) => part.startsWith('--from='))?.slice('--from='.length);
    const paths = parts.filter((part) => !part.startsWith('--'));
    const dest = posix.resolve(workdir, paths.pop() ?? '');
    found.push({ from, sources: paths.map((path) => path.replace(/\/$/, '')), dest });
  }
  return { workdir, found };
}

const last = (stage: Stage, keyword: string) =>
  stage.instructions.filter((instruction) => instruction.keyword === keyword).at(-1)?.args;

/** .dockerignore as Docker reads it: patterns from the context root, `**` spans folders, `!` re-includes. */
function ignoredByDocker(path: string, context = '.'): boolean {
  const patterns = read(posix.join(context, '.dockerignore'))
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line && !line.startsWith('#'));
  const matches = (pattern: string) => {
    const source = pattern
      .replace(/^\//, '')
      .replace(/[.+^${}()|[\]\\]/g, '\\$&')
      .replace(/\*\*\/?|\*|\?/g, (glob) =>
        glob === '?' ? '[^/]' : glob === '*' ? '[^/]*' : '(?:.*/)?',
      );
    // A pattern that names a folder leaves out everything inside it.
    return new RegExp(`^${source}(?:/.*)?$`).test(path);
  };
  let ignored = false;
  for (const pattern of patterns) {
    if (pattern.startsWith('!')) {
      if (matches(pattern.slice(1))) ignored = false;
    } else if (matches(pattern)) ignored = true;
  }
  return ignored;
}

const workspaces = (JSON.parse(read('package.json')) as { workspaces: string[] }).workspaces
  .map((glob) => glob.replace(/\/\*$/, ''))
  .flatMap((dir) => readdirSync(new URL(`${dir}/`, root)).map((name) => `${dir}/${name}`))
  .filter((dir) => existsSync(new URL(`${dir}/package.json`, root)));

const redis = service('redis');
const api = service('api');
const worker = service('worker');
const redisArgs = words(redis.command);
const redisOption = (name: string) => redisArgs[redisArgs.indexOf(name) + 1];

const appDockerfile = dockerfileOf(api) ?? '';
const stages = parseDockerfile(read(appDockerfile));
const runtime = stages.at(-1) as Stage;
const runtimeCopies = copies(runtime);
const imageCommand = execForm(last(runtime, 'CMD') ?? '[]');
const imageEntrypoint = last(runtime, 'ENTRYPOINT');
/** What a service's container runs: its own command/entrypoint, else the image's. */
const processOf = (svc: Service) => [
  ...(svc.entrypoint ? words(svc.entrypoint) : imageEntrypoint ? execForm(imageEntrypoint) : []),
  ...(svc.command ? words(svc.command) : imageCommand),
];

describe('docker compose: redis', () => {
  it('writes every change to an append-only file, synced every second', () => {
    expect(redisOption('--appendonly')).toBe('yes');
    expect(redisOption('--appendfsync')).toBe('everysec');
  });

  it('refuses writes rather than evicting jobs when memory runs out', () => {
    expect(redisOption('--maxmemory-policy')).toBe('noeviction');
  });

  it('keeps job hashes compact, as the private redis-server of npm start does', () => {
    expect(Number(redisOption('--hash-max-listpack-value'))).toBe(HASH_MAX_LISTPACK_VALUE);
  });

  it('requires a password', () => {
    expect(redisOption('--requirepass')).toMatch(/\S/);
  });

  it('keeps its data in a named volume at /data', () => {
    const volume = (redis.volumes ?? [])
      .map((v) => (typeof v === 'string' ? v.split(':') : [v.source, v.target]))
      .find(([, target]) => target === '/data');
    expect(volume?.[0]).toBeDefined();
    expect(Object.keys(compose.volumes ?? {})).toContain(volume?.[0]);
  });

  it('is healthy only when an authenticated ping answers', () => {
    expect(words(redis.healthcheck?.test).join(' ')).toMatch(/redis-cli .*-a \S+.* ping/);
  });

  it('publishes no port, so the stack starts beside a Redis this machine already runs', () => {
    expect(redis.ports ?? []).toEqual([]);
  });
});

describe('docker compose: api', () => {
  const env = environmentOf(api);

  it('publishes port 3000 and listens on every interface inside its container', () => {
    expect(publishedPorts(api)).toContainEqual({ host: '3000', container: 3000 });
    expect(Number(env.PORT ?? 3000)).toBe(3000);
    expect(env.HOST).toBe('0.0.0.0');
  });

  it('reaches the redis service with its password', () => {
    const url = new URL(env.REDIS_URL ?? '');
    expect(url.protocol).toBe('redis:');
    expect(compose.services).toHaveProperty(url.hostname);
    expect(service(url.hostname)).toBe(redis);
    expect(decodeURIComponent(url.password)).toBe(redisOption('--requirepass'));
  });

  it('starts once redis is healthy and reports its own health on /healthz', () => {
    expect(dependsOnHealthy(api, 'redis')).toBe(true);
    expect(words(api.healthcheck?.test).join(' ')).toMatch(/127\.0\.0\.1:3000\/healthz/);
  });

  it('runs in production mode under an init', () => {
    expect(env.NODE_ENV).toBe('production');
    expect(api.init).toBe(true);
  });
});

describe('docker compose: worker', () => {
  const env = environmentOf(worker);

  it('scales with --scale: no published ports, no fixed container name or hostname', () => {
    expect(worker.ports ?? []).toEqual([]);
    expect(worker.container_name).toBeUndefined();
    // Heartbeats tell workers apart by host and pid, and every container's node has the same pid.
    expect(worker.hostname).toBeUndefined();
  });

  it('uses the same Redis as the api, once it is healthy', () => {
    expect(env.REDIS_URL).toBe(environmentOf(api).REDIS_URL);
    expect(env.OFFLOAD_PREFIX).toBe(environmentOf(api).OFFLOAD_PREFIX);
    expect(dependsOnHealthy(worker, 'redis')).toBe(true);
  });

  it('gets SIGTERM and more time to stop than it takes to drain', () => {
    expect(worker.init).toBe(true);
    expect(worker.stop_signal ?? 'SIGTERM').toBe('SIGTERM');
    const graceMs = Number(env.WORKER_SHUTDOWN_GRACE_MS ?? 30_000);
    // Docker's default is 10 s, after which it sends SIGKILL.
    expect(durationMs(worker.stop_grace_period ?? '10s')).toBeGreaterThan(graceMs);
  });

  it('passes no empty worker settings, which differ from unset ones', () => {
    for (const name of ['WORKER_CONCURRENCY', 'WORKER_QUEUES', 'WORKER_SHUTDOWN_GRACE_MS']) {
      expect(env[name], name).not.toBe('');
    }
  });
});

describe('docker compose: dashboard', () => {
  const dashboard = service('dashboard');
  const env = environmentOf(dashboard);

  it('publishes port 3001 on this machine only, and listens on every interface in its container', () => {
    expect(publishedPorts(dashboard)).toEqual([{ host: '3001', container: 3001 }]);
    expect((dashboard.ports ?? []).map((port) => interpolate(String(port)))).toEqual([
      '127.0.0.1:3001:3001',
    ]);
    expect(Number(env.DASHBOARD_PORT ?? 3001)).toBe(3001);
    expect(env.HOST).toBe('0.0.0.0');
  });

  it('reads the same Redis as the api and runs in production mode under an init', () => {
    expect(env.REDIS_URL).toBe(environmentOf(api).REDIS_URL);
    expect(env.OFFLOAD_PREFIX).toBe(environmentOf(api).OFFLOAD_PREFIX);
    expect(dependsOnHealthy(dashboard, 'redis')).toBe(true);
    expect(env.NODE_ENV).toBe('production');
    expect(dashboard.init).toBe(true);
  });

  it('takes its admin credentials from the shell, with no default password', () => {
    expect(env).toHaveProperty('ADMIN_USER');
    expect(env).toHaveProperty('ADMIN_PASSWORD');
    expect(env.ADMIN_PASSWORD).toBeUndefined();
  });

  it('reports its health on /healthz, the one route without credentials', () => {
    expect(words(dashboard.healthcheck?.test).join(' ')).toMatch(/127\.0\.0\.1:3001\/healthz/);
  });
});

describe('docker compose: every service', () => {
  it.each(Object.keys(compose.services))(
    '%s has a tagged image or a Dockerfile to build',
    (name) => {
      const svc = service(name);
      const dockerfile = dockerfileOf(svc);
      if (dockerfile) expect(existsSync(new URL(dockerfile, root)), dockerfile).toBe(true);
      else expect(interpolate(svc.image ?? '')).toMatch(/^\S+:\S+$/);
    },
  );

  it('builds one image, which the api, the worker and the dashboard run by its name', () => {
    const apps = ['api', 'worker', 'dashboard'];
    expect(apps.filter((name) => service(name).build)).toEqual(['api']);
    for (const name of apps) expect(service(name).image, name).toBe(api.image);
    // As the task project's Dockerfile names its base by default.
    expect(interpolate(api.image ?? '')).toBe('offload:latest');
  });

  it('publishes the api and the dashboard alone, each on a port a variable moves', () => {
    const published = Object.entries(compose.services)
      .filter(([, svc]) => (svc.ports ?? []).length > 0)
      .map(([name, svc]) => ({
        name,
        ports: (svc.ports ?? []).map((port) => interpolate(String(port))),
        movedBy: (svc.ports ?? []).map(
          (port) => /^[^$]*\$\{(\w+):-\d+\}:\d+$/.exec(String(port))?.[1],
        ),
      }));
    expect(published).toEqual([
      { name: 'api', ports: ['3000:3000'], movedBy: ['API_PORT'] },
      { name: 'dashboard', ports: ['127.0.0.1:3001:3001'], movedBy: ['DASHBOARD_PORT'] },
    ]);
  });

  it.each(['api', 'worker', 'dashboard'])('%s runs node itself, not npm or a shell', (name) => {
    const argv = processOf(service(name));
    expect(argv[0]).toBe('node');
    expect(argv).not.toContain('npm');
  });
});

describe('Dockerfile', () => {
  it('runs its final stage as an unprivileged user', () => {
    const user = last(runtime, 'USER');
    expect(user).toBeDefined();
    expect(user).not.toMatch(/^(root|0)(:|$)/);
  });

  it('starts the api with node by default', () => {
    expect(imageEntrypoint).toBeUndefined();
    expect(imageCommand).toEqual(['node', 'apps/api/dist/index.js']);
  });

  it('ships both bundles from the stage that builds them, where the commands look', () => {
    for (const app of ['api', 'worker', 'dashboard']) {
      const copy = runtimeCopies.found.find((c) => c.sources.includes(`/app/apps/${app}/dist`));
      expect(copy, `apps/${app}/dist`).toBeDefined();
      const from = stages.find((stage) => stage.name === copy?.from);
      expect(from?.instructions).toContainEqual({ keyword: 'RUN', args: 'npm run build' });
      const script = processOf(service(app))[1] ?? '';
      expect(posix.dirname(posix.resolve(runtimeCopies.workdir, script))).toBe(copy?.dest);
    }
  });

  it('copies the worker bundle with its executor thread beside it', () => {
    const build = (JSON.parse(read('apps/worker/package.json')) as { scripts: { build: string } })
      .scripts.build;
    // Both entries land in dist/, and the whole folder is copied, so the thread file is there.
    expect(build.split(/\s+/)).toEqual(
      expect.arrayContaining(['src/index.ts', 'src/executor-thread.ts']),
    );
    expect(processOf(worker)[1]).toBe('apps/worker/dist/index.js');
  });

  it('installs the production dependencies of the apps it runs, from every workspace manifest', () => {
    const runs = runtime.instructions.filter((i) => i.keyword === 'RUN').map((i) => i.args);
    const install = runs.find((run) => /\bnpm ci\b/.test(run)) ?? '';
    expect(install).toMatch(/--omit=dev\b/);
    // npm ci links every workspace the lockfile names; without its manifest the link points at nothing.
    const at = runtime.instructions.findIndex((i) => i.args === install);
    const copied = copies({ instructions: runtime.instructions.slice(0, at) }).found.flatMap(
      (c) => c.sources,
    );
    expect(copied).toEqual(
      expect.arrayContaining([
        'package.json',
        'package-lock.json',
        ...workspaces.map((dir) => `${dir}/package.json`),
      ]),
    );
    // Only the apps' dependencies: not the client CLI's tsx nor an example's marked.
    const installed = [...install.matchAll(/--workspace[= ](\S+)/g)].map((m) => m[1]).sort();
    const apps = ['api', 'worker', 'dashboard'].map((name) =>
      posix.dirname(posix.dirname(processOf(service(name))[1] ?? '')),
    );
    expect(installed).toEqual(apps.sort());
  });

  it('ships no sources but those a task module imports: @offload/tasks and the packages it uses, and the offload Python package', () => {
    const tasksManifest = JSON.parse(read('packages/tasks/package.json')) as {
      dependencies: Record<string, string>;
    };
    const imported = [
      'packages/tasks',
      ...Object.keys(tasksManifest.dependencies)
        .filter((name) => name.startsWith('@offload/'))
        .map((name) => `packages/${name.slice('@offload/'.length)}`),
    ];
    const fromContext = runtimeCopies.found.filter((c) => !c.from).flatMap((c) => c.sources);
    const sources = fromContext.filter((source) => !posix.basename(source).startsWith('package'));
    // A Python tasks file imports `offload`, which the worker finds at sdk/python.
    expect(sources.sort()).toEqual(
      [...imported.map((dir) => `${dir}/src`), 'sdk/python/offload'].sort(),
    );
    // What the copied folders hold is what these packages export: TypeScript that Node 24
    // loads by stripping types, from packages/ (the real path of node_modules/@offload/*).
    for (const dir of imported) {
      const manifest = JSON.parse(read(`${dir}/package.json`)) as {
        exports: Record<string, string>;
      };
      for (const target of Object.values(manifest.exports)) expect(target).toMatch(/^\.\/src\//);
    }
    for (const copy of runtimeCopies.found.filter((c) => c.from)) {
      for (const source of copy.sources) expect(source).toMatch(/\/dist$/);
    }
  });

  it('builds with dev dependencies, which hold esbuild and turbo', () => {
    const build = stages.find((stage) =>
      stage.instructions.some((i) => i.keyword === 'RUN' && i.args === 'npm run build'),
    );
    const install = build?.instructions.find((i) => /\bnpm ci\b/.test(i.args));
    expect(install?.args).not.toMatch(/--omit=dev|--production/);
  });

  it('leaves host installs, builds and secrets out of the build context', () => {
    for (const path of [
      'node_modules',
      ...workspaces.flatMap((dir) => [`${dir}/node_modules`, `${dir}/dist/index.js`]),
      '.env',
      '.data/redis/appendonly.aof',
      '.git',
    ]) {
      expect(ignoredByDocker(path), path).toBe(true);
    }
    for (const path of ['package-lock.json', 'apps/worker/src/index.ts', 'scripts/bundle.ts']) {
      expect(ignoredByDocker(path), path).toBe(false);
    }
  });
});

describe('docker-compose.tasks.yml: a task file mounted into the worker', () => {
  const override = parse(read('docker-compose.tasks.yml')) as Compose;
  const mounted = override.services.worker as Service;
  const env = environmentOf(mounted);
  const mount = (mounted.volumes ?? []).map((v) => {
    const [source = '', target, mode] =
      typeof v === 'string' ? interpolate(v).split(':') : [v.source, v.target, 'ro'];
    return { source, target, mode };
  });

  it('changes the worker alone, which keeps its image, command and Redis', () => {
    expect(Object.keys(override.services)).toEqual(['worker']);
    for (const key of ['build', 'image', 'command', 'entrypoint'] as const) {
      expect(mounted[key], key).toBeUndefined();
    }
    expect(Object.keys(env)).toEqual(['OFFLOAD_TASKS']);
  });

  it('mounts one folder of this machine read-only, outside the image’s /app', () => {
    expect(mount).toHaveLength(1);
    const [folder] = mount;
    // A path, not a volume name: Compose takes a source with a slash or dot as a host folder.
    expect(folder?.source).toMatch(/^[./]/);
    expect(folder?.mode).toBe('ro');
    expect(posix.relative(runtimeCopies.workdir, folder?.target ?? '/app')).toMatch(/^\.\.\//);
  });

  it('points OFFLOAD_TASKS at a .ts file inside that folder', () => {
    const file = env.OFFLOAD_TASKS ?? '';
    expect(file).toMatch(/\.ts$/);
    expect(posix.dirname(file)).toBe(mount[0]?.target);
  });
});

describe('examples/markdown-tasks/Dockerfile: a task project on top of Offload’s image', () => {
  const context = 'examples/markdown-tasks';
  const text = read(`${context}/Dockerfile`);
  const [project] = parseDockerfile(text) as [Stage];
  const projectCopies = copies(project);
  const manifest = JSON.parse(read(`${context}/package.json`)) as {
    exports: Record<string, string>;
    dependencies: Record<string, string>;
  };
  const env = Object.fromEntries(
    project.instructions
      .filter((i) => i.keyword === 'ENV')
      .map((i) => i.args.split('=') as [string, string]),
  );

  it('starts FROM Offload’s image, named by a build argument', () => {
    const arg = /^ARG\s+(\w+)=(\S+)$/m.exec(text);
    expect(arg?.[2]).toMatch(/^offload:\S+$/);
    expect(project.instructions[0]).toEqual({ keyword: 'FROM', args: `\${${arg?.[1]}}` });
  });

  it('copies the project to one folder, which OFFLOAD_TASKS names', () => {
    const dests = projectCopies.found.map((c) => c.dest);
    expect(projectCopies.found.flatMap((c) => c.sources).sort()).toEqual(['package.json', 'src']);
    const folder = env.OFFLOAD_TASKS ?? '';
    expect(dests.every((dest) => dest === folder || posix.dirname(dest) === folder)).toBe(true);
    expect(posix.relative('/app', folder)).toMatch(/^\.\.\//);
    // The worker imports the project through its exports, which point into the copied src/.
    expect(manifest.exports['.']).toMatch(/^\.\/src\//);
  });

  it('installs the project’s own production dependencies, not the ones the worker provides', () => {
    const install = project.instructions.find(
      (i) => i.keyword === 'RUN' && /\bnpm (ci|install)\b/.test(i.args),
    );
    expect(install?.args).toMatch(/--omit=dev\b/);
    // Workspace names of this repository: a registry would serve someone else's package.
    for (const name of Object.keys(manifest.dependencies).filter((n) =>
      n.startsWith('@offload/'),
    )) {
      expect(install?.args).toContain(`'dependencies.${name}'`);
    }
  });

  it('runs the worker with node, as the unprivileged user of Offload’s image', () => {
    expect(execForm(last(project, 'CMD') ?? '[]')).toEqual(processOf(worker));
    expect(last(project, 'USER')).toBe(last(runtime, 'USER'));
    expect(last(project, 'WORKDIR')).toBe(runtimeCopies.workdir);
  });

  it('leaves the host’s install out of its build context', () => {
    expect(ignoredByDocker('node_modules/marked/package.json', context)).toBe(true);
    expect(ignoredByDocker('src/index.ts', context)).toBe(false);
  });
});

describe('the Redis that npm start suggests: docker-compose.dev.yml', () => {
  const dev = parse(read('docker-compose.dev.yml')) as Compose;

  it('publishes the stack’s Redis on this machine’s loopback, and changes nothing else', () => {
    expect(Object.keys(dev.services)).toEqual(['redis']);
    expect(dev.services.redis).toEqual({ ports: [expect.any(String)] });
    expect((dev.services.redis?.ports ?? []).map((p) => interpolate(String(p)))).toEqual([
      '127.0.0.1:6379:6379',
    ]);
  });

  it('is the file the hint names, with the URL that reaches it', async () => {
    const { NO_REDIS_MESSAGE } = await import('../../scripts/choose-redis.ts');
    expect(NO_REDIS_MESSAGE).toContain(
      'COMPOSE_FILE=docker-compose.yml:docker-compose.dev.yml docker compose up -d redis',
    );
    const password = environmentOf(service('redis')).REDIS_PASSWORD;
    expect(NO_REDIS_MESSAGE).toContain(`REDIS_URL=redis://:${password}@127.0.0.1:6379`);
  });
});
