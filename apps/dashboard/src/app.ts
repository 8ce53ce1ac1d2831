import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { HonoAdapter } from '@bull-board/hono';
import { serveStatic } from '@hono/node-server/serve-static';
import { ApiError, problemResponse } from '@offload/problem';
import { noResultError } from '@offload/problem/no-result';
import { blobResponse, isRedisUnavailable, type JobQueues, taskInfos } from '@offload/queue';
import { Hono } from 'hono';
import { csrf } from 'hono/csrf';
import { HTTPException } from 'hono/http-exception';
import { requestId } from 'hono/request-id';
import { routePath } from 'hono/route';
import type { Logger } from 'pino';
import { type AdminCredentials, adminAuth, type LoginThrottle } from './auth.ts';
import { FleetTracker } from './fleet-tracker.ts';
import { fleetPage } from './pages/fleet-page.ts';
import { jobPage, showsInline } from './pages/job-page.ts';
import {
  FLEET_PATH,
  QUEUES_PATH,
  SCHEDULES_PATH,
  TASKS_PATH,
  THROUGHPUT_PATH,
  WORKFLOWS_PATH,
} from './pages/layout.ts';
import { schedulesPage } from './pages/schedules-page.ts';
import { tasksPage } from './pages/tasks-page.ts';
import { HISTORY_SPANS, throughputPage } from './pages/throughput-page.ts';
import { WEBHOOKS_PATH, webhookMissingPage, webhookPage } from './pages/webhook-page.ts';
import { workflowMissingPage, workflowPage, workflowPath } from './pages/workflow-page.ts';
import { workflowsPage } from './pages/workflows-page.ts';
import { selfContained } from './self-contained.ts';

export interface DashboardDeps {
  jobs: JobQueues;
  logger: Logger;
  /** null: no credentials, open (refused in production by env.ts). */
  admin: AdminCredentials;
  /** Failed sign-ins per client address before it is refused; DEFAULT_LOGIN_THROTTLE when not given. */
  loginThrottle?: LoginThrottle;
}

type Env = { Variables: { requestId: string } };

/** The container health check's route, asked every 10 s: logged at debug, or it would fill the info log. */
const PROBE_PATH = '/healthz';

/** Schedules the Schedules page shows, the next to fire first: one page stays quick to read and render. */
const SCHEDULES_SHOWN = 500;

/** Running workflows the Workflows page shows at most: one page stays quick to read and render. */
const WORKFLOWS_SHOWN = 100;

/** Least time between two reads of the catalog for bull-board's queue list, ms. */
const QUEUE_SYNC_MS = 1000;

/**
 * The admin dashboard: bull-board for the queues, plus what it lacks: the
 * worker fleet, throughput and latency history, and cancel of running jobs
 * through the API's own cancel path.
 */
export function createDashboard(deps: DashboardDeps) {
  const { jobs, logger } = deps;
  const open = deps.admin === null;
  const fleet = new FleetTracker();

  const board = new HonoAdapter(serveStatic).setBasePath(QUEUES_PATH);
  const { addQueue } = createBullBoard({
    queues: [],
    serverAdapter: board,
    options: {
      uiConfig: {
        boardTitle: 'Offload',
        miscLinks: [
          { text: 'Tasks', url: TASKS_PATH },
          { text: 'Fleet', url: FLEET_PATH },
          { text: 'Throughput', url: THROUGHPUT_PATH },
          { text: 'Schedules', url: SCHEDULES_PATH },
          { text: 'Workflows', url: WORKFLOWS_PATH },
        ],
      },
    },
  });

  /**
   * Queues appear as workers publish tasks on them: each page load brings
   * bull-board up to date with the catalog, at most once per QUEUE_SYNC_MS.
   */
  const shown = new Set<string>();
  let syncedAt = 0;
  async function syncQueues(): Promise<void> {
    if (Date.now() - syncedAt < QUEUE_SYNC_MS) return;
    syncedAt = Date.now();
    const { entries } = await jobs.readCatalog();
    jobs.useQueues(entries.map((entry) => entry.queue));
    for (const queue of jobs.bullQueues()) {
      if (shown.has(queue.name)) continue;
      shown.add(queue.name);
      addQueue(new BullMQAdapter(queue));
    }
  }

  const app = new Hono<Env>()
    .use(requestId())
    .use(selfContained)
    .use(async function requestLog(c, next) {
      const started = performance.now();
      await next();
      logger[c.req.path === PROBE_PATH ? 'debug' : 'info'](
        {
          requestId: c.get('requestId'),
          method: c.req.method,
          path: c.req.path,
          route: routePath(c, -1) || 'unmatched',
          status: c.res.status,
          ms: Math.round((performance.now() - started) * 10) / 10,
        },
        'request',
      );
    })
    // For container health checks: says only that the process is up.
    .get('/healthz', (c) => c.json({ status: 'ok' }))
    .use(adminAuth(deps.admin, deps.loginThrottle))
    .use(async function queuesFromCatalog(_c, next) {
      await syncQueues();
      await next();
    })
    // Browsers resend Basic credentials on any request to this origin, a forged
    // cross-site form included: state changes must come from this origin.
    .use(csrf())
    .get('/', (c) => c.redirect(FLEET_PATH))
    .get(TASKS_PATH, async (c) => {
      const [catalog, live] = await Promise.all([jobs.readCatalog(), jobs.readFleet()]);
      const tasks = taskInfos(catalog.entries, live);
      return c.html(tasksPage({ tasks, malformed: catalog.malformed, now: Date.now(), open }));
    })
    .get(FLEET_PATH, async (c) => {
      const rows = fleet.rows(await jobs.readFleet());
      const canceledId = c.req.query('canceled');
      const task = c.req.query('task');
      return c.html(
        fleetPage({
          rows,
          now: Date.now(),
          open,
          ...(canceledId && { canceled: { id: canceledId, task: task ?? '' } }),
        }),
      );
    })
    .get('/jobs/:id', async (c) => {
      const id = c.req.param('id');
      const found = await jobs.getJobResult(id, null);
      if (!found) throw new ApiError('not_found', `No job has the id ${id}`);
      const delivery = found.view.webhook ? await jobs.webhooks.read(id) : null;
      return c.html(jobPage({ ...found, delivery, open }));
    })
    // A job's result alone, any tenant's: the bytes of a binary result from the blob store.
    .get('/jobs/:id/result', async (c) => {
      const id = c.req.param('id');
      const found = await jobs.getJobResult(id, null);
      if (!found) throw new ApiError('not_found', `No job has the id ${id}`);
      const unavailable = noResultError(found.view);
      if (unavailable) throw unavailable;
      if (!found.blob) return c.json(found.view.result ?? null);
      const answer = await blobResponse(jobs.blobs, found.blob);
      if (!answer)
        throw new ApiError('gone', `The bytes of job ${id} were removed after retention`);
      if (!showsInline(found.blob.contentType)) {
        answer.headers.set('content-disposition', `attachment; filename="${id}"`);
      }
      return answer;
    })
    .post('/jobs/:id/cancel', async (c) => {
      const id = c.req.param('id');
      const cancel = await jobs.cancelJobAsAdmin(id);
      if (!cancel) throw new ApiError('not_found', `No job has the id ${id}`);
      if (cancel.outcome === 'finished') {
        throw new ApiError(
          'job_finished',
          `Job ${id} is already ${cancel.view.state}; nothing to cancel`,
        );
      }
      logger.info({ requestId: c.get('requestId'), jobId: id }, 'job canceled from the dashboard');
      const query = new URLSearchParams({ canceled: id, task: cancel.view.task });
      return c.redirect(`${FLEET_PATH}?${query}`, 303);
    })
    .get(THROUGHPUT_PATH, async (c) => {
      const hours = Number(c.req.query('hours') ?? 1);
      if (!HISTORY_SPANS.some((span) => span === hours)) {
        throw new ApiError('validation_failed', `hours must be one of ${HISTORY_SPANS.join(', ')}`);
      }
      return c.html(throughputPage({ history: await jobs.readHistory(hours), hours, open }));
    })
    .get(SCHEDULES_PATH, async (c) => {
      const [{ schedules, total }, catalog] = await Promise.all([
        jobs.schedules.listAll(SCHEDULES_SHOWN),
        jobs.readCatalog(),
      ]);
      const queues = new Map(catalog.entries.map((entry) => [entry.name, entry.queue]));
      const deleted = c.req.query('deleted');
      return c.html(
        schedulesPage({
          schedules,
          total,
          queues,
          now: Date.now(),
          open,
          ...(deleted && { deleted }),
        }),
      );
    })
    .post(`${SCHEDULES_PATH}/:id/delete`, async (c) => {
      const id = c.req.param('id');
      if (!(await jobs.schedules.delete(id, null))) {
        throw new ApiError('not_found', `No schedule has the id ${id}`);
      }
      logger.info(
        { requestId: c.get('requestId'), scheduleId: id },
        'schedule deleted from the dashboard',
      );
      return c.redirect(`${SCHEDULES_PATH}?${new URLSearchParams({ deleted: id })}`, 303);
    })
    .get(WORKFLOWS_PATH, async (c) => {
      // The page's lookup form: any workflow by its id, running or ended.
      const lookup = c.req.query('id')?.trim();
      if (lookup) return c.redirect(workflowPath(lookup), 303);
      const { workflows, total } = await jobs.workflows.listRunning(WORKFLOWS_SHOWN);
      const canceled = c.req.query('canceled');
      return c.html(
        workflowsPage({ workflows, total, now: Date.now(), open, ...(canceled && { canceled }) }),
      );
    })
    .get(`${WEBHOOKS_PATH}/:id`, async (c) => {
      const id = c.req.param('id');
      const delivery = await jobs.webhooks.read(id);
      if (!delivery) return c.html(webhookMissingPage({ id, open }), 404);
      return c.html(webhookPage({ delivery, open }));
    })
    .get(`${WORKFLOWS_PATH}/:id`, async (c) => {
      const id = c.req.param('id');
      const [workflow, catalog] = await Promise.all([
        jobs.workflows.inspect(id),
        jobs.readCatalog(),
      ]);
      if (!workflow) return c.html(workflowMissingPage({ id, open }), 404);
      const queues = new Map(catalog.entries.map((entry) => [entry.name, entry.queue]));
      return c.html(workflowPage({ workflow, queues, now: Date.now(), open }));
    })
    .post(`${WORKFLOWS_PATH}/:id/cancel`, async (c) => {
      const id = c.req.param('id');
      const cancel = await jobs.workflows.cancel(id, null);
      if (!cancel) throw new ApiError('not_found', `No workflow has the id ${id}`);
      if (cancel.outcome === 'finished') {
        throw new ApiError(
          'workflow_finished',
          `Workflow ${id} is already ${cancel.view.state}; nothing to cancel`,
        );
      }
      logger.info(
        { requestId: c.get('requestId'), workflowId: id },
        'workflow canceled from the dashboard',
      );
      // From the workflow's own page: back to it, to see its steps canceled.
      const { back } = await c.req.parseBody();
      if (back === 'workflow') return c.redirect(workflowPath(id), 303);
      return c.redirect(`${WORKFLOWS_PATH}?${new URLSearchParams({ canceled: id })}`, 303);
    })
    .route(QUEUES_PATH, board.registerPlugin());

  app.notFound((c) => problemResponse(c, new ApiError('not_found', 'No such page')));
  app.onError((err, c) => {
    if (err instanceof ApiError) return problemResponse(c, err);
    if (err instanceof HTTPException && err.status === 401) {
      return problemResponse(
        c,
        new ApiError('unauthorized', 'Sign in with ADMIN_USER and ADMIN_PASSWORD', undefined, {
          'www-authenticate': err.getResponse().headers.get('www-authenticate') ?? 'Basic',
        }),
      );
    }
    if (err instanceof HTTPException && err.status === 403) {
      return problemResponse(
        c,
        new ApiError('cross_site_request', 'Changes are accepted from the dashboard itself only'),
      );
    }
    if (isRedisUnavailable(err)) {
      return problemResponse(
        c,
        new ApiError('redis_unavailable', 'Redis is unreachable; try again shortly'),
      );
    }
    logger.error({ err, requestId: c.get('requestId') }, 'unhandled error');
    return problemResponse(c, new ApiError('internal', 'Something went wrong on our side'));
  });
  return app;
}
