import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { ScaledObject } from '@kubernetes-models/keda/keda.sh/v1alpha1';
import { Deployment } from 'kubernetes-models/apps/v1';
import { PodDisruptionBudget } from 'kubernetes-models/policy/v1';
import { Namespace, PersistentVolumeClaim, Secret, Service } from 'kubernetes-models/v1';
import { describe, expect, it } from 'vitest';
import { loadApiEnv } from '../../apps/api/src/env.ts';
import { loadDashboardEnv } from '../../apps/dashboard/src/env.ts';
import { loadWorkerEnv } from '../../apps/worker/src/env.ts';
import { type Container, containersOf, kustomizeBuild, type Manifest } from './kustomize.ts';

/**
 * deploy/kubernetes, built as `kubectl apply -k` would build each overlay
 * (kustomize.ts; no cluster here), every document checked against the
 * Kubernetes and KEDA schemas (kubernetes-models), and the references between
 * them checked as a cluster would only show at run time.
 */
const root = new URL('../../', import.meta.url);
const read = (path: string) => readFileSync(new URL(path, root), 'utf8');
const overlaysDir = fileURLToPath(new URL('deploy/kubernetes/overlays/', root));
const overlays = readdirSync(overlaysDir);

/** The example beside each secret env file stands in for it: real ones are never committed. */
function build(overlay: string): Manifest[] {
  return kustomizeBuild(`${overlaysDir}${overlay}`, {
    readEnvFile: (path) => readFileSync(`${path}.example`, 'utf8'),
  });
}

const MODELS: Record<string, { new (data: never): { validate(): void } }> = {
  'v1/Namespace': Namespace,
  'v1/PersistentVolumeClaim': PersistentVolumeClaim,
  'v1/Secret': Secret,
  'v1/Service': Service,
  'apps/v1/Deployment': Deployment,
  'policy/v1/PodDisruptionBudget': PodDisruptionBudget,
  'keda.sh/v1alpha1/ScaledObject': ScaledObject,
};

/**
 * Validates `manifest` with its model and answers the paths of the fields the
 * schema does not know. The schemas accept unknown fields, as the OpenAPI ones
 * do, but `kubectl apply` refuses them (--validate=strict, its default), and a
 * misspelt field would otherwise pass unnoticed: the validator reads every
 * field its schema knows, so a field it never read is one it does not know.
 */
function validate(manifest: Manifest): string[] {
  const Model = MODELS[`${manifest.apiVersion}/${manifest.kind}`];
  if (!Model) throw new Error(`no schema for ${manifest.apiVersion} ${manifest.kind}`);
  const model = new Model(manifest as never);
  const watched = watchReads(manifest, '');
  model.validate.call(watched.proxy);
  return watched.unread();
}

function watchReads(value: object, path: string): { proxy: object; unread(): string[] } {
  const read = new Set<string>();
  const children = new Map<string, ReturnType<typeof watchReads>>();
  const proxy = new Proxy(value, {
    get(target, key, receiver) {
      const field = Reflect.get(target, key, receiver) as unknown;
      if (typeof key !== 'string') return field;
      read.add(key);
      if (typeof field !== 'object' || field === null) return field;
      let child = children.get(key);
      if (!child) {
        child = watchReads(field, `${path}/${key}`);
        children.set(key, child);
      }
      return child.proxy;
    },
    has(target, key) {
      if (typeof key === 'string') read.add(key);
      return Reflect.has(target, key);
    },
  });
  const unread = () => [
    ...(Array.isArray(value) ? [] : Object.keys(value).filter((key) => !read.has(key))),
    ...[...children.values()].flatMap((child) => child.unread()),
  ];
  return {
    proxy,
    unread: () => unread().map((key) => (key.startsWith('/') ? key : `${path}/${key}`)),
  };
}

type Labels = Record<string, string>;
type EnvVar = {
  name: string;
  value?: string;
  valueFrom?: { secretKeyRef?: { name: string; key: string } };
};
type Probe = { httpGet?: { path: string; port: string | number } };
type PodContainer = Container & {
  command?: string[];
  ports?: { name?: string; containerPort: number }[];
  env?: EnvVar[];
  livenessProbe?: Probe;
  readinessProbe?: Probe;
  resources?: { requests?: Record<string, string>; limits?: Record<string, string> };
  securityContext?: { readOnlyRootFilesystem?: boolean; allowPrivilegeEscalation?: boolean };
};
type PodTemplate = {
  metadata: { labels: Labels; annotations?: Record<string, string> };
  spec: {
    containers: PodContainer[];
    terminationGracePeriodSeconds?: number;
    securityContext?: { runAsNonRoot?: boolean; runAsUser?: number };
  };
};
type DeploymentSpec = {
  replicas?: number;
  selector: { matchLabels: Labels };
  template: PodTemplate;
};
type Trigger = { type: string; metadata: Record<string, string> };

const of = (manifests: Manifest[], kind: string, name: string) => {
  const found = manifests.find((m) => m.kind === kind && m.metadata.name === name);
  if (!found) throw new Error(`no ${kind} ${name}`);
  return found;
};
const deployment = (manifests: Manifest[], name: string) =>
  of(manifests, 'Deployment', name).spec as DeploymentSpec;
const onlyContainer = (spec: DeploymentSpec): PodContainer => {
  expect(spec.template.spec.containers).toHaveLength(1);
  return spec.template.spec.containers[0] as PodContainer;
};
const selects = (selector: Labels, labels: Labels) =>
  Object.entries(selector).every(([key, value]) => labels[key] === value);
const envValue = (container: PodContainer, name: string) =>
  container.env?.find((variable) => variable.name === name)?.value;

/** The app each container runs, by its command, and the env.ts that parses its environment. */
const APPS: Record<string, (env: NodeJS.ProcessEnv) => Record<string, unknown>> = {
  'apps/api/dist/index.js': loadApiEnv,
  'apps/worker/dist/index.js': loadWorkerEnv,
  'apps/dashboard/dist/index.js': loadDashboardEnv,
};
/** Values that the apps accept in production, for the keys the Secrets hold. */
const SECRET_SAMPLES: Record<string, string> = {
  REDIS_URL: 'redis://:s3cret@redis.offload.svc:6379',
  API_KEYS: `acme:${'k'.repeat(32)}`,
  ADMIN_USER: 'operator',
  ADMIN_PASSWORD: 'plinth-OUTRUN-gazebo-77',
};

/** The variables README's Configuration table documents. */
const documented = new Set(
  (read('README.md').split('\n## Configuration')[1]?.split('\n## ')[0] ?? '')
    .split('\n')
    .filter((line) => line.startsWith('| `'))
    .flatMap((line) => [...(line.split('|')[1] ?? '').matchAll(/`(\w+)`/g)].map((m) => m[1])),
);

it('has overlays to build, and a base whose every document is valid before they patch it', () => {
  expect(overlays).toEqual(expect.arrayContaining(['production', 'scale-to-zero']));
  const base = kustomizeBuild(fileURLToPath(new URL('deploy/kubernetes/base', root)), {
    readEnvFile: () => {
      throw new Error('the base generates no Secret: each overlay does');
    },
  });
  expect(base.length).toBeGreaterThan(0);
  for (const manifest of base) {
    expect(validate(manifest), `${manifest.kind} ${manifest.metadata.name}`).toEqual([]);
  }
});

describe.each(overlays)('deploy/kubernetes/overlays/%s', (overlay) => {
  const manifests = build(overlay);
  const api = deployment(manifests, 'offload-api');
  const worker = deployment(manifests, 'offload-worker');
  const dashboard = deployment(manifests, 'offload-dashboard');
  const apiContainer = onlyContainer(api);
  const workerContainer = onlyContainer(worker);
  const podTemplates = manifests
    .filter((m) => m.kind === 'Deployment')
    .map((m) => (m.spec as DeploymentSpec).template);

  it('is valid against the Kubernetes and KEDA schemas, with no field they do not know', () => {
    expect(manifests.map((m) => m.kind).sort()).toEqual(
      [
        'Deployment',
        'Deployment',
        'Deployment',
        'Namespace',
        'PersistentVolumeClaim',
        'PodDisruptionBudget',
        'ScaledObject',
        'Secret',
        'Secret',
        'Secret',
        'Service',
        'Service',
      ].sort(),
    );
    for (const manifest of manifests) {
      expect(validate(manifest), `${manifest.kind} ${manifest.metadata.name}`).toEqual([]);
    }
  });

  it('puts everything in one namespace, which it creates', () => {
    const namespace = of(manifests, 'Namespace', 'offload').metadata.name;
    for (const manifest of manifests.filter((m) => m.kind !== 'Namespace')) {
      expect(manifest.metadata.namespace, manifest.metadata.name).toBe(namespace);
    }
  });

  it('has each Deployment select its own pods, and the Services and the PDB select only theirs', () => {
    const pods = Object.fromEntries(
      ['offload-api', 'offload-worker', 'offload-dashboard'].map((name) => [
        name,
        deployment(manifests, name).template.metadata.labels,
      ]),
    );
    for (const name of Object.keys(pods)) {
      expect(selects(deployment(manifests, name).selector.matchLabels, pods[name] ?? {})).toBe(
        true,
      );
    }
    const selectedBy = (selector: Labels) =>
      Object.keys(pods).filter((name) => selects(selector, pods[name] ?? {}));
    const service = (name: string) =>
      of(manifests, 'Service', name).spec as {
        selector: Labels;
        ports: { port: number; targetPort: string | number }[];
      };
    expect(selectedBy(service('offload-api').selector)).toEqual(['offload-api']);
    expect(selectedBy(service('offload-dashboard').selector)).toEqual(['offload-dashboard']);
    const pdb = of(manifests, 'PodDisruptionBudget', 'offload-api').spec as {
      selector: { matchLabels: Labels };
    };
    expect(selectedBy(pdb.selector.matchLabels)).toEqual(['offload-api']);
    // Each Service's target port is a port its pods listen on.
    expect(service('offload-api').ports.map((p) => portOf(apiContainer, p.targetPort))).toEqual([
      3000,
    ]);
    expect(
      service('offload-dashboard').ports.map((p) => portOf(onlyContainer(dashboard), p.targetPort)),
    ).toEqual([3001]);
  });

  it('probes the API on /healthz and /readyz, the dashboard on /healthz, on the ports they listen on', () => {
    const apiPort = Number(envValue(apiContainer, 'PORT'));
    expect(apiContainer.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(apiContainer.readinessProbe?.httpGet?.path).toBe('/readyz');
    for (const probe of [apiContainer.livenessProbe, apiContainer.readinessProbe]) {
      expect(portOf(apiContainer, probe?.httpGet?.port)).toBe(apiPort);
    }
    const board = onlyContainer(dashboard);
    const boardPort = Number(envValue(board, 'DASHBOARD_PORT'));
    for (const probe of [board.livenessProbe, board.readinessProbe]) {
      expect(probe?.httpGet?.path).toBe('/healthz');
      expect(portOf(board, probe?.httpGet?.port)).toBe(boardPort);
    }
    // Listening on every interface of the pod, or the kubelet could not reach it.
    expect(envValue(apiContainer, 'HOST')).toBe('0.0.0.0');
    expect(envValue(board, 'HOST')).toBe('0.0.0.0');
  });

  it('gives every secretKeyRef a key of a Secret it generates', () => {
    const secrets = new Map(
      manifests
        .filter((m) => m.kind === 'Secret')
        .map((m) => [m.metadata.name, Object.keys((m.data as Labels | undefined) ?? {})]),
    );
    const refs = containersOf(manifests).flatMap((c) =>
      ((c as PodContainer).env ?? []).flatMap((v) =>
        v.valueFrom?.secretKeyRef ? [v.valueFrom.secretKeyRef] : [],
      ),
    );
    expect(refs.length).toBeGreaterThan(0);
    for (const { name, key } of refs) expect(secrets.get(name), name).toContain(key);
    expect([...secrets.values()].flat().sort()).toEqual(Object.keys(SECRET_SAMPLES).sort());
  });

  it('gives each container an environment its app starts with: names it reads and documents, values it accepts', () => {
    for (const container of containersOf(manifests) as PodContainer[]) {
      expect(container.command?.[0]).toBe('node');
      const load = APPS[container.command?.[1] ?? ''];
      if (!load) throw new Error(`${container.name} runs no Offload app: ${container.command}`);
      const env = environmentOf(container);
      expect(env.NODE_ENV).toBe('production');
      const parsed = load(env);
      for (const name of Object.keys(env)) {
        expect(Object.keys(parsed), `${container.name} does not read ${name}`).toContain(name);
        expect(documented, `README does not document ${name}`).toContain(name);
      }
    }
  });

  it('gives a worker longer to stop than it lets running jobs finish', () => {
    const { WORKER_SHUTDOWN_GRACE_MS } = loadWorkerEnv(environmentOf(workerContainer));
    const graceS = worker.template.spec.terminationGracePeriodSeconds ?? 30;
    // 10 s at least for handing back the jobs still running, closing, exiting.
    expect(graceS * 1000).toBeGreaterThanOrEqual(WORKER_SHUTDOWN_GRACE_MS + 10_000);
  });

  it('scales the worker Deployment on the depth of the queue its workers serve, a pod per WORKER_CONCURRENCY jobs', () => {
    const scaled = of(manifests, 'ScaledObject', 'offload-worker').spec as {
      scaleTargetRef: { name: string; kind?: string };
      minReplicaCount?: number;
      maxReplicaCount?: number;
      triggers: Trigger[];
    };
    expect(scaled.scaleTargetRef.kind ?? 'Deployment').toBe('Deployment');
    expect(deployment(manifests, scaled.scaleTargetRef.name)).toBe(worker);
    // KEDA's autoscaler owns the size: a number here would reset it at every apply.
    expect(worker.replicas).toBeUndefined();
    const queues = envValue(workerContainer, 'WORKER_QUEUES')?.split(',');
    const concurrency = envValue(workerContainer, 'WORKER_CONCURRENCY');
    expect(workerContainer.resources?.limits?.cpu).toBe(concurrency);
    expect(scaled.triggers.length).toBeGreaterThan(0);
    for (const trigger of scaled.triggers) {
      const { metric, target } = readsDepth(trigger, manifests);
      const queue = metric.match(/^(?:max\()?offload_queue_depth\{queue="([^"]+)"\}\)?$/)?.[1];
      expect(queues, metric).toContain(queue);
      expect(target).toBe(concurrency);
    }
    expect(read('apps/api/src/metrics.ts')).toContain("name: 'offload_queue_depth'");
  });

  it('runs every pod from the one image, as a user, on a read-only root filesystem, within set resources', () => {
    const images = new Set(containersOf(manifests).map((c) => c.image));
    expect(images.size).toBe(1);
    for (const pod of podTemplates) {
      expect(pod.spec.securityContext?.runAsNonRoot).toBe(true);
      // The image's `node` user by number: runAsNonRoot cannot check a user name.
      expect(pod.spec.securityContext?.runAsUser).toBe(1000);
      for (const container of pod.spec.containers) {
        expect(container.securityContext?.readOnlyRootFilesystem).toBe(true);
        expect(container.securityContext?.allowPrivilegeEscalation).toBe(false);
        expect(container.resources?.requests?.cpu).toBeDefined();
        expect(container.resources?.limits?.memory).toBeDefined();
      }
    }
    // What Prometheus scrapes: the API's /metrics, with the depth, and each worker's.
    for (const [pod, port] of [
      [api.template, Number(envValue(apiContainer, 'PORT'))],
      [worker.template, Number(envValue(workerContainer, 'WORKER_METRICS_PORT'))],
    ] as const) {
      expect(pod.metadata.annotations).toMatchObject({
        'prometheus.io/scrape': 'true',
        'prometheus.io/port': String(port),
        'prometheus.io/path': '/metrics',
      });
    }
    expect(envValue(workerContainer, 'WORKER_METRICS_HOST')).toBe('0.0.0.0');
  });
});

it('keeps workers up in production, and lets the fleet go to 0 in scale-to-zero', () => {
  const minimum = (overlay: string) =>
    (of(build(overlay), 'ScaledObject', 'offload-worker').spec as { minReplicaCount: number })
      .minReplicaCount;
  expect(minimum('production')).toBeGreaterThanOrEqual(1);
  expect(minimum('scale-to-zero')).toBe(0);
  expect(existsSync(new URL('deploy/kubernetes/.gitignore', root))).toBe(true);
  expect(read('deploy/kubernetes/.gitignore')).toContain('overlays/*/secrets/*.env');
});

/** A container's environment, the Secrets' keys given SECRET_SAMPLES' values. */
function environmentOf(container: PodContainer): Record<string, string> {
  const env: Record<string, string> = {};
  for (const variable of container.env ?? []) {
    const secret = variable.valueFrom?.secretKeyRef;
    env[variable.name] = secret ? (SECRET_SAMPLES[secret.key] ?? '') : (variable.value ?? '');
  }
  return env;
}

/** The container port a probe or a Service names, by name or number. */
function portOf(container: PodContainer, port: string | number | undefined): number | undefined {
  if (typeof port === 'number')
    return container.ports?.some((p) => p.containerPort === port) ? port : undefined;
  return container.ports?.find((p) => p.name === port)?.containerPort;
}

/**
 * The series a trigger reads and its target per pod: a Prometheus query, or the
 * API's own /metrics read by KEDA's metrics-api scaler through the API Service.
 */
function readsDepth(trigger: Trigger, manifests: Manifest[]): { metric: string; target?: string } {
  const { metadata } = trigger;
  if (trigger.type === 'prometheus') {
    expect(metadata.ignoreNullValues).toBe('false');
    return { metric: metadata.query ?? '', target: metadata.threshold };
  }
  if (trigger.type === 'metrics-api') {
    const url = new URL(metadata.url ?? '');
    const [service, namespace] = url.hostname.split('.');
    const found = of(manifests, 'Service', service ?? '');
    expect(found.metadata.namespace).toBe(namespace);
    const ports = (found.spec as { ports: { port: number }[] }).ports.map((p) => p.port);
    expect(ports).toContain(Number(url.port));
    expect(url.pathname).toBe('/metrics');
    expect(metadata.format).toBe('prometheus');
    return { metric: metadata.valueLocation ?? '', target: metadata.targetValue };
  }
  throw new Error(`a trigger of type ${trigger.type} does not read offload_queue_depth`);
}
