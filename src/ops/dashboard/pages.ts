// The dashboard's pages, by layer.
export { filterFrom, notFound, type PageContext, type Rendered } from './page-parts.js';
export { overview, queues, queueDetail } from './queue-pages.js';
export { tasks, taskDetail } from './task-pages.js';
export { jobDetail } from './job-page.js';
export { streams, bus } from './stream-pages.js';
