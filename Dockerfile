# One image for every app. The default command runs the API; the worker and
# the dashboard run the same image with `node apps/worker/dist/index.js` and
# `node apps/dashboard/dist/index.js`.
# Both commands start `node` itself, never `npm run`: npm does not forward
# SIGTERM, so a worker under it could not drain its running jobs.
# Task modules of one's own (OFFLOAD_TASKS) come on top of this image: a
# Dockerfile that starts FROM it (examples/markdown-tasks/Dockerfile), or a
# folder mounted into the worker (docker-compose.tasks.yml).

FROM node:24-bookworm-slim AS build
WORKDIR /app
ENV TURBO_TELEMETRY_DISABLED=1
# Manifests before sources, so the dependency layer is reused until one changes.
# Every workspace's manifest: npm ci links a workspace the lockfile names even
# when its package.json is missing, and the link then points at nothing.
COPY package.json package-lock.json ./
COPY apps/api/package.json apps/api/
COPY apps/worker/package.json apps/worker/
COPY apps/dashboard/package.json apps/dashboard/
COPY packages/client/package.json packages/client/
COPY packages/contract/package.json packages/contract/
COPY packages/problem/package.json packages/problem/
COPY packages/queue/package.json packages/queue/
COPY packages/tasks/package.json packages/tasks/
COPY examples/markdown-tasks/package.json examples/markdown-tasks/
COPY examples/thumbnails/package.json examples/thumbnails/
RUN npm ci --no-audit --no-fund
COPY tsconfig.json turbo.json ./
COPY scripts scripts
COPY packages packages
COPY apps apps
# esbuild bundles the workspace packages into each app's dist/; npm dependencies
# stay external and come from the runtime stage's node_modules.
RUN npm run build

FROM node:24-bookworm-slim AS runtime
WORKDIR /app
ENV NODE_ENV=production \
    HOST=0.0.0.0 \
    PORT=3000
COPY package.json package-lock.json ./
COPY apps/api/package.json apps/api/
COPY apps/worker/package.json apps/worker/
COPY apps/dashboard/package.json apps/dashboard/
COPY packages/client/package.json packages/client/
COPY packages/contract/package.json packages/contract/
COPY packages/problem/package.json packages/problem/
COPY packages/queue/package.json packages/queue/
COPY packages/tasks/package.json packages/tasks/
COPY examples/markdown-tasks/package.json examples/markdown-tasks/
COPY examples/thumbnails/package.json examples/thumbnails/
# The production dependencies of the three apps this image runs, and of the
# workspace packages they use; not those of the client's CLI (tsx, esbuild)
# or of the examples (marked, tar): an image built FROM this one installs its task
# project's own. Every manifest is still copied above, so that the lockfile
# matches them and npm ci installs exactly what it records.
# typescript (23 MB) is removed after: valibot (under @bull-board/api) names it
# as an optional peer, and as the root's dev dependency too the lockfile marks it
# devOptional, which --omit=dev keeps. Only --omit=optional would drop it, and
# msgpackr's native extension with it. Nothing here loads it: Node strips types.
RUN npm ci --omit=dev --no-audit --no-fund \
      --workspace=apps/api --workspace=apps/worker --workspace=apps/dashboard \
    && rm -rf node_modules/typescript \
    && npm cache clean --force
# The only sources in the image: what a task module outside it imports. The
# worker resolves `@offload/tasks` for such a module (a mounted .ts file, a task
# project) to node_modules/@offload/tasks, a link to packages/tasks, whose
# exports are TypeScript; it imports @offload/contract the same way. Node 24
# strips their types as it loads them, which it does because their real path
# is under packages/, not node_modules/ (it refuses to strip types there).
COPY packages/contract/src packages/contract/src
COPY packages/tasks/src packages/tasks/src
COPY --from=build /app/apps/api/dist apps/api/dist
# The worker starts executor threads from executor-thread.js next to its own
# bundle: copy the whole folder, not index.js alone.
COPY --from=build /app/apps/worker/dist apps/worker/dist
# The Python package a worker's Python executors import (found at ../../../sdk/python
# from the worker's bundle). This image has no Python: an image for Python tasks
# starts FROM it and adds python3 (README, "Python tasks").
COPY sdk/python/offload sdk/python/offload
# bull-board serves its UI from @bull-board/ui in node_modules, so the bundle is all the dashboard needs.
COPY --from=build /app/apps/dashboard/dist apps/dashboard/dist
# Files stay owned by root and read-only to the process; nothing writes to /app.
# The blob store's folder (BLOB_DIR in docker-compose.yml) is the user's: a volume
# mounted there empty takes this owner.
RUN mkdir -p /var/lib/offload/blobs && chown node:node /var/lib/offload/blobs
USER node
EXPOSE 3000
# No HEALTHCHECK here: the worker shares this image and serves no HTTP.
# docker-compose.yml checks the API's /healthz instead.
CMD ["node", "apps/api/dist/index.js"]
