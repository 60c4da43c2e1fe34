/**
 * The rcnn-serve command line: one file per command, this one dispatches.
 * Exit codes: 0 success, 1 some input or the model failed, 2 bad usage
 * (batch adds 3, see its usage).
 */

import { BATCH_USAGE, batchCommand } from './batch.js';
import { DATASET_USAGE, datasetCommand } from './dataset.js';
import { DETECT_USAGE, detectCommand } from './detect.js';
import { EXPLAIN_USAGE, explainCommand } from './explain.js';
import { EVAL_USAGE, evalCommand } from './eval.js';
import { UsageError, type CliIo } from './flags.js';
import { describeError } from './images.js';
import { MODELS_USAGE, modelsCommand } from './models.js';
import { PROPOSALS_USAGE, proposalsCommand } from './proposals.js';
import { serveCommand } from './serve.js';
import { didYouMean } from '../suggest.js';
import { DEFAULT_MODEL } from '../model/package.js';

export type { CliIo } from './flags.js';

const VERSION = '0.1.0';

const COMMANDS = ['detect', 'explain', 'proposals', 'serve', 'batch', 'dataset', 'eval', 'models'];

const USAGE = `rcnn-serve ${VERSION}: R-CNN family object detection (region ops in TypeScript, convolutions in ONNX Runtime)

Usage:
  rcnn-serve detect IMAGE... [options]      detect objects; one result per image, in input order
  rcnn-serve explain IMAGE [options]        occlusion maps: which parts of the image a detection's score rests on
  rcnn-serve proposals IMAGE... [options]   region proposals (selective search); one result per image
  rcnn-serve serve                          the HTTP service; configured by environment variables (see README)
  rcnn-serve batch INPUT... --out FILE      many images through servers (--url) or in-process (--local), resumable
  rcnn-serve dataset --out DIR [options]    write a synthetic detection dataset (images + COCO annotations.json)
  rcnn-serve eval --gt FILE [options]       COCO AP of detections, recall of proposals
  rcnn-serve models inspect NAME_OR_DIR     layer tables of a package's graphs (shapes, parameters, multiply-adds)
  rcnn-serve models quantize PACKAGE ...    an int8 package, calibrated on your images (--calibration SRC --out DIR)
  rcnn-serve --help | --version

The default model, ${DEFAULT_MODEL}, detects only the synthetic shapes it was trained on (rcnn-serve dataset); for
photos, export a COCO model (README: "A COCO model from torchvision") and pass --model.

${DETECT_USAGE}

${EXPLAIN_USAGE}

${PROPOSALS_USAGE}

${DATASET_USAGE}

${BATCH_USAGE}

${EVAL_USAGE}

${MODELS_USAGE}

Boxes are in original-image pixels (after EXIF rotation), x1 y1 x2 y2.
Exit status: 0 all images done, 1 an image or the model failed, 2 bad usage (batch: see above).`;

const stdio: CliIo = {
  out: (line) => process.stdout.write(`${line}\n`),
  err: (line) => process.stderr.write(`${line}\n`),
};

/** Run the CLI; resolves to the exit status. */
export async function main(argv: string[], io: CliIo = stdio): Promise<number> {
  const [command, ...rest] = argv;
  try {
    switch (command) {
      case undefined:
      case '--help':
      case '-h':
      case 'help':
        io.out(USAGE);
        return command === undefined ? 2 : 0;
      case '--version':
        io.out(VERSION);
        return 0;
      case 'detect':
        return await detectCommand(rest, io, USAGE);
      case 'explain':
        return await explainCommand(rest, io);
      case 'proposals':
        return await proposalsCommand(rest, io, USAGE);
      case 'serve':
        return await serveCommand(io);
      case 'dataset':
        return await datasetCommand(rest, io, USAGE);
      case 'batch':
        return await batchCommand(rest, { ...io, tty: io === stdio && process.stderr.isTTY === true });
      case 'eval':
        return await evalCommand(rest, io.out);
      case 'models':
        return await modelsCommand(rest, io);
      default:
        throw new UsageError(`unknown command ${JSON.stringify(command)}${didYouMean(command, COMMANDS)}; commands: ${COMMANDS.join(', ')}`);
    }
  } catch (err) {
    if (err instanceof UsageError || (err as NodeJS.ErrnoException).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`usage error: ${(err as Error).message}\nRun 'rcnn-serve --help' for usage.`);
      return 2;
    }
    const e = describeError(err, argv.includes('--verbose'));
    io.err(`error: ${e.code}: ${e.message}`);
    if (e.stack) io.err(e.stack);
    return 1;
  }
}
