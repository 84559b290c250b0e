// Compiled CPU tile rasterizer: forward and backward of 3DGS front-to-back compositing.
//
// The same image formation as soundmask/splat/raster_dense.py (the oracle) and raster_tile.py (the pure-PyTorch
// fallback): for each pixel, the Gaussians binned to its tile, in depth order,
//   alpha_i = min(ALPHA_MAX, o_i exp(power_i)),  power_i = -1/2 (a dx^2 + c dy^2) - b dx dy  (skipped when
//   power_i > 0 or o_i exp(power_i) < ALPHA_MIN),  out = sum_i alpha_i T_i v_i,  T_i = prod_{j<i} (1 - alpha_j).
// Early termination as in 3DGS / gsplat: a pixel stops once its transmittance falls below t_min (after
// compositing the Gaussian that brought it there, so what is skipped weighs less than t_min in all).
// The value vector v carries every channel (colour, features, depth, and a constant 1 for the accumulated
// alpha); background is added by the caller.
//
// Parallel over tiles on torch's thread count (torch.set_num_threads applies), tiles handed out dynamically.
// The backward walks each pixel's contributors back to front, recovering T_i from the stored final
// transmittance (T_i = T_{i+1} / (1 - alpha_i)), and accumulates per (Gaussian, tile) pair, so no two threads
// ever write the same slot; the pairs are then summed per Gaussian.
#include <torch/extension.h>
#include <ATen/Parallel.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <type_traits>
#include <vector>

namespace {

struct Geometry {
  int64_t nx, ny, ts, width, height;
};

void check(const torch::Tensor& t, const char* name, int64_t dim) {
  TORCH_CHECK(t.device().is_cpu(), name, " must be a CPU tensor");
  TORCH_CHECK(t.is_contiguous(), name, " must be contiguous");
  TORCH_CHECK(t.dim() == dim, name, " must have ", dim, " dimensions");
}

// One tile's pairs, prepared for the per-pixel loops: per pair mx, my, a, b, c, o; its K values; and per pixel row
// of the tile, the pairs whose footprint (the projection's alpha >= alpha_min half-size `extent`, a conservative
// box) reaches that row and the column span they cover (CSR, depth order kept), so that a pixel only visits
// Gaussians that can touch it.
template <typename T>
struct TilePairs {
  std::vector<T> geo, val;
  std::vector<int32_t> row_start, row_pair, col_lo, col_hi;

  void gather(const T* mu, const T* con, const T* op, const T* ext, const T* vals, const int64_t* gi, int64_t lo,
              int64_t hi, int64_t K, int64_t x0, int64_t y0, int64_t rows) {
    const int64_t n = hi - lo;
    geo.resize(6 * n);
    val.resize(K * n);
    col_lo.resize(n);
    col_hi.resize(n);
    std::vector<int32_t> r_lo(n), r_hi(n);
    row_start.assign(rows + 1, 0);
    for (int64_t p = 0; p < n; ++p) {
      const int64_t g = gi[lo + p];
      T* d = &geo[6 * p];
      d[0] = mu[2 * g];
      d[1] = mu[2 * g + 1];
      d[2] = con[3 * g];
      d[3] = con[3 * g + 1];
      d[4] = con[3 * g + 2];
      d[5] = op[g];
      std::copy(vals + K * g, vals + K * (g + 1), &val[K * p]);
      const double ex = std::min(double(ext[2 * g]), 1e7), ey = std::min(double(ext[2 * g + 1]), 1e7);
      // pixel x has its centre at x + 0.5
      col_lo[p] = int32_t(std::clamp<double>(std::ceil(d[0] - ex - 0.5 - 1e-3) - x0, 0, 1 << 20));
      col_hi[p] = int32_t(std::clamp<double>(std::floor(d[0] + ex - 0.5 + 1e-3) - x0, -1, 1 << 20));
      r_lo[p] = int32_t(std::clamp<double>(std::ceil(d[1] - ey - 0.5 - 1e-3) - y0, 0, double(rows)));
      r_hi[p] = int32_t(std::clamp<double>(std::floor(d[1] + ey - 0.5 + 1e-3) - y0, -1, double(rows - 1)));
      for (int32_t r = r_lo[p]; r <= r_hi[p]; ++r) row_start[r + 1]++;
    }
    for (int64_t r = 0; r < rows; ++r) row_start[r + 1] += row_start[r];
    row_pair.resize(row_start[rows]);
    std::vector<int32_t> fill(row_start.begin(), row_start.end() - 1);
    for (int64_t p = 0; p < n; ++p)
      for (int32_t r = r_lo[p]; r <= r_hi[p]; ++r) row_pair[fill[r]++] = int32_t(p);
  }
};

// Runs body(tile) for every tile on torch's thread count (torch.set_num_threads applies), tiles handed out
// dynamically so that uneven tiles balance out. Built with -fopenmp, this file's libgomp.so.1 is the one torch
// already loaded (same soname), so these threads are torch's OpenMP pool, not a second one spinning beside it.
template <typename F>
void for_each_tile(int64_t n_tiles, F&& body) {
  const int threads = at::in_parallel_region() ? 1 : int(std::max<int64_t>(1, at::get_num_threads()));
#pragma omp parallel for schedule(dynamic, 1) num_threads(threads)
  for (int64_t t = 0; t < n_tiles; ++t) body(t);
}

// Runs f(i) for i in [0, n) on torch's thread count, in static chunks (per-Gaussian work of equal cost).
template <typename F>
void for_each_item(int64_t n, F&& f) {
  const int threads = at::in_parallel_region() ? 1 : int(std::max<int64_t>(1, at::get_num_threads()));
#pragma omp parallel for schedule(static) num_threads(threads)
  for (int64_t i = 0; i < n; ++i) f(i);
}

// exp for power <= 0 that the compiler can vectorise (Cody-Waite range reduction and a degree-6 polynomial,
// as Cephes' expf; within 2 ulp of std::exp on [-30, 0]). Powers below -30 are clamped to it: exp(-30) ~ 1e-13 is
// far below any alpha_min / opacity, so those lanes are skipped exactly as with std::exp, and no denormal (whose
// arithmetic takes a microcode assist, ~100 cycles) ever reaches the lanes far from a Gaussian.
template <typename T>
inline T fast_exp(T x) {
  x = x < T(-30) ? T(-30) : (x > T(0) ? T(0) : x);
  const T k = std::floor(x * T(1.44269504088896341) + T(0.5));
  const T r = x - k * T(0.693359375) - k * T(-2.12194440e-4);
  T p = T(1.9875691500e-4);
  p = p * r + T(1.3981999507e-3);
  p = p * r + T(8.3334519073e-3);
  p = p * r + T(4.1665795894e-2);
  p = p * r + T(1.6666665459e-1);
  p = p * r + T(5.0000001201e-1);
  const T y = p * r * r + r + T(1);
  return y * std::ldexp(T(1), int(k));
}

template <>
inline float fast_exp(float x) {
  x = x < -30.f ? -30.f : (x > 0.f ? 0.f : x);
  const float k = std::floor(x * 1.44269504088896341f + 0.5f);
  const float r = x - k * 0.693359375f - k * -2.12194440e-4f;
  float p = 1.9875691500e-4f;
  p = p * r + 1.3981999507e-3f;
  p = p * r + 8.3334519073e-3f;
  p = p * r + 4.1665795894e-2f;
  p = p * r + 1.6666665459e-1f;
  p = p * r + 5.0000001201e-1f;
  const float y = p * r * r + r + 1.f;
  const int32_t bits = (int32_t(k) + 127) << 23;  // 2^k, k in [-43, 0]
  return y * __builtin_bit_cast(float, bits);
}

constexpr int L = 16;  // lanes: the pixels of one tile row (tile size <= 16)

// The lanes [B, B + N) of one tile row a pair can reach: the half of the row its footprint's columns fall in when
// they fit in one (two 8-lane vectors are then one), else the whole row.
template <typename F>
inline void dispatch_span(int32_t col_lo, int32_t col_hi, F&& f) {
  if (col_hi < 8) {
    f(std::integral_constant<int, 0>{}, std::integral_constant<int, 8>{});
  } else if (col_lo >= 8) {
    f(std::integral_constant<int, 8>{}, std::integral_constant<int, 8>{});
  } else {
    f(std::integral_constant<int, 0>{}, std::integral_constant<int, L>{});
  }
}

// The pair's screen geometry seen from one tile row: dx of lane c is c - mx.
template <typename T>
struct RowPair {
  T mx, dy, a, b, c, o;
  inline T power(T dx) const { return T(-0.5) * (a * dx * dx + c * dy * dy) - b * dx * dy; }
};

template <typename T>
void forward_impl(const T* mu, const T* con, const T* op, const T* ext, const T* vals, const int64_t* gi,
                  const int64_t* ranges, int64_t K, Geometry G, double alpha_min, double alpha_max, double t_min, T* out, T* t_final,
                  int32_t* last) {
  const T amin = T(alpha_min), amax = T(alpha_max), tmin = T(t_min);
  for_each_tile(G.nx * G.ny, [&](int64_t tile) {
    const int64_t x0 = (tile % G.nx) * G.ts, y0 = (tile / G.nx) * G.ts;
    const int64_t cols = std::min(G.width - x0, G.ts), rows = std::min(G.height - y0, G.ts);
    TilePairs<T> tp;
    tp.gather(mu, con, op, ext, vals, gi, ranges[tile], ranges[tile + 1], K, x0, y0, rows);
    std::vector<T> acc(K * L);
    alignas(64) T trans[L], live[L], w[L];
    alignas(64) int32_t end[L];
    for (int64_t r = 0; r < rows; ++r) {
      const T py = T(y0 + r) + T(0.5);
      std::fill(acc.begin(), acc.end(), T(0));
      for (int c = 0; c < L; ++c) {
        trans[c] = T(1);
        live[c] = c < cols ? T(1) : T(0);  // 0 once the pixel is done (or outside the image)
        end[c] = 0;
      }
      int64_t remaining = cols;
      for (int32_t i = tp.row_start[r]; i < tp.row_start[r + 1] && remaining > 0; ++i) {
        const int32_t p = tp.row_pair[i];
        const T* d = &tp.geo[6 * p];
        const RowPair<T> g{d[0] - T(x0) - T(0.5), py - d[1], d[2], d[3], d[4], d[5]};
        const int32_t pos = i + 1 - tp.row_start[r];
        const T* v = &tp.val[K * p];
        dispatch_span(tp.col_lo[p], tp.col_hi[p], [&](auto B_, auto N_) {
          constexpr int B = decltype(B_)::value, E = B + decltype(N_)::value;
#pragma omp simd
          for (int c = B; c < E; ++c) {
            const T power = g.power(T(c) - g.mx);
            const T araw = g.o * fast_exp(power);
            const T lv = live[c], tr = trans[c];
            const T ok = (power <= T(0)) & (araw >= amin) ? lv : T(0);
            const T alpha = ok * (araw < amax ? araw : amax);
            w[c] = alpha * tr;
            const T t2 = tr * (T(1) - alpha);
            trans[c] = t2;
            end[c] = ok > T(0) ? pos : end[c];
            live[c] = t2 < tmin ? T(0) : lv;
          }
          for (int64_t k = 0; k < K; ++k) {
            T* ak = &acc[k * L];
            const T vk = v[k];
#pragma omp simd
            for (int c = B; c < E; ++c) ak[c] += w[c] * vk;
          }
        });
        T n = 0;
#pragma omp simd reduction(+ : n)
        for (int c = 0; c < L; ++c) n += live[c];
        remaining = int64_t(n);
      }
      for (int64_t c = 0; c < cols; ++c) {
        const int64_t pix = (y0 + r) * G.width + x0 + c;
        for (int64_t k = 0; k < K; ++k) out[pix * K + k] = acc[k * L + c];
        t_final[pix] = trans[c];
        last[pix] = end[c];
      }
    }
  });
}

template <typename T>
void backward_impl(const T* grad, const T* mu, const T* con, const T* op, const T* ext, const T* vals,
                   const int64_t* gi,
                   const int64_t* ranges, int64_t K, Geometry G, double alpha_min, double alpha_max,
                   const T* t_final, const int32_t* last, T* pair_grad /* P x (6 + K) */) {
  const int64_t S = 6 + K;
  const T amin = T(alpha_min), amax = T(alpha_max);
  for_each_tile(G.nx * G.ny, [&](int64_t tile) {
    const int64_t lo = ranges[tile];
    const int64_t x0 = (tile % G.nx) * G.ts, y0 = (tile / G.nx) * G.ts;
    const int64_t cols = std::min(G.width - x0, G.ts), rows = std::min(G.height - y0, G.ts);
    TilePairs<T> tp;
    tp.gather(mu, con, op, ext, vals, gi, lo, ranges[tile + 1], K, x0, y0, rows);
    std::vector<T> gr(K * L), after(K * L);  // after: sum over later contributors of w_j v_j
    alignas(64) T trans[L], w[L], q[L], behind[L], alpha[L], araw[L], ex[L], end[L];
    for (int64_t r = 0; r < rows; ++r) {
      const T py = T(y0 + r) + T(0.5);
      int32_t top = 0;
      for (int c = 0; c < L; ++c) {
        const int64_t pix = (y0 + r) * G.width + x0 + c;
        const bool in = c < cols;
        trans[c] = in ? t_final[pix] : T(1);
        end[c] = in ? T(last[pix]) : T(0);
        top = std::max(top, in ? last[pix] : 0);
        for (int64_t k = 0; k < K; ++k) gr[k * L + c] = in ? grad[pix * K + k] : T(0);
      }
      std::fill(after.begin(), after.end(), T(0));
      for (int32_t i = tp.row_start[r] + top - 1; i >= tp.row_start[r]; --i) {
        const int32_t p = tp.row_pair[i];
        const T* d = &tp.geo[6 * p];
        const RowPair<T> g{d[0] - T(x0) - T(0.5), py - d[1], d[2], d[3], d[4], d[5]};
        const T posf = T(i - tp.row_start[r]);
        const T* v = &tp.val[K * p];
        T* out = &pair_grad[(lo + p) * S];
        dispatch_span(tp.col_lo[p], tp.col_hi[p], [&](auto B_, auto N_) {
          constexpr int B = decltype(B_)::value, E = B + decltype(N_)::value;
#pragma omp simd
          for (int c = B; c < E; ++c) {
            const T power = g.power(T(c) - g.mx);
            const T e = fast_exp(power), ar = g.o * e;
            const T in = posf < end[c] ? T(1) : T(0);  // a contributor of this pixel (not beyond its last)
            const T ok = (power <= T(0)) & (ar >= amin) ? in : T(0);
            ex[c] = e;
            araw[c] = ar;
            alpha[c] = ok * (ar < amax ? ar : amax);
            trans[c] /= T(1) - alpha[c];  // T_i, the transmittance in front of this Gaussian
            w[c] = alpha[c] * trans[c];
            q[c] = T(0);
            behind[c] = T(0);
          }
          for (int64_t k = 0; k < K; ++k) {
            const T* gk = &gr[k * L];
            T* ak = &after[k * L];
            const T vk = v[k];
            T dv = 0;
#pragma omp simd reduction(+ : dv)
            for (int c = B; c < E; ++c) {
              q[c] += gk[c] * vk;
              behind[c] += gk[c] * ak[c];
              ak[c] += w[c] * vk;
              dv += w[c] * gk[c];
            }
            out[6 + k] += dv;
          }
          T s_op = 0, s_mx = 0, s_my = 0, s_a = 0, s_b = 0, s_c = 0;
#pragma omp simd reduction(+ : s_op, s_mx, s_my, s_a, s_b, s_c)
          for (int c = B; c < E; ++c) {
            // clamped alpha (or no contribution) does not depend on the Gaussian
            const bool free = (alpha[c] > T(0)) & (araw[c] < amax);
            const T d_alpha = free ? trans[c] * q[c] - behind[c] / (T(1) - alpha[c]) : T(0);
            const T d_power = d_alpha * araw[c];
            const T dx = T(c) - g.mx;
            s_op += d_alpha * ex[c];  // d alpha / d opacity = exp(power)
            s_mx += d_power * (g.a * dx + g.b * g.dy);  // d power / d mu = -(d power / d dx)
            s_my += d_power * (g.c * g.dy + g.b * dx);
            s_a += d_power * dx * dx;
            s_b += d_power * dx * g.dy;
            s_c += d_power * g.dy * g.dy;
          }
          out[0] += s_mx;
          out[1] += s_my;
          out[2] += T(-0.5) * s_a;
          out[3] -= s_b;
          out[4] += T(-0.5) * s_c;
          out[5] += s_op;
        });
      }
    }
  });
}

// EWA projection (soundmask/splat/project.py, the reference it is tested against), fused: per Gaussian, camera-frame
// centre p = R mu + t; J = [[fx/z, 0, -fx tx/z], [0, fy/z, -fy ty/z]] with tx, ty = x/z, y/z clamped to 1.3x the
// field of view; T = J R; screen covariance T Sigma T^T + dilation I = [[a, b], [b, c]]; conic (c, -b, a) / det;
// centre (fx x/z + cx, fy y/z + cy); and the no-grad footprint half-size and visibility. Gradients flow from the
// centre, conic and depth of Gaussians in front of the near plane with det > 0 (the others are never rendered).
struct Cam {
  double R[3][3], t[3], fx, fy, cx, cy, lo_x, hi_x, lo_y, hi_y, near;
  int64_t width, height;
};

Cam camera(const torch::Tensor& w2c, double fx, double fy, double cx, double cy, int64_t width, int64_t height,
           double near) {
  auto w = w2c.to(torch::kFloat64).contiguous();
  const double* m = w.data_ptr<double>();
  Cam c;
  for (int i = 0; i < 3; ++i) {
    for (int j = 0; j < 3; ++j) c.R[i][j] = m[4 * i + j];
    c.t[i] = m[4 * i + 3];
  }
  c.fx = fx, c.fy = fy, c.cx = cx, c.cy = cy, c.width = width, c.height = height, c.near = near;
  c.lo_x = (-0.15 * width - cx) / fx, c.hi_x = (1.15 * width - cx) / fx;
  c.lo_y = (-0.15 * height - cy) / fy, c.hi_y = (1.15 * height - cy) / fy;
  return c;
}

// The per-Gaussian quantities both passes need, in double precision.
struct Ewa {
  double p[3], z, tx, ty, T0[3], T1[3], a, b, c, det;
  bool in_front, ok;
};

template <typename T>
Ewa ewa(const Cam& C, const T* mu, const T* S, double dilation) {
  Ewa e;
  for (int i = 0; i < 3; ++i)
    e.p[i] = C.R[i][0] * double(mu[0]) + C.R[i][1] * double(mu[1]) + C.R[i][2] * double(mu[2]) + C.t[i];
  e.in_front = e.p[2] > C.near;
  e.z = e.in_front ? e.p[2] : 1.0;
  e.tx = std::clamp(e.p[0] / e.z, C.lo_x, C.hi_x);
  e.ty = std::clamp(e.p[1] / e.z, C.lo_y, C.hi_y);
  const double j00 = C.fx / e.z, j02 = -C.fx * e.tx / e.z, j11 = C.fy / e.z, j12 = -C.fy * e.ty / e.z;
  for (int k = 0; k < 3; ++k) {
    e.T0[k] = j00 * C.R[0][k] + j02 * C.R[2][k];
    e.T1[k] = j11 * C.R[1][k] + j12 * C.R[2][k];
  }
  double s0[3], s1[3];  // Sigma T0^T, Sigma T1^T
  for (int j = 0; j < 3; ++j) {
    s0[j] = s1[j] = 0.0;
    for (int k = 0; k < 3; ++k) {
      s0[j] += double(S[3 * j + k]) * e.T0[k];
      s1[j] += double(S[3 * j + k]) * e.T1[k];
    }
  }
  e.a = e.T0[0] * s0[0] + e.T0[1] * s0[1] + e.T0[2] * s0[2] + dilation;
  e.b = e.T0[0] * s1[0] + e.T0[1] * s1[1] + e.T0[2] * s1[2];
  e.c = e.T1[0] * s1[0] + e.T1[1] * s1[1] + e.T1[2] * s1[2] + dilation;
  e.det = e.a * e.c - e.b * e.b;
  e.ok = e.in_front && e.det > 0;
  return e;
}

std::vector<torch::Tensor> project_forward(torch::Tensor means, torch::Tensor covs, torch::Tensor opacities,
                                           torch::Tensor w2c, double fx, double fy, double cx, double cy,
                                           int64_t width, int64_t height, double near, double dilation,
                                           double alpha_min) {
  check(means, "means", 2);
  check(covs, "covs", 3);
  check(opacities, "opacities", 1);
  const int64_t N = means.size(0);
  const Cam C = camera(w2c, fx, fy, cx, cy, width, height, near);
  auto opt = means.options();
  auto means2d = torch::empty({N, 2}, opt), conics = torch::empty({N, 3}, opt), depths = torch::empty({N}, opt);
  auto cov2d = torch::empty({N, 2, 2}, opt), extent = torch::empty({N, 2}, opt);
  auto visible = torch::empty({N}, opt.dtype(torch::kBool));
  AT_DISPATCH_FLOATING_TYPES(means.scalar_type(), "soundmask_project_forward", [&] {
    const scalar_t* mu = means.data_ptr<scalar_t>();
    const scalar_t* S = covs.data_ptr<scalar_t>();
    const scalar_t* op = opacities.data_ptr<scalar_t>();
    scalar_t *m2 = means2d.data_ptr<scalar_t>(), *co = conics.data_ptr<scalar_t>(), *dz = depths.data_ptr<scalar_t>();
    scalar_t *c2 = cov2d.data_ptr<scalar_t>(), *ex = extent.data_ptr<scalar_t>();
    bool* vis = visible.data_ptr<bool>();
    for_each_item(N, [&](int64_t i) {
      const Ewa e = ewa(C, mu + 3 * i, S + 9 * i, dilation);
      const double det = e.ok ? e.det : 1.0;
      co[3 * i] = scalar_t(e.c / det), co[3 * i + 1] = scalar_t(-e.b / det), co[3 * i + 2] = scalar_t(e.a / det);
      const double u = C.fx * e.p[0] / e.z + C.cx, v = C.fy * e.p[1] / e.z + C.cy;
      m2[2 * i] = scalar_t(u), m2[2 * i + 1] = scalar_t(v);
      dz[i] = e.in_front ? scalar_t(e.p[2]) : scalar_t(INFINITY);
      c2[4 * i] = scalar_t(e.a), c2[4 * i + 1] = c2[4 * i + 2] = scalar_t(e.b), c2[4 * i + 3] = scalar_t(e.c);
      const double pmax = 2.0 * std::log(std::max(double(op[i]) / alpha_min, 1e-12));
      const double hx = std::sqrt(std::max(pmax, 0.0) * std::max(e.a, 0.0)) * 1.0001 + 1e-3;
      const double hy = std::sqrt(std::max(pmax, 0.0) * std::max(e.c, 0.0)) * 1.0001 + 1e-3;
      ex[2 * i] = scalar_t(hx), ex[2 * i + 1] = scalar_t(hy);
      const double mu_ = double(scalar_t(u)), mv = double(scalar_t(v));
      vis[i] = e.ok && pmax > 0 && std::isfinite(mu_) && std::isfinite(mv) && mu_ + hx > 0 && mu_ - hx < width &&
               mv + hy > 0 && mv - hy < height;
    });
  });
  return {means2d, conics, depths, cov2d, extent, visible};
}

std::vector<torch::Tensor> project_backward(torch::Tensor means, torch::Tensor covs, torch::Tensor w2c, double fx,
                                            double fy, double cx, double cy, int64_t width, int64_t height,
                                            double near, double dilation, torch::Tensor g_means2d,
                                            torch::Tensor g_conics, torch::Tensor g_depths) {
  const int64_t N = means.size(0);
  const Cam C = camera(w2c, fx, fy, cx, cy, width, height, near);
  auto g_means = torch::zeros_like(means), g_covs = torch::zeros_like(covs);
  AT_DISPATCH_FLOATING_TYPES(means.scalar_type(), "soundmask_project_backward", [&] {
    const scalar_t* mu = means.data_ptr<scalar_t>();
    const scalar_t* S = covs.data_ptr<scalar_t>();
    const scalar_t *gm = g_means2d.data_ptr<scalar_t>(), *gco = g_conics.data_ptr<scalar_t>();
    const scalar_t* gd = g_depths.data_ptr<scalar_t>();
    scalar_t *out_mu = g_means.data_ptr<scalar_t>(), *out_S = g_covs.data_ptr<scalar_t>();
    for_each_item(N, [&](int64_t i) {
      const Ewa e = ewa(C, mu + 3 * i, S + 9 * i, dilation);
      if (!e.in_front) return;
      const double x = e.p[0], y = e.p[1], z = e.z;
      double gx = 0, gy = 0, gz = double(gd[i]);
      // centre
      const double gu = gm[2 * i], gv = gm[2 * i + 1];
      gx += gu * C.fx / z, gy += gv * C.fy / z, gz -= (gu * C.fx * x + gv * C.fy * y) / (z * z);
      if (e.ok) {
        // conic (c, -b, a) / det -> screen covariance entries a, b, c
        const double a = e.a, b = e.b, c = e.c, d = e.det, d2 = d * d;
        const double gA = gco[3 * i], gB = gco[3 * i + 1], gC = gco[3 * i + 2];
        const double ga = gA * (-c * c / d2) + gB * (b * c / d2) + gC * (1.0 / d - a * c / d2);
        const double gb = gA * (2 * b * c / d2) + gB * (-1.0 / d - 2 * b * b / d2) + gC * (2 * a * b / d2);
        const double gc = gA * (1.0 / d - a * c / d2) + gB * (a * b / d2) + gC * (-a * a / d2);
        // a = T0 S T0^T, b = T0 S T1^T, c = T1 S T1^T
        const scalar_t* Si = S + 9 * i;
        scalar_t* gS = out_S + 9 * i;
        double gT0[3] = {0, 0, 0}, gT1[3] = {0, 0, 0};
        for (int j = 0; j < 3; ++j)
          for (int k = 0; k < 3; ++k) {
            const double sjk = Si[3 * j + k];
            gS[3 * j + k] = scalar_t(ga * e.T0[j] * e.T0[k] + gb * e.T0[j] * e.T1[k] + gc * e.T1[j] * e.T1[k]);
            // d/dT0_j of T0_j S_jk T0_k (both factors), T0_j S_jk T1_k; d/dT1 of T1 S T1^T and T0_j S_jk T1_k
            gT0[j] += (ga * e.T0[k] + gb * e.T1[k]) * sjk;
            gT0[k] += ga * e.T0[j] * sjk;
            gT1[j] += gc * e.T1[k] * sjk;
            gT1[k] += (gc * e.T1[j] + gb * e.T0[j]) * sjk;
          }
        // T0 = j00 R0 + j02 R2, T1 = j11 R1 + j12 R2
        double gj00 = 0, gj02 = 0, gj11 = 0, gj12 = 0;
        for (int k = 0; k < 3; ++k) {
          gj00 += gT0[k] * C.R[0][k], gj02 += gT0[k] * C.R[2][k];
          gj11 += gT1[k] * C.R[1][k], gj12 += gT1[k] * C.R[2][k];
        }
        // j00 = fx/z, j02 = -fx tx/z, j11 = fy/z, j12 = -fy ty/z; tx = clamp(x/z), ty = clamp(y/z)
        gz += -gj00 * C.fx / (z * z) + gj02 * C.fx * e.tx / (z * z) - gj11 * C.fy / (z * z) +
              gj12 * C.fy * e.ty / (z * z);
        const double gtx = -gj02 * C.fx / z, gty = -gj12 * C.fy / z;
        const double rx = x / z, ry = y / z;
        if (rx >= C.lo_x && rx <= C.hi_x) gx += gtx / z, gz -= gtx * x / (z * z);
        if (ry >= C.lo_y && ry <= C.hi_y) gy += gty / z, gz -= gty * y / (z * z);
      }
      // p = R mu + t
      for (int k = 0; k < 3; ++k)
        out_mu[3 * i + k] = scalar_t(C.R[0][k] * gx + C.R[1][k] * gy + C.R[2][k] * gz);
    });
  });
  return {g_means, g_covs};
}

// Binning: every visible Gaussian paired with each tile its alpha >= alpha_min footprint reaches, sorted by tile and
// then by depth (the order of soundmask/splat/raster_tile.py's tile_pairs, here in one pass): the Gaussians in depth
// order, each one's box of tiles from its footprint's half-size `extent`, kept where the footprint ellipse
// d^T Q d <= 2 log(o / alpha_min) meets the rectangle of the tile's pixel centres (its minimum over the rectangle,
// searched on the four edges when the centre is outside), then a counting sort by tile (stable).
template <typename T>
bool touches(const T* mu, const T* con, T o, double alpha_min, double x0, double y0, double size) {
  const double a = con[0], b = con[1], c = con[2];
  const double lx = x0 - mu[0], ly = y0 - mu[1], hx = lx + size, hy = ly + size;
  if (lx <= 0 && hx >= 0 && ly <= 0 && hy >= 0) return true;
  double best = INFINITY;
  const double edges[4][5] = {{lx, ly, hy, a, c}, {hx, ly, hy, a, c}, {ly, lx, hx, c, a}, {hy, lx, hx, c, a}};
  for (const auto& e : edges) {
    const double ex = e[0], lo = std::min(e[1], e[2]), hi = std::max(e[1], e[2]), qa = e[3], qc = e[4];
    const double t = std::clamp(-b * ex / qc, lo, hi);
    best = std::min(best, qa * ex * ex + 2 * b * ex * t + qc * t * t);
  }
  const double pmax = 2.0 * std::log(std::max(double(o) / alpha_min, 1e-12));
  return best <= pmax * 1.001 + 1e-4;
}

std::vector<torch::Tensor> bin(torch::Tensor means2d, torch::Tensor conics, torch::Tensor opacities,
                               torch::Tensor depths, torch::Tensor visible, torch::Tensor extent, int64_t nx,
                               int64_t ny, int64_t ts, double alpha_min) {
  TORCH_CHECK(visible.scalar_type() == torch::kBool, "visible must be bool");
  const int64_t N = means2d.size(0), n_tiles = nx * ny;
  std::vector<int64_t> order;
  std::vector<int64_t> counts(n_tiles + 1, 0);
  std::vector<std::array<int32_t, 4>> box(N);
  std::vector<int64_t> pair_tile;  // per kept pair (in depth order): its tile
  std::vector<int64_t> pair_g;
  AT_DISPATCH_FLOATING_TYPES(means2d.scalar_type(), "soundmask_raster_bin", [&] {
    const scalar_t* mu = means2d.data_ptr<scalar_t>();
    const scalar_t* con = conics.data_ptr<scalar_t>();
    const scalar_t* op = opacities.data_ptr<scalar_t>();
    const scalar_t* z = depths.data_ptr<scalar_t>();
    const scalar_t* ext = extent.data_ptr<scalar_t>();
    const bool* vis = visible.data_ptr<bool>();
    for (int64_t g = 0; g < N; ++g)
      if (vis[g]) order.push_back(g);
    std::stable_sort(order.begin(), order.end(), [&](int64_t i, int64_t j) { return z[i] < z[j]; });
    auto tile_of = [&](double v, int64_t n) {
      return int64_t(std::clamp<double>(std::floor((v - 0.5) / double(ts)), 0.0, double(n - 1)));
    };
    for (int64_t g : order) {
      const double mx = mu[2 * g], my = mu[2 * g + 1], ex = ext[2 * g], ey = ext[2 * g + 1];
      const int64_t x0 = tile_of(mx - ex, nx), x1 = tile_of(mx + ex, nx);
      const int64_t y0 = tile_of(my - ey, ny), y1 = tile_of(my + ey, ny);
      for (int64_t ty = y0; ty <= y1; ++ty)
        for (int64_t tx = x0; tx <= x1; ++tx)
          if (touches(&mu[2 * g], &con[3 * g], op[g], alpha_min, tx * ts + 0.5, ty * ts + 0.5, ts - 1.0)) {
            pair_tile.push_back(ty * nx + tx);
            pair_g.push_back(g);
            counts[ty * nx + tx + 1]++;
          }
    }
  });
  auto ranges = torch::empty({n_tiles + 1}, torch::dtype(torch::kInt64));
  int64_t* rg = ranges.data_ptr<int64_t>();
  rg[0] = 0;
  for (int64_t t = 0; t < n_tiles; ++t) rg[t + 1] = rg[t] + counts[t + 1];
  auto gi = torch::empty({int64_t(pair_g.size())}, torch::dtype(torch::kInt64));
  int64_t* out = gi.data_ptr<int64_t>();
  std::vector<int64_t> fill(rg, rg + n_tiles);
  for (size_t p = 0; p < pair_g.size(); ++p) out[fill[pair_tile[p]]++] = pair_g[p];
  return {gi, ranges};
}


std::vector<torch::Tensor> forward(torch::Tensor means2d, torch::Tensor conics, torch::Tensor opacities,
                                   torch::Tensor extent, torch::Tensor values, torch::Tensor gi, torch::Tensor ranges, int64_t nx,
                                   int64_t ny, int64_t ts, int64_t width, int64_t height, double alpha_min,
                                   double alpha_max, double t_min) {
  check(means2d, "means2d", 2);
  check(conics, "conics", 2);
  check(opacities, "opacities", 1);
  check(extent, "extent", 2);
  check(values, "values", 2);
  check(gi, "gi", 1);
  check(ranges, "ranges", 1);
  TORCH_CHECK(ranges.size(0) == nx * ny + 1, "ranges must have one entry per tile plus one");
  TORCH_CHECK(ts >= 1 && ts <= L, "tile size must be 1 to ", L);
  const int64_t K = values.size(1);
  auto out = torch::zeros({height, width, K}, values.options());
  auto t_final = torch::ones({height, width}, values.options());
  auto last = torch::zeros({height, width}, values.options().dtype(torch::kInt32));
  const Geometry G{nx, ny, ts, width, height};
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "soundmask_raster_forward", [&] {
    forward_impl<scalar_t>(means2d.data_ptr<scalar_t>(), conics.data_ptr<scalar_t>(),
                           opacities.data_ptr<scalar_t>(), extent.data_ptr<scalar_t>(), values.data_ptr<scalar_t>(),
                           gi.data_ptr<int64_t>(),
                           ranges.data_ptr<int64_t>(), K, G, alpha_min, alpha_max, t_min,
                           out.data_ptr<scalar_t>(), t_final.data_ptr<scalar_t>(), last.data_ptr<int32_t>());
  });
  return {out, t_final, last};
}

std::vector<torch::Tensor> backward(torch::Tensor grad_out, torch::Tensor means2d, torch::Tensor conics,
                                    torch::Tensor opacities, torch::Tensor extent, torch::Tensor values, torch::Tensor gi,
                                    torch::Tensor ranges, torch::Tensor t_final, torch::Tensor last, int64_t nx,
                                    int64_t ny, int64_t ts, int64_t width, int64_t height, double alpha_min,
                                    double alpha_max) {
  check(grad_out, "grad_out", 3);
  check(t_final, "t_final", 2);
  check(last, "last", 2);
  const int64_t K = values.size(1), N = values.size(0), P = gi.size(0);
  auto pair_grad = torch::zeros({P, 6 + K}, values.options());
  const Geometry G{nx, ny, ts, width, height};
  AT_DISPATCH_FLOATING_TYPES(values.scalar_type(), "soundmask_raster_backward", [&] {
    backward_impl<scalar_t>(grad_out.data_ptr<scalar_t>(), means2d.data_ptr<scalar_t>(),
                            conics.data_ptr<scalar_t>(), opacities.data_ptr<scalar_t>(), extent.data_ptr<scalar_t>(),
                            values.data_ptr<scalar_t>(), gi.data_ptr<int64_t>(), ranges.data_ptr<int64_t>(), K, G,
                            alpha_min, alpha_max, t_final.data_ptr<scalar_t>(), last.data_ptr<int32_t>(),
                            pair_grad.data_ptr<scalar_t>());
  });
  auto per_gaussian = torch::zeros({N, 6 + K}, values.options()).index_add_(0, gi, pair_grad);
  return {per_gaussian.narrow(1, 0, 2), per_gaussian.narrow(1, 2, 3), per_gaussian.select(1, 5),
          per_gaussian.narrow(1, 6, K)};
}

}  // namespace

PYBIND11_MODULE(TORCH_EXTENSION_NAME, m) {
  m.doc() = "soundmask compiled CPU tile rasterizer (forward and backward)";
  m.def("project_forward", &project_forward, "EWA projection: means2d, conics, depths, cov2d, extent, visible");
  m.def("project_backward", &project_backward, "gradients of the projection w.r.t. means and covariances");
  m.def("bin", &bin, "Gaussian-tile pairs sorted by tile then depth: (Gaussian index (P,), tile ranges (tiles + 1,))");
  m.def("forward", &forward, "composite: (image (H, W, K), final transmittance (H, W), contributors (H, W))");
  m.def("backward", &backward, "gradients w.r.t. means2d, conics, opacities and values");
}
