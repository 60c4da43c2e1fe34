#!/usr/bin/env node
// Entry point of the `rcnn-serve` command; the code is compiled to dist/ by `npm install` (prepare).
import { main } from '../dist/cli/main.js';

// A reader that has what it wants closes the pipe (`rcnn-serve detect ... | head`): stop there, quietly
// and with status 0, as the reader expects, instead of dying of the unhandled EPIPE with a stack trace.
process.stdout.on('error', (error) => {
  if (error.code !== 'EPIPE') throw error;
  process.exit(0);
});
process.exitCode = await main(process.argv.slice(2));
