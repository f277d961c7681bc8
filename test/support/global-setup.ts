import type { TestProject } from 'vitest/node';
import { startTestServer } from './server.js';

declare module 'vitest' {
  export interface ProvidedContext {
    adminUrl: string;
    serverKind: string;
  }
}

export default async function setup(project: TestProject) {
  const server = await startTestServer();
  project.provide('adminUrl', server.url);
  project.provide('serverKind', server.kind);
  console.log(`[drizzle-leader tests] PostgreSQL from ${server.kind}`);
  return () => server.stop();
}
