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
  t.test(`${isa}: sgemm matches float64 on odd shapes, strides and accumulate`, async (t) => {
    const shapes = [[0, 5, 3], [1, 1, 1], [1, 512, 128], [3, 17, 0], [4, 64, 80], [5, 65, 7], [7, 33, 129], [13, 1, 31], [100, 512, 80], [9, 100, 19], [6, 63, 9], [8, 113, 5]];
    for (const [M, N, K] of shapes) {
      for (const accumulate of [false, true]) {
        const lda = K + 3;
        const ldc = N + 2;
        const A = fill(Math.max(0, M * lda));
        const B = fill(K * N);
        const C = fill(Math.max(0, M * ldc));
        const before = C.slice();
        k.sgemm(isa, M, N, K, A, lda, B, C, ldc, accumulate);
        let worst = 0;
        for (let m = 0; m < M; m++) {
          for (let n = 0; n < ldc; n++) {
            if (n >= N) {
              if (C[m * ldc + n] !== before[m * ldc + n]) worst = Infinity; // padding untouched
              continue;
            }
            let ref = accumulate ? before[m * ldc + n] : 0;
            let mag = Math.abs(ref);
            for (let q = 0; q < K; q++) {
              ref += A[m * lda + q] * B[q * N + n];
              mag += Math.abs(A[m * lda + q] * B[q * N + n]);
            }
            worst = Math.max(worst, Math.abs(C[m * ldc + n] - ref) / (mag + 1e-30));
          }
        }
        t.ok(worst < 1e-6, `M=${M} N=${N} K=${K} acc=${accumulate}: worst error ${worst.toExponential(2)} of Σ|terms|`);
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
    for (const accumulate of [false, true]) {
      const lda = K + 1;
      const ldc = N + 3;
      const A = fill(Math.max(0, M * lda));
      const B = fill(K * N);
      const C = fill(Math.max(0, M * ldc));
      const before = C.slice();
      k.sgemmBf16(M, N, K, A, lda, B, C, ldc, accumulate);
      let worst = 0;
      for (let m = 0; m < M; m++) {
        for (let n = 0; n < N; n++) {
          let ref = accumulate ? before[m * ldc + n] : 0;
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
      t.ok(worst < 1e-6, `M=${M} N=${N} K=${K} acc=${accumulate}: worst error ${worst.toExponential(2)} of Σ|terms|`);
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
