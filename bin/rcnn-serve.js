#!/usr/bin/env node
// Entry point of the `rcnn-serve` command; the code is compiled to dist/ by `npm install` (prepare).
import { main } from '../dist/cli/main.js';

process.exitCode = await main(process.argv.slice(2));
