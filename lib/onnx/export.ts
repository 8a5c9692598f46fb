/**
 * The ONNX export (docs/format.md, "## ONNX"): one user graph (behaviours → U and attention) and one graph per
 * task head, opset 17, IR version 8, default domain only. Initializers are the dupn tensors unchanged, by name;
 * every layout change ONNX needs (LSTM gate order i, o, f, c, stacked weights, the zero candidate-gate block on
 * p_t, the [Wb ; Rb] bias, the column blocks of attn.w and head.<task>.0.w) is done by nodes in the graph,
 * which runtimes fold once at load time. Parts with dim 0 leave no input and no zero-size op behind.
 *
 * The feeds a runtime gives these graphs are built in feeds.ts.
 */
import * as nodePath from 'node:path';
import { onnx } from './generated/onnx';
import { checkPath, writeFilesAtomic } from '../io/atomic-file';
import { ResolvedConfig, RetrievalTask, TaskConfig, denseCount, deriveDims, targetDim, taskOutputs } from '../network/config';
import { DupnError } from '../errors';
import { ATTENTION_NAMES, LstmDirection, QUERY_TABLE_NAME, Tensors, elementCount, headStem, historyField, historyWeightName, itemTableName, layerNames, lstmDirections, lstmNames, priorName, profileTableName, propertyTableName, successorNames, tensorSpecs } from '../network/tensors';
import { AttrValue, DataType, encodeModel, floatTensor, int64Tensor, model, node, valueInfo } from './proto';

export const ONNX_OPSET = 17;
export const ONNX_IR_VERSION = 8;
export const ONNX_FORMAT_VERSION = '1';

/** Large negative score given to padded steps before the softmax (finite, so an all-padding row gives no NaN). */
const MASKED_SCORE = -1e30;

// ---------------------------------------------------------------------------------------------------------
// A small graph builder: unique intermediate names, Constant nodes for shapes/axes, weights by dupn name.

class GraphBuilder {
  readonly nodes: onnx.INodeProto[] = [];
  readonly inputs: onnx.IValueInfoProto[] = [];
  readonly outputs: onnx.IValueInfoProto[] = [];
  /** dupn tensor names used, in first-use order. */
  private readonly used: string[] = [];
  private count = 0;

  constructor(
    private readonly shapes: Map<string, number[]>,
    private readonly tensors: Tensors,
  ) {}

  /** A fresh intermediate name `<hint>:<n>`. */
  private fresh(hint: string): string {
    return `${hint}:${this.count++}`;
  }

  /** One node with one output; returns the output's name (`out`, or a fresh one). */
  op(opType: string, inputs: string[], attrs: Record<string, AttrValue> = {}, out?: string): string {
    const name = out ?? this.fresh(opType);
    this.nodes.push(node(opType, inputs, [name], attrs, `${opType}_${this.count++}`));
    return name;
  }

  /** One node with `n` outputs. */
  opN(opType: string, inputs: string[], n: number, attrs: Record<string, AttrValue> = {}): string[] {
    const outs = Array.from({ length: n }, () => this.fresh(opType));
    this.nodes.push(node(opType, inputs, outs, attrs, `${opType}_${this.count++}`));
    return outs;
  }

  /** An int64 constant (dims [] for a scalar). */
  ints(values: number[], dims: number[] = [values.length]): string {
    return this.op('Constant', [], { value: { tensor: int64Tensor('', dims, values) } });
  }

  /** A float32 scalar constant. */
  float(value: number): string {
    return this.op('Constant', [], { value: { tensor: floatTensor('', [], Float32Array.of(value)) } });
  }

  /** float32 zeros of a fixed shape (every dim > 0). */
  zeros(dims: number[]): string {
    return this.op('ConstantOfShape', [this.ints(dims)], { value: { tensor: floatTensor('', [1], Float32Array.of(0)) } });
  }

  /** A dupn tensor as an initializer, by its dupn name. */
  weight(name: string): string {
    if (!this.shapes.has(name)) throw new DupnError('E_INTERNAL', `ONNX export: ${name} is not a tensor of this config`);
    if (!this.used.includes(name)) this.used.push(name);
    return name;
  }

  input(name: string, type: typeof DataType.FLOAT | typeof DataType.INT32 | typeof DataType.INT64, dims: (number | string)[]): string {
    this.inputs.push(valueInfo(name, type, dims));
    return name;
  }

  output(name: string, dims: (number | string)[]): void {
    this.outputs.push(valueInfo(name, DataType.FLOAT, dims));
  }

  /** Concat of the parts along `axis` (no node for a single part). */
  concat(parts: string[], axis: number, out?: string): string {
    if (parts.length === 1 && out === undefined) return parts[0];
    return this.op('Concat', parts, { axis: { int: axis } }, out);
  }

  /** Sum of the parts (no node for a single part). */
  sum(parts: string[]): string {
    return parts.reduce((acc, p) => this.op('Add', [acc, p]));
  }

  unsqueeze(x: string, axes: number[]): string {
    return this.op('Unsqueeze', [x, this.ints(axes)]);
  }

  squeeze(x: string, axes: number[]): string {
    return this.op('Squeeze', [x, this.ints(axes)]);
  }

  /** Columns [from, to) of a 2-D weight, transposed: [to - from, rows]. */
  columnsT(w: string, from: number, to: number): string {
    const cols = this.op('Slice', [w, this.ints([from]), this.ints([to]), this.ints([1])]);
    return this.op('Transpose', [cols], { perm: { ints: [1, 0] } });
  }

  graph(name: string): onnx.IGraphProto {
    const initializer = this.used.map((n) => {
      const shape = this.shapes.get(n)!;
      const data = this.tensors.get(n);
      if (!data) throw new DupnError('E_MODEL_FILE', `ONNX export: missing tensor ${n}`);
      if (data.length !== elementCount(shape)) {
        throw new DupnError('E_MODEL_FILE', `ONNX export: tensor ${n} has ${data.length} values, expected ${elementCount(shape)} ([${shape.join(', ')}])`);
      }
      return floatTensor(n, shape, data);
    });
    return { name, node: this.nodes, input: this.inputs, output: this.outputs, initializer };
  }
}

function metadata(config: ResolvedConfig, graph: 'user' | 'head', extra: Record<string, string>): Record<string, string> {
  return {
    'dupn.format': 'dupn',
    'dupn.format_version': ONNX_FORMAT_VERSION,
    'dupn.config': JSON.stringify(config),
    'dupn.graph': graph,
    ...extra,
  };
}

function shapesOf(config: ResolvedConfig): Map<string, number[]> {
  return new Map(tensorSpecs(config).map((s) => [s.name, s.shape]));
}

/** The file name of a task's head graph next to a user graph whose file is `<stem>.onnx`. */
export function headFileName(stem: string, task: string): string {
  return `${stem}.${task}.onnx`;
}

// ---------------------------------------------------------------------------------------------------------
// User graph

/** One LSTM direction's (W [4H, Dx+Dp], R [4H, H], B [8H]) in ONNX gate order i, o, f, c. */
function lstmDirection(g: GraphBuilder, config: ResolvedConfig, dir: LstmDirection): { W: string; R: string; B: string } {
  const H = config.hidden;
  const { dp } = deriveDims(config);
  const axis0 = { axis: { int: 0 } };
  const names = lstmNames(dir);
  // dupn rows: i, f, g, o → ONNX rows: i, o, f, c(= g).
  const [xi, xf, xg, xo] = g.opN('Split', [g.weight(names.wx)], 4, axis0);
  let W = g.concat([xi, xo, xf, xg], 0);
  if (dp > 0) {
    // wp rows: i, f, o; the candidate gate gets zeros on the p_t columns.
    const [pi, pf, po] = g.opN('Split', [g.weight(names.wp)], 3, axis0);
    const P = g.concat([pi, po, pf, g.zeros([H, dp])], 0);
    W = g.concat([W, P], 1);
  }
  const [hi, hf, hg, ho] = g.opN('Split', [g.weight(names.wh)], 4, axis0);
  const R = g.concat([hi, ho, hf, hg], 0);
  const [bi, bf, bg, bo] = g.opN('Split', [g.weight(names.b)], 4, axis0);
  const B = g.concat([bi, bo, bf, bg, g.zeros([4 * H])], 0); // [Wb ; Rb], Rb = 0
  return { W: g.unsqueeze(W, [0]), R: g.unsqueeze(R, [0]), B: g.unsqueeze(B, [0]) };
}

function buildUserGraph(config: ResolvedConfig, tensors: Tensors, stem: string): Uint8Array {
  const d = deriveDims(config);
  const H = config.hidden;
  const g = new GraphBuilder(shapesOf(config), tensors);
  const p = config.properties;

  // Behaviours: e_t [B, T, Dx] and p_t [B, T, Dp].
  const itemParts: string[] = [];
  let firstBehavior = '';
  for (const f of config.itemFields) {
    if (f.dim === 0) continue;
    const ids = g.input(`behavior.${f.name}`, DataType.INT64, ['B', 'T']);
    firstBehavior ||= ids;
    itemParts.push(g.op('Gather', [g.weight(itemTableName(f.name)), ids], { axis: { int: 0 } }));
  }
  const propParts: string[] = [];
  for (const [prop, dim] of [
    ['type', p.typeDim],
    ['gap', p.gapDim],
    ['scene', p.sceneDim],
  ] as const) {
    if (dim === 0) continue;
    const ids = g.input(`behavior.${prop}`, DataType.INT64, ['B', 'T']);
    propParts.push(g.op('Gather', [g.weight(propertyTableName(prop)), ids], { axis: { int: 0 } }));
  }
  const lengths = g.input('lengths', DataType.INT32, ['B']);
  const E = g.concat(itemParts, 2);
  const P = propParts.length > 0 ? g.concat(propParts, 2) : null;

  // q = Σ weights · token rows; u = profile rows.
  let q: string | null = null;
  if (config.query) {
    const tokens = g.input('query.tokens', DataType.INT64, ['B', 'Q']);
    const weights = g.input('query.weights', DataType.FLOAT, ['B', 'Q']);
    const rows = g.op('Gather', [g.weight(QUERY_TABLE_NAME), tokens], { axis: { int: 0 } }); // [B, Q, Dq]
    q = g.squeeze(g.op('MatMul', [g.unsqueeze(weights, [1]), rows]), [1]); // [B, Dq]
  }
  const uParts: string[] = [];
  for (const f of config.profileFields) {
    if (f.dim === 0) continue;
    const ids = g.input(`profile.${f.name}`, DataType.INT64, ['B']);
    uParts.push(g.op('Gather', [g.weight(profileTableName(f.name)), ids], { axis: { int: 0 } }));
  }
  const u = uParts.length > 0 ? g.concat(uParts, 1) : null;

  // The (bi-)LSTM over [e_t ; p_t], time-major, one LSTM node with sequence_lens = lengths.
  const X = g.op('Transpose', [P ? g.concat([E, P], 2) : E], { perm: { ints: [1, 0, 2] } }); // [T, B, Dx+Dp]
  const weights = lstmDirections(config).map((dir) => lstmDirection(g, config, dir));
  const W = g.concat(weights.map((w) => w.W), 0);
  const R = g.concat(weights.map((w) => w.R), 0);
  const Bias = g.concat(weights.map((w) => w.B), 0);
  const Y = g.op('LSTM', [X, W, R, Bias, lengths], {
    hidden_size: { int: H },
    direction: { string: config.bidirectional ? 'bidirectional' : 'forward' },
  }); // [T, D, B, H]
  const Hs = g.op('Reshape', [g.op('Transpose', [Y], { perm: { ints: [2, 0, 1, 3] } }), g.ints([0, 0, d.dh])]); // [B, T, D·H], fw first

  // Attention scores s = v · tanh(W_a [H_t ; q ; u ; p_t] + b_a), column blocks of attn.w sliced in-graph.
  const attnW = g.weight(ATTENTION_NAMES.w);
  let col = 0;
  const block = (width: number): [number, number] => [col, (col += width)];
  const [h0, h1] = block(d.dh);
  const [q0, q1] = block(d.dq);
  const [u0, u1] = block(d.du);
  const [p0, p1] = block(d.dp);
  const perStep = [g.op('MatMul', [Hs, g.columnsT(attnW, h0, h1)])]; // [B, T, A]
  if (P) perStep.push(g.op('MatMul', [P, g.columnsT(attnW, p0, p1)]));
  const perUser: string[] = []; // [B, A]
  if (q) perUser.push(g.op('MatMul', [q, g.columnsT(attnW, q0, q1)]));
  if (u) perUser.push(g.op('MatMul', [u, g.columnsT(attnW, u0, u1)]));
  if (perUser.length > 0) perStep.push(g.unsqueeze(g.sum(perUser), [1]));
  perStep.push(g.weight(ATTENTION_NAMES.b));
  const scores = g.op('MatMul', [g.op('Tanh', [g.sum(perStep)]), g.weight(ATTENTION_NAMES.v)]); // [B, T]

  // Mask by lengths: padded steps get a large negative score before the softmax and exactly 0 after it.
  const T = g.op('Gather', [g.op('Shape', [firstBehavior]), g.ints([1], [])], { axis: { int: 0 } });
  const steps = g.op('Range', [g.ints([0], []), T, g.ints([1], [])]); // [T]
  const len64 = g.unsqueeze(g.op('Cast', [lengths], { to: { int: DataType.INT64 } }), [1]); // [B, 1]
  const mask = g.op('Less', [steps, len64]); // [B, T] bool
  const masked = g.op('Where', [mask, scores, g.float(MASKED_SCORE)]);
  const soft = g.op('Softmax', [masked], { axis: { int: -1 } });
  const attention = g.op('Mul', [soft, g.op('Cast', [mask], { to: { int: DataType.FLOAT } })], {}, 'attention');
  const r = g.squeeze(g.op('MatMul', [g.unsqueeze(attention, [1]), Hs]), [1]); // [B, D·H]

  g.concat([r, ...(u ? [u] : []), ...(q ? [q] : [])], 1, 'user'); // U = [r ; u ; q]
  g.output('user', ['B', d.userDim]);
  g.output('attention', ['B', 'T']);

  const heads: Record<string, string> = {};
  for (const t of config.tasks) heads[t.name] = headFileName(stem, t.name);
  return encodeModel(
    model({
      graph: g.graph('dupn_user'),
      opset: ONNX_OPSET,
      irVersion: ONNX_IR_VERSION,
      metadata: metadata(config, 'user', { 'dupn.heads': JSON.stringify(heads) }),
    }),
  );
}

// ---------------------------------------------------------------------------------------------------------
// Head graphs

/** Gemm(x, w, b?) with transB = 1: x · wᵀ (+ b). */
function linear(g: GraphBuilder, x: string, w: string, b?: string): string {
  return g.op('Gemm', b ? [x, w, b] : [x, w], { transB: { int: 1 } });
}

function headModel(config: ResolvedConfig, g: GraphBuilder, task: string): Uint8Array {
  return encodeModel(
    model({
      graph: g.graph(`dupn_head_${task}`),
      opset: ONNX_OPSET,
      irVersion: ONNX_IR_VERSION,
      metadata: metadata(config, 'head', { 'dupn.task': task }),
    }),
  );
}

/**
 * A retrieval head: score = item tower(t) · user tower(U)ᵀ (+ dense · wᵀ for the history features), with
 * the towers as Gemm/Relu stacks over `head.<task>.user.*` and `head.<task>.item.*`.
 */
function buildRetrievalGraph(config: ResolvedConfig, tensors: Tensors, task: RetrievalTask): Uint8Array {
  const d = deriveDims(config);
  const g = new GraphBuilder(shapesOf(config), tensors);
  const tower = (x: string, stem: string, depth: number): string => {
    for (let k = 0; k < depth; k++) {
      if (k > 0) x = g.op('Relu', [x]);
      const names = layerNames(stem, k);
      x = linear(g, x, g.weight(names.w), g.weight(names.b));
    }
    return x;
  };
  const user = g.input('user', DataType.FLOAT, [1, d.userDim]);
  const u = tower(user, headStem(task.name, 'user'), task.layers.length); // [1, dim]
  const tParts: string[] = [];
  const ids = new Map<string, string>();
  for (const name of task.target) {
    const f = config.itemFields.find((x) => x.name === name)!;
    if (f.dim === 0) continue;
    ids.set(name, g.input(`candidate.${f.name}`, DataType.INT64, ['C']));
    tParts.push(g.op('Gather', [g.weight(itemTableName(f.name)), ids.get(name)!], { axis: { int: 0 } }));
  }
  const v = tower(g.concat(tParts, 1), headStem(task.name, 'item'), task.layers.length); // [C, dim]
  let x = g.op('Gemm', [v, u], { transB: { int: 1 } }); // [C, 1]
  const D = denseCount(task);
  if (D > 0) {
    // h = [the user's history features (input) ; the item's log prior (looked up here)].
    const field = historyField(task);
    const key = ids.get(field) ?? g.input(`candidate.${field}`, DataType.INT64, ['C']);
    const dense = g.input('dense', DataType.FLOAT, ['C', D - 1]);
    const prior = g.op('Unsqueeze', [g.op('Gather', [g.weight(priorName(task.name)), key], { axis: { int: 0 } }), g.ints([1])]);
    x = g.sum([x, linear(g, g.concat([dense, prior], 1), g.weight(historyWeightName(task.name)))]);
    // The successor table is what a caller computes `dense` from (as it is the user's history): no node reads
    // it, it rides along as initializers so the file holds the whole model and imports back.
    if (task.successors) Object.values(successorNames(task.name)).forEach((name) => g.weight(name));
  }
  g.op('Reshape', [x, g.ints([-1])], {}, 'score');
  g.output('score', ['C']);
  return headModel(config, g, task.name);
}

function buildHeadGraph(config: ResolvedConfig, tensors: Tensors, task: TaskConfig): Uint8Array {
  if (task.kind === 'retrieval') return buildRetrievalGraph(config, tensors, task);
  const d = deriveDims(config);
  const g = new GraphBuilder(shapesOf(config), tensors);
  const widths = [d.userDim + targetDim(config, task) + denseCount(task), ...task.layers, taskOutputs(task)];
  const layer = (k: number): { w: string; b: string } => {
    const names = layerNames(headStem(task.name), k);
    return { w: g.weight(names.w), b: g.weight(names.b) };
  };

  let x: string;
  if (task.kind === 'multiclass') {
    const user = g.input('user', DataType.FLOAT, ['B', d.userDim]);
    const l0 = layer(0);
    x = linear(g, user, l0.w, l0.b);
  } else {
    // Layer 0 on [U ; t ; dense], split by the column blocks of head.<task>.0.w (decoupled scoring).
    const user = g.input('user', DataType.FLOAT, [1, d.userDim]);
    const dt = targetDim(config, task);
    const D = denseCount(task);
    const l0 = layer(0);
    const tParts: string[] = [];
    for (const name of task.target) {
      const f = config.itemFields.find((x) => x.name === name);
      if (!f) throw new DupnError('E_CONFIG', `task ${task.name}: target ${JSON.stringify(name)} names no item field`);
      if (f.dim === 0) continue;
      const ids = g.input(`candidate.${f.name}`, DataType.INT64, ['C']);
      tParts.push(g.op('Gather', [g.weight(itemTableName(f.name)), ids], { axis: { int: 0 } }));
    }
    const perCand: string[] = []; // [C, out_0]
    if (dt > 0) perCand.push(linear(g, g.concat(tParts, 1), g.op('Slice', [l0.w, g.ints([d.userDim]), g.ints([d.userDim + dt]), g.ints([1])])));
    if (D > 0) {
      const dense = g.input('dense', DataType.FLOAT, ['C', D]);
      perCand.push(linear(g, dense, g.op('Slice', [l0.w, g.ints([d.userDim + dt]), g.ints([d.userDim + dt + D]), g.ints([1])])));
    }
    let userPart = linear(g, user, g.op('Slice', [l0.w, g.ints([0]), g.ints([d.userDim]), g.ints([1])]), l0.b); // [1, out_0]
    if (perCand.length === 0) {
      // Every target field has dim 0 and there are no dense features: nothing per candidate but the count.
      // The first target field's ids still come in, only to carry C.
      const ids = g.input(`candidate.${task.target[0]}`, DataType.INT64, ['C']);
      const shape = g.concat([g.op('Shape', [ids]), g.ints([widths[1]])], 0);
      userPart = g.op('Expand', [userPart, shape]);
      x = userPart;
    } else {
      x = g.sum([...perCand, userPart]);
    }
  }
  for (let k = 1; k + 1 < widths.length; k++) {
    const lk = layer(k);
    x = linear(g, g.op('Relu', [x]), lk.w, lk.b);
  }

  if (task.kind === 'multiclass') {
    g.op('Softmax', [x], { axis: { int: -1 } }, 'probabilities');
    g.output('probabilities', ['B', task.classes]);
  } else {
    if (task.kind === 'binary') x = g.op('Sigmoid', [x]);
    g.op('Reshape', [x, g.ints([-1])], {}, 'score');
    g.output('score', ['C']);
  }
  return headModel(config, g, task.name);
}

/**
 * The user graph and one head graph per task (keyed by task name), serialized ModelProtos. `stem` names the
 * head files in the user graph's `dupn.heads` metadata: `<stem>.<task>.onnx`.
 */
export function buildOnnxGraphs(
  config: ResolvedConfig,
  tensors: Tensors,
  stem = 'model',
): { user: Uint8Array; heads: Map<string, Uint8Array> } {
  const user = buildUserGraph(config, tensors, stem);
  const heads = new Map<string, Uint8Array>();
  for (const t of config.tasks) heads.set(t.name, buildHeadGraph(config, tensors, t));
  return { user, heads };
}

/**
 * Writes the user graph to `path` and each head to `<dir>/<stem>.<task>.onnx` (stem = the file name of `path`
 * without `.onnx`), each file atomically. Returns the written paths, the user graph first.
 */
export async function exportOnnx(config: ResolvedConfig, tensors: Tensors, path: string): Promise<string[]> {
  checkPath(path, 'path'); // before the head files' names are made from it
  const dir = nodePath.dirname(path);
  const base = nodePath.basename(path);
  const stem = base.toLowerCase().endsWith('.onnx') ? base.slice(0, -'.onnx'.length) : base;
  const graphs = buildOnnxGraphs(config, tensors, stem);
  // One set: a failure while writing leaves the previous export loadable (writeFilesAtomic).
  const files = [
    { path, chunks: [graphs.user] },
    ...config.tasks.map((t) => ({ path: nodePath.join(dir, headFileName(stem, t.name)), chunks: [graphs.heads.get(t.name)!] })),
  ];
  await writeFilesAtomic(files);
  return files.map((f) => f.path);
}
