#!/usr/bin/env node
// The `pgferry` command. In the published package it runs the compiled CLI
// (dist/). Inside a clone, where dist/ is not built, it runs the TypeScript
// source through tsx (a devDependency), so `npx pgferry` works right after
// `npm ci` and always runs the code you see.
import { existsSync } from 'node:fs';
import process from 'node:process';
import { URL } from 'node:url';

const source = new URL('../src/cli/main.ts', import.meta.url);
let cli;
if (existsSync(source)) {
  const { register } = await import('tsx/esm/api');
  register();
  cli = await import(source.href);
} else {
  cli = await import(new URL('../dist/cli/main.js', import.meta.url).href);
}
process.exitCode = await cli.main(process.argv.slice(2));
