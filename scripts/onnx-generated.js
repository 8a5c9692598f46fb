// The folders around the protobufjs code that `npm run build:proto` generates from lib/onnx/onnx.proto:
//   node scripts/onnx-generated.js mkdir   creates lib/onnx/generated/ (pbjs does not create its output folder);
//   node scripts/onnx-generated.js copy    copies onnx.js and onnx.d.ts from there to dist/lib/onnx/generated/,
//                                          next to tsc's output for lib/onnx/*.ts (tsc copies no .js files).
'use strict';
const fs = require('node:fs');
const path = require('node:path');

const root = path.join(__dirname, '..');
const generated = path.join(root, 'lib', 'onnx', 'generated');
const dist = path.join(root, 'dist', 'lib', 'onnx', 'generated');

const mode = process.argv[2];
if (mode === 'mkdir') {
  fs.mkdirSync(generated, { recursive: true });
} else if (mode === 'copy') {
  fs.mkdirSync(dist, { recursive: true });
  for (const name of ['onnx.js', 'onnx.d.ts']) fs.copyFileSync(path.join(generated, name), path.join(dist, name));
} else {
  console.error('usage: node scripts/onnx-generated.js mkdir|copy');
  process.exit(2);
}
