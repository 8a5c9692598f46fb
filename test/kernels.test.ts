// Each instruction set's kernels, called directly, against float64 references written from their
// definitions: odd sizes (0, 1, not multiples of 16), fresh random inputs, extreme arguments.
import t from 'tap';
import { native } from '../lib/native/addon';
import { mulberry32 } from '../lib/random';
import { BUILT_ISAS, isas } from './support/compare';

const k = native().kernels;
const rand = mulberry32(2024);
const fill = (n: number, scale = 1): Float32Array => Float32Array.from({ length: n }, () => (rand() * 2 - 1) * scale);
const sigmoid = (x: number): number => 1 / (1 + Math.exp(-x));

// A path this CPU cannot run is skipped by every parity test (kernels, forward, gradients); say so once, visibly.
for (const isa of BUILT_ISAS.filter((i) => !isas().includes(i))) {
  t.test(`${isa}: kernels, forward and gradient parity`, { skip: `this CPU cannot run ${isa} (supported: ${isas().join(', ')}); a CPU that can runs it` }, async () => {});
}

for (const isa of isas()) {
  t.test(`${isa}: sgemm matches float64 on odd shapes, strides, accumulate and a bias row`, async (t) => {
    const shapes = [[0, 5, 3], [1, 1, 1], [1, 512, 128], [3, 17, 0], [4, 64, 80], [5, 65, 7], [7, 33, 129], [13, 1, 31], [100, 512, 80], [9, 100, 19], [6, 63, 9], [8, 113, 5]];
    for (const [M, N, K] of shapes) {
      for (const start of ['zero', 'C', 'bias'] as const) {
        const accumulate = start === 'C';
        const lda = K + 3;
        const ldc = N + 2;
        const A = fill(Math.max(0, M * lda));
        const B = fill(K * N);
        const C = fill(Math.max(0, M * ldc));
        const bias = start === 'bias' ? fill(N) : undefined;
        const before = C.slice();
        k.sgemm(isa, M, N, K, A, lda, B, C, ldc, accumulate, bias);
        let worst = 0;
        for (let m = 0; m < M; m++) {
          for (let n = 0; n < ldc; n++) {
            if (n >= N) {
              if (C[m * ldc + n] !== before[m * ldc + n]) worst = Infinity; // padding untouched
              continue;
            }
            let ref = bias ? bias[n] : accumulate ? before[m * ldc + n] : 0;
            let mag = Math.abs(ref);
            for (let q = 0; q < K; q++) {
              ref += A[m * lda + q] * B[q * N + n];
              mag += Math.abs(A[m * lda + q] * B[q * N + n]);
            }
            worst = Math.max(worst, Math.abs(C[m * ldc + n] - ref) / (mag + 1e-30));
          }
        }
        t.ok(worst < 1e-6, `M=${M} N=${N} K=${K} start=${start}: worst error ${worst.toExponential(2)} of Σ|terms|`);
        if (bias) {
          // The promise callers rely on: the same bits as filling C's rows with bias and accumulating.
          const filled = new Float32Array(C.length);
          for (let m = 0; m < M; m++) filled.set(bias, m * ldc);
          k.sgemm(isa, M, N, K, A, lda, B, filled, ldc, true);
          let diff = 0;
          for (let m = 0; m < M; m++) for (let n = 0; n < N; n++) if (!Object.is(filled[m * ldc + n], C[m * ldc + n])) diff++;
          t.equal(diff, 0, `M=${M} N=${N} K=${K}: bias row bit-identical to fill + accumulate`);
        }
      }
    }
  });

  t.test(`${isa}: a row's result does not depend on how many rows are computed with it`, async (t) => {
    // N = 512 and 600 take the dedicated one-row path for M = 1; it must agree bit for bit too.
    for (const [N, K] of [[77, 45], [512, 128], [600, 33]]) {
      const A = fill(11 * K);
      const B = fill(K * N);
      const all = new Float32Array(11 * N);
      k.sgemm(isa, 11, N, K, A, K, B, all, N, false);
      let diff = 0;
      for (let m = 0; m < 11; m++) {
        const one = new Float32Array(N);
        k.sgemm(isa, 1, N, K, A.subarray(m * K, (m + 1) * K), K, B, one, N, false);
        for (let n = 0; n < N; n++) if (!Object.is(one[n], all[m * N + n])) diff++;
      }
      t.equal(diff, 0, `N=${N} K=${K}: bit-identical`);
    }
  });

  t.test(`${isa}: fused LSTM cell matches the equations (H = 1 … 131, extreme pre-activations)`, async (t) => {
    for (const H of [1, 7, 16, 17, 37, 64, 128, 131]) {
      for (const scale of [0.5, 4, 40, 200]) {
        const z = fill(4 * H, scale);
        const gx = fill(4 * H, scale);
        const c = fill(H, scale / 4);
        const h = new Float32Array(H);
        const c0 = Float64Array.from(c);
        k.lstmCell(isa, H, z, gx, c, h);
        let worstC = 0;
        let worstH = 0;
        for (let q = 0; q < H; q++) {
          const pre = (b: number): number => z[b * H + q] + gx[b * H + q];
          const cn = sigmoid(pre(1)) * c0[q] + sigmoid(pre(0)) * Math.tanh(pre(2));
          const hn = sigmoid(pre(3)) * Math.tanh(cn);
          worstC = Math.max(worstC, Math.abs(c[q] - cn) / Math.max(1, Math.abs(cn)));
          worstH = Math.max(worstH, Math.abs(h[q] - hn));
        }
        t.ok(worstC < 2e-6 && worstH < 2e-6, `H=${H} scale=${scale}: worst c err ${worstC.toExponential(2)}, h err ${worstH.toExponential(2)}`);
      }
    }
  });

  t.test(`${isa}: training LSTM cell keeps gates, c, tanh(c) and h as the equations say (H = 1 … 131)`, async (t) => {
    for (const H of [1, 7, 16, 17, 37, 64, 128, 131]) {
      for (const scale of [0.5, 4, 40, 200]) {
        const pre = fill(4 * H, scale);
        const p0 = Float64Array.from(pre);
        const cPrev = fill(H, scale / 4);
        const c = new Float32Array(H);
        const tc = new Float32Array(H);
        const h = new Float32Array(H);
        k.lstmCellTrain(isa, H, pre, cPrev, c, tc, h);
        let worst = 0;
        for (let q = 0; q < H; q++) {
          const gates = [sigmoid(p0[q]), sigmoid(p0[H + q]), Math.tanh(p0[2 * H + q]), sigmoid(p0[3 * H + q])];
          const cn = gates[1] * cPrev[q] + gates[0] * gates[2];
          const errs = [
            ...gates.map((g, b) => Math.abs(pre[b * H + q] - g)),
            Math.abs(c[q] - cn) / Math.max(1, Math.abs(cn)),
            Math.abs(tc[q] - Math.tanh(cn)),
            Math.abs(h[q] - gates[3] * Math.tanh(cn)),
          ];
          worst = Math.max(worst, ...errs);
        }
        t.ok(worst < 2e-6, `H=${H} scale=${scale}: worst err ${worst.toExponential(2)}`);
      }
    }
  });

  t.test(`${isa}: tanh over n values (n = 0 … 67, tiny to saturated)`, async (t) => {
    for (const n of [0, 1, 15, 16, 17, 63, 67]) {
      for (const scale of [1e-6, 0.3, 0.7, 5, 100]) {
        const x = fill(n, scale);
        const y = new Float32Array(n + 1).fill(7);
        k.tanhMap(isa, n, x, y);
        let worst = 0;
        for (let i = 0; i < n; i++) worst = Math.max(worst, Math.abs(y[i] - Math.tanh(x[i])) / Math.max(1e-30, Math.abs(Math.tanh(x[i]))));
        t.ok(worst < 4e-7, `n=${n} scale=${scale}: worst relative err ${worst.toExponential(2)}`);
        t.equal(y[n], 7, 'nothing written past n');
      }
    }
  });

  t.test(`${isa}: attention score Σ v·tanh(s + b) (A = 0 … 67, small and large arguments)`, async (t) => {
    for (const A of [0, 1, 5, 16, 19, 64, 67]) {
      for (const scale of [1e-6, 0.3, 0.7, 5, 100]) {
        const s = fill(A, scale);
        const b = fill(A, scale);
        const v = fill(A);
        let ref = 0;
        let mag = 0;
        for (let a = 0; a < A; a++) {
          ref += v[a] * Math.tanh(s[a] + b[a]);
          mag += Math.abs(v[a] * Math.tanh(s[a] + b[a]));
        }
        const got = k.tanhDot(isa, A, s, b, v);
        t.ok(Math.abs(got - ref) <= 4e-7 * mag + 1e-30, `A=${A} scale=${scale}: |err| ${Math.abs(got - ref).toExponential(2)} vs Σ|terms| ${mag.toExponential(2)}`);
      }
    }
  });
}

for (const isa of isas()) {
  t.test(`${isa}: reluDot (a head's one-output last layer) matches float64`, async (t) => {
    for (const [M, K] of [[0, 5], [1, 1], [1, 64], [3, 0], [7, 15], [13, 17], [128, 64], [5, 100], [2, 33]]) {
      const ldx = K + 3;
      const x = fill(Math.max(0, M * ldx), 3);
      const w = fill(K);
      const bias = rand() - 0.5;
      const out = new Float32Array(M + 1).fill(42);
      k.reluDot(isa, M, K, x, ldx, w, bias, out);
      let worst = 0;
      for (let m = 0; m < M; m++) {
        let ref = bias;
        let mag = Math.abs(bias);
        for (let j = 0; j < K; j++) {
          const term = Math.max(0, x[m * ldx + j]) * w[j];
          ref += term;
          mag += Math.abs(term);
        }
        worst = Math.max(worst, Math.abs(out[m] - ref) / (mag + 1e-30));
      }
      t.ok(worst < 1e-6, `M=${M} K=${K}: worst error ${worst.toExponential(2)} of Σ|terms|`);
      t.equal(out[M], 42, `M=${M} K=${K}: nothing written past row M`);
    }
  });
}

t.test('kernel bindings refuse sizes their arrays cannot hold', async (t) => {
  t.throws(() => k.sgemm('baseline', 2, 2, 2, new Float32Array(3), 2, new Float32Array(4), new Float32Array(4), 2, false), /A: array too short/);
  t.throws(() => k.lstmCell('baseline', 4, new Float32Array(15), new Float32Array(16), new Float32Array(4), new Float32Array(4)), /too short/);
  t.throws(() => k.lstmCellTrain('baseline', 4, new Float32Array(16), new Float32Array(3), new Float32Array(4), new Float32Array(4), new Float32Array(4)), /too short/);
  t.throws(() => k.tanhMap('baseline', 5, new Float32Array(5), new Float32Array(4)), /too short/);
  t.throws(() => k.reluDot('baseline', 2, 4, new Float32Array(7), 4, new Float32Array(4), 0, new Float32Array(2)), /x/);
  t.throws(() => k.tanhDot('nope', 1, new Float32Array(1), new Float32Array(1), new Float32Array(1)), /not supported/);
});

// Round-to-nearest-even to bfloat16, as the kernels do.
function bf16(x: number): number {
  const f = new Float32Array([x]);
  const u = new Uint32Array(f.buffer);
  u[0] = ((u[0] + 0x7fff + ((u[0] >>> 16) & 1)) >>> 16) << 16;
  return f[0];
}

t.test('bf16 GEMM: exact products of bf16-rounded inputs, accumulated in fp32', { skip: !k.hasBf16 && 'this CPU has no AVX-512-BF16 (the refusal is tested in bf16.test.ts)' }, async (t) => {
  for (const [M, N, K] of [[1, 1, 1], [1, 512, 128], [1, 600, 81], [7, 33, 80], [6, 64, 2], [13, 100, 19], [100, 512, 81], [0, 4, 4], [3, 5, 0]]) {
    for (const start of ['zero', 'C', 'bias'] as const) {
      const accumulate = start === 'C';
      const lda = K + 1;
      const ldc = N + 3;
      const A = fill(Math.max(0, M * lda));
      const B = fill(K * N);
      const C = fill(Math.max(0, M * ldc));
      const bias = start === 'bias' ? fill(N) : undefined;
      const before = C.slice();
      k.sgemmBf16(M, N, K, A, lda, B, C, ldc, accumulate, bias);
      let worst = 0;
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < N; n++) {
          let ref = bias ? bias[n] : accumulate ? before[m * ldc + n] : 0;
          let mag = Math.abs(ref);
          for (let q = 0; q < K; q++) {
            const p = bf16(A[m * lda + q]) * bf16(B[q * N + n]);
            ref += p;
            mag += Math.abs(p);
          }
          worst = Math.max(worst, Math.abs(C[m * ldc + n] - ref) / (mag + 1e-30));
        }
        for (let n = N; n < ldc; n++) if (C[m * ldc + n] !== before[m * ldc + n]) worst = Infinity;
      }
      t.ok(worst < 1e-6, `M=${M} N=${N} K=${K} start=${start}: worst error ${worst.toExponential(2)} of Σ|terms|`);
    }
  }
});

t.test('bf16 GEMM: a row does not depend on how many rows are computed with it', { skip: !k.hasBf16 && 'this CPU has no AVX-512-BF16' }, async (t) => {
  for (const [N, K] of [[77, 45], [512, 128], [600, 33]]) {
    const A = fill(11 * K);
    const B = fill(K * N);
    const all = new Float32Array(11 * N);
    k.sgemmBf16(11, N, K, A, K, B, all, N, false);
    let diff = 0;
    for (let m = 0; m < 11; m++) {
      const one = new Float32Array(N);
      k.sgemmBf16(1, N, K, A.subarray(m * K, (m + 1) * K), K, B, one, N, false);
      for (let n = 0; n < N; n++) if (!Object.is(one[n], all[m * N + n])) diff++;
    }
    t.equal(diff, 0, `N=${N} K=${K}: bit-identical`);
  }
});

// Float → its bfloat16 bits (round to nearest even), as the kernels store h for the next step.
function bf16Bits(x: number): number {
  const u = new Uint32Array(new Float32Array([x]).buffer)[0];
  return ((u + 0x7fff + ((u >>> 16) & 1)) >>> 16) & 0xffff;
}

// The bf16 fused step's inputs in its interleaved layout, from gate-major ones (gate·H + u), and the float64
// reference: z from bf16-rounded h and W_h (exact products), the cell from the equations.
function bf16StepCase(M: number, H: number, gxScale: number) {
  const gb = k.bf16GateBlock, hp = Math.ceil(H / gb) * gb, gp = 4 * hp;
  const at = (j: number): number => { const gate = Math.floor(j / H), u = j % H; return Math.floor(u / gb) * 4 * gb + gate * gb + (u % gb); };
  const w = fill(H * 4 * H, 0.3), gxRef = fill(M * 4 * H, gxScale);
  const hPrev = new Float32Array(M * hp), c = new Float32Array(M * hp), wh = new Float32Array(H * gp), gx = new Float32Array(M * gp);
  for (let r = 0; r < M; r++) for (let u = 0; u < H; u++) { hPrev[r * hp + u] = rand() * 2 - 1; c[r * hp + u] = (rand() * 2 - 1) * 2; }
  for (let q = 0; q < H; q++) for (let j = 0; j < 4 * H; j++) wh[q * gp + at(j)] = w[q * 4 * H + j];
  for (let r = 0; r < M; r++) for (let j = 0; j < 4 * H; j++) gx[r * gp + at(j)] = gxRef[r * 4 * H + j];
  const ref = (r: number, u: number): { c: number; h: number } => {
    const pre = [0, 1, 2, 3].map((gate) => {
      let z = gxRef[r * 4 * H + gate * H + u];
      for (let q = 0; q < H; q++) z += bf16(hPrev[r * hp + q]) * bf16(w[q * 4 * H + gate * H + u]);
      return z;
    });
    const cn = sigmoid(pre[1]) * c[r * hp + u] + sigmoid(pre[0]) * Math.tanh(pre[2]);
    return { c: cn, h: sigmoid(pre[3]) * Math.tanh(cn) };
  };
  return { hp, gp, hPrev, c, wh, gx, ref };
}

t.test('bf16 fused LSTM step: the equations on bf16 products, FastMath cell (H = 1 … 131, M = 1 … 13)', { skip: !k.hasBf16 && 'this CPU has no AVX-512-BF16' }, async (t) => {
  for (const H of [1, 16, 45, 64, 128, 131]) {
    for (const M of [1, 2, 6, 7, 13]) {
      for (const gxScale of [2, 40]) {
        const s = bf16StepCase(M, H, gxScale);
        const cOut = s.c.slice(), hNext = new Float32Array(M * s.hp), hb = new Uint32Array((M * s.hp) / 2);
        k.lstmStepBf16(M, H, s.hPrev, s.wh, s.gx, cOut, hNext, hb);
        let worst = 0, badBits = 0;
        for (let r = 0; r < M; r++) {
          for (let u = 0; u < H; u++) {
            const e = s.ref(r, u);
            worst = Math.max(worst, Math.abs(cOut[r * s.hp + u] - e.c) / (1 + Math.abs(e.c)), Math.abs(hNext[r * s.hp + u] - e.h));
          }
          for (let p = 0; p < s.hp / 2; p++) {
            const want = bf16Bits(hNext[r * s.hp + 2 * p]) | (bf16Bits(hNext[r * s.hp + 2 * p + 1]) << 16);
            if (hb[(r * s.hp) / 2 + p] >>> 0 !== want >>> 0) badBits++;
          }
        }
        // FastMath: sigmoid to 2^-14 relative, tanh to ~1.5e-4 absolute; c and h stay within 5e-4.
        t.ok(worst < 5e-4, `H=${H} M=${M} |gx|≤${gxScale}: worst error ${worst.toExponential(2)}`);
        t.equal(badBits, 0, `H=${H} M=${M}: h also written as its bf16 pairs`);
      }
    }
  }
});

t.test('bf16 fused LSTM step: a row does not depend on how many rows are computed with it', { skip: !k.hasBf16 && 'this CPU has no AVX-512-BF16' }, async (t) => {
  for (const H of [45, 128, 131]) {
    const M = 13, s = bf16StepCase(M, H, 2);
    const cAll = s.c.slice(), hAll = new Float32Array(M * s.hp);
    k.lstmStepBf16(M, H, s.hPrev, s.wh, s.gx, cAll, hAll, new Uint32Array((M * s.hp) / 2));
    let diff = 0;
    for (let r = 0; r < M; r++) {
      const row = (a: Float32Array, n: number): Float32Array => a.slice(r * n, (r + 1) * n);
      const c = row(s.c, s.hp), h = new Float32Array(s.hp);
      k.lstmStepBf16(1, H, row(s.hPrev, s.hp), s.wh, row(s.gx, s.gp), c, h, new Uint32Array(s.hp / 2));
      for (let u = 0; u < H; u++) if (!Object.is(h[u], hAll[r * s.hp + u]) || !Object.is(c[u], cAll[r * s.hp + u])) diff++;
    }
    t.equal(diff, 0, `H=${H}: rows alone (M = 1 path) bit-identical to the 13-row tiles`);
  }
});
