# One image for every app. The default command runs the API; the worker and
# the dashboard run the same image with `node apps/worker/dist/index.js` and
# `node apps/dashboard/dist/index.js`.
# Both commands start `node` itself, never `npm run`: npm does not forward
# SIGTERM, so a worker under it could not drain its running jobs.

FROM node:24-bookworm-slim AS build
WORKDIR /app
ENV TURBO_TELEMETRY_DISABLED=1
# Manifests before sources, so the dependency layer is reused until one changes.
COPY package.json package-lock.json ./
COPY apps/api/package.json apps/api/
COPY apps/worker/package.json apps/worker/
COPY apps/dashboard/package.json apps/dashboard/
COPY packages/client/package.json packages/client/
COPY packages/problem/package.json packages/problem/
COPY packages/queue/package.json packages/queue/
COPY packages/tasks/package.json packages/tasks/
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
# Every workspace manifest is needed: npm ci refuses a lockfile whose
# workspaces are missing, and it installs the apps' and packages' dependencies.
COPY package.json package-lock.json ./
COPY apps/api/package.json apps/api/
COPY apps/worker/package.json apps/worker/
COPY apps/dashboard/package.json apps/dashboard/
COPY packages/client/package.json packages/client/
COPY packages/problem/package.json packages/problem/
COPY packages/queue/package.json packages/queue/
COPY packages/tasks/package.json packages/tasks/
RUN npm ci --omit=dev --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/apps/api/dist apps/api/dist
# The worker starts executor threads from executor-thread.js next to its own
# bundle: copy the whole folder, not index.js alone.
COPY --from=build /app/apps/worker/dist apps/worker/dist
# bull-board serves its UI from @bull-board/ui in node_modules, so the bundle is all the dashboard needs.
COPY --from=build /app/apps/dashboard/dist apps/dashboard/dist
# Files stay owned by root and read-only to the process; nothing writes to /app.
USER node
EXPOSE 3000
# No HEALTHCHECK here: the worker shares this image and serves no HTTP.
# docker-compose.yml checks the API's /healthz instead.
CMD ["node", "apps/api/dist/index.js"]
